"""Streaming benchmark: how fast a streamed chunk reaches stdout, evocli vs a minimal requests script.

Starts the test suite's local server, which streams an answer in 20 pieces 50 ms apart after a
200 ms pause. For each run it measures, in this process's clock:
  - first byte: from the moment the server flushed the first content chunk to the moment the
    first byte of the answer could be read from the child's stdout;
  - whole call: from starting the child process to its exit.
evocli and the baseline run alternately (A B A B …); medians and the median of per-pair ratios
are printed.

    python bench/stream.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.server import FakeServer, Reply, sse_stream  # noqa: E402

KEY = "sk-bench-0000000000000000"
PIECES = [f"piece {i} " for i in range(20)]

# The baseline: what a careful user would write with requests in a few lines.
BASELINE = r"""
import json, os, sys, requests
r = requests.post(os.environ["EVOLINK_BASE_URL"] + "/chat/completions",
                  headers={"Authorization": "Bearer " + os.environ["EVOLINK_API_KEY"]},
                  json={"model": "gpt-5.2", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                  stream=True, timeout=(10, 600))
buf = b""
for block in r.iter_content(chunk_size=None):
    buf += block
    while b"\n\n" in buf:
        event, buf = buf.split(b"\n\n", 1)
        if not event.startswith(b"data: "):
            continue
        data = event.decode()[len("data: "):]
        if data == "[DONE]":
            break
        choices = json.loads(data).get("choices") or [{}]
        text = choices[0].get("delta", {}).get("content")
        if text:
            sys.stdout.write(text)
            sys.stdout.flush()
sys.stdout.write("\n")
"""


def run_once(server: FakeServer, argv: list[str]) -> tuple[float, float]:
    """(first-byte latency, whole-call time) in seconds for one child process."""
    reply = Reply(chunks=[b": warming up\n\n", *sse_stream(PIECES)], chunk_delay=0.05, delay=0.2)
    server.script(reply)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(EVOLINK_API_KEY=KEY, EVOLINK_BASE_URL=server.base_url, EVOCLI_NO_LEDGER="1")
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    first = os.read(proc.stdout.fileno(), 1)
    first_at = time.monotonic()
    rest = proc.stdout.read()
    proc.wait()
    ended = time.monotonic()
    output = (first + rest).decode()
    assert proc.returncode == 0 and output == "".join(PIECES) + "\n", (proc.returncode, output)
    # reply.sent[0] is the comment; [1] is the first content chunk.
    return first_at - reply.sent[1], ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    evocli = [sys.executable, "-m", "evocli", "ask", "--stream", "--no-stdin", "hi"]
    baseline = [sys.executable, "-c", BASELINE]
    rows: dict[str, list[tuple[float, float]]] = {"evocli": [], "baseline": []}
    with FakeServer() as server:
        run_once(server, evocli)  # warm the file cache for both
        run_once(server, baseline)
        for _ in range(args.runs):
            rows["evocli"].append(run_once(server, evocli))
            rows["baseline"].append(run_once(server, baseline))

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[name])

    def ratio(i: int) -> float:
        return statistics.median(e[i] / b[i] for e, b in zip(rows["evocli"], rows["baseline"], strict=True))

    print(f"streaming benchmark: {args.runs} alternating runs, 20 chunks 50 ms apart "
          "(command: make bench-stream)")
    print(f"{'':24}{'evocli':>12}{'python+requests':>18}{'ratio':>8}")
    print(f"{'first byte to stdout':24}{med('evocli', 0) * 1000:>10.2f}ms{med('baseline', 0) * 1000:>16.2f}ms"
          f"{ratio(0):>8.2f}")
    print(f"{'whole streamed call':24}{med('evocli', 1) * 1000:>10.0f}ms{med('baseline', 1) * 1000:>16.0f}ms"
          f"{ratio(1):>8.2f}")


if __name__ == "__main__":
    main()
