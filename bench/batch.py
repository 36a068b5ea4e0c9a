"""Batch benchmark: 200 prompts against a server that takes 200 ms per answer, at --concurrency 8.

The ideal is 200 x 0.2 / 8 = 5 s. The same work done by a shell loop of `evocli ask` is timed
for comparison (by default over the first 40 prompts, scaled to 200; `--loop 200` runs it all).

    python bench/batch.py [--prompts 200] [--concurrency 8] [--latency 0.2] [--loop 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server import FakeServer, Recorded, Reply, completion_body  # noqa: E402

KEY = "sk-bench-0000000000000000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--loop", type=int, default=40, help="prompts for the shell-loop comparison")
    args = parser.parse_args()

    def slow(rec: Recorded) -> Reply:
        return Reply(delay=args.latency, body=completion_body("ok"))

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["EVOCLI_NO_LEDGER"] = "1"
    with FakeServer(default=slow) as server, tempfile.TemporaryDirectory() as tmp:
        env.update(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=server.base_url)
        src = Path(tmp) / "prompts.jsonl"
        src.write_text("".join(json.dumps(f"prompt {i}") + "\n" for i in range(args.prompts)))
        evocli = [sys.executable, "-m", "evocli"]

        started = time.monotonic()
        proc = subprocess.run([*evocli, "batch", str(src), "--concurrency", str(args.concurrency)],
                              env=env, capture_output=True, text=True, check=False)
        batch_time = time.monotonic() - started
        results = [json.loads(line) for line in proc.stdout.splitlines()]
        assert proc.returncode == 0 and len(results) == args.prompts and all(r["ok"] for r in results)

        loop_n = min(args.loop, args.prompts)
        script = f'for i in $(seq {loop_n}); do "$0" -m evocli ask --no-stdin "prompt $i" > /dev/null; done'
        started = time.monotonic()
        subprocess.run(["bash", "-c", script, sys.executable], env=env, check=True)
        loop_time = (time.monotonic() - started) * args.prompts / loop_n

    ideal = args.prompts * args.latency / args.concurrency
    print(f"batch benchmark: {args.prompts} prompts, {args.latency * 1000:.0f} ms per answer "
          f"(command: make bench-batch)")
    print(f"  evocli batch --concurrency {args.concurrency}: {batch_time:6.2f} s   "
          f"ideal {ideal:.2f} s   ratio {batch_time / ideal:.2f}")
    scaled = "" if loop_n == args.prompts else f" (measured over {loop_n}, scaled)"
    print(f"  shell loop of evocli ask:      {loop_time:6.2f} s{scaled}   "
          f"{loop_time / batch_time:.1f}x slower than batch")


if __name__ == "__main__":
    main()
