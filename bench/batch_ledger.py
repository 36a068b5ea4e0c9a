"""Batch overhead against a fast local server: `evocli batch` with the ledger on and off, against a
plain requests thread-pool script doing the same POSTs, alternated run by run.

    python bench/batch_ledger.py [--prompts 3000] [--concurrency 8] [--rounds 3]

Each round runs the three in turn; the medians and the ratios to the script are printed. The
server answers at once, so what is measured is each client's own cost per call.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server import FakeServer, Recorded, Reply, completion_body  # noqa: E402

KEY = "sk-bench-0000000000000000"

SCRIPT = """
import json, sys
from concurrent.futures import ThreadPoolExecutor
import requests
url, key, path, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
prompts = [json.loads(line) for line in open(path)]
local = __import__("threading").local()
def call(prompt):
    s = getattr(local, "s", None) or setattr(local, "s", requests.Session()) or local.s
    body = {"model": "gpt-5.2", "messages": [{"role": "user", "content": prompt}]}
    r = s.post(url + "/chat/completions", json=body, headers={"Authorization": "Bearer " + key})
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]
with ThreadPoolExecutor(workers) as pool:
    for answer in pool.map(call, prompts):
        sys.stdout.write(json.dumps({"content": answer}) + "\\n")
"""


def timed(argv: list[str], env: dict[str, str], prompts: int) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run: the CPU time is what the client itself
    spends, steadier than the wall time on a busy 2-core machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != prompts:
        raise SystemExit(f"{argv[:4]}… failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    def instant(rec: Recorded) -> Reply:
        return Reply(body=completion_body("ok"))

    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    with FakeServer(default=instant) as server, tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "prompts.jsonl"
        src.write_text("".join(json.dumps(f"prompt {i}") + "\n" for i in range(args.prompts)))
        env = {**base, "EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url,
               "EVOCLI_LEDGER_DIR": str(Path(tmp) / "ledger"), "EVOCLI_CONFIG": str(Path(tmp) / "none.yaml")}
        batch = [sys.executable, "-m", "evocli", "batch", str(src), "-c", str(args.concurrency)]
        runs: dict[str, list[tuple[float, float]]] = {"script": [], "ledger": [], "no-ledger": []}
        for _ in range(args.rounds):
            runs["script"].append(timed([sys.executable, "-c", SCRIPT, server.base_url, KEY, str(src),
                                         str(args.concurrency)], env, args.prompts))
            runs["ledger"].append(timed(batch, env, args.prompts))
            runs["no-ledger"].append(timed([*batch, "--no-ledger"], env, args.prompts))
        records = sum(len(p.read_text().splitlines()) for p in (Path(tmp) / "ledger").glob("*.jsonl"))
        assert records == args.prompts * args.rounds, records

    def medians(label: str) -> tuple[float, float]:
        return statistics.median(w for w, _ in runs[label]), statistics.median(c for _, c in runs[label])

    wall, cpu = medians("script")
    print(f"batch overhead: {args.prompts} prompts at -c {args.concurrency}, instant answers, "
          f"median of {args.rounds} (command: make bench-batch-ledger)")
    print(f"  requests thread-pool script:   {wall:6.2f} s wall, {cpu:6.2f} s CPU")
    for label in ("ledger", "no-ledger"):
        w, c = medians(label)
        print(f"  evocli batch ({label + ')':11}   {w:6.2f} s wall, {c:6.2f} s CPU   "
              f"{w / wall:.2f}x the script's wall time, {c / cpu:.2f}x its CPU time")


if __name__ == "__main__":
    main()
