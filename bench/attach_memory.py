"""Peak memory of a call that attaches a 20 MB image, against the same call without it.

Each run is a fresh Python process that does what `evocli ask -a IMAGE "question"` does once it
is wired: resolve the settings, read the attachment, build the request, check its encoded size
(50 MB limit), send it to a local server (tests/server.py on 127.0.0.1) and read the answer. Its
peak RSS comes from wait4(). The modes run alternately, --runs times each:

- `plain`: the same call without an attachment (the baseline, today's `evocli ask hi`).
- `image, json.dumps body`: the request encoded as client.Request.encoded_body does today.
- `image, payload.encode_body`: the request encoded with evocli.payload.encode_body, the encoder
  that writes long strings a slice at a time (the bench swaps it in for this mode).

A second set of runs measures the Python allocations of the same steps with tracemalloc, which
counts what the code asks for without the allocator's own overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KEY = "sk-bench-00000000000000000000"
MIB = 1024 * 1024
BUDGET_MIB = 30.0  # today's peak for `evocli ask hi` (bench/README.md), the allowance on top of 4x
MODES = ("plain", "image, json.dumps body", "image, payload.encode_body")


def child(mode: str, image: str, base_url: str, traced: bool) -> None:
    """One call, as `evocli ask -a` will make it; prints the tracemalloc peak when traced."""
    import tracemalloc

    import evocli.cli  # noqa: F401  (everything an ask run has loaded before it reads input)
    from evocli import attach, client, config, payload, transport

    if mode.endswith("encode_body"):
        client.Request.encoded_body = lambda self: payload.encode_body(self.body)  # type: ignore[method-assign]
    env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": base_url}
    settings = config.resolve(config.Overrides(ledger=False), env, config.ConfigFile(Path(os.devnull)))
    if traced:
        tracemalloc.start()
    attachments = attach.load_all([image] if mode != "plain" else [])
    content = attach.user_content("What is wrong on this page?", attachments)
    request = client.build_request(settings, [{"role": "user", "content": content}], stream=False)
    attach.check_request_size(payload.encoded_size(request.body), attachments)
    completion, _ = transport.complete(settings, request)
    if traced:
        print(tracemalloc.get_traced_memory()[1])
    elif not completion.content:
        sys.exit("no answer")


def run(mode: str, image: Path, base_url: str, traced: bool) -> tuple[float, int | None]:
    """(peak RSS in MiB, tracemalloc peak in bytes or None) of one child process."""
    argv = [sys.executable, __file__, "--child", mode, str(image), base_url]
    if traced:
        argv.append("--traced")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=REPO)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{mode}: the child failed")
    return usage.ru_maxrss / 1024, int(out) if traced else None


def make_image(folder: Path, size: int) -> Path:
    """A PNG signature then random bytes (incompressible, as a real screenshot's data is)."""
    path = folder / "screenshot.png"
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        left = size - 8
        while left:  # in pieces, so this process never holds the image
            piece = min(left, 1 << 20)
            fh.write(os.urandom(piece))
            left -= piece
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000_000, help="image size in bytes (default 20 MB)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each mode (default 5)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, traced=args.traced)
        return

    if args.serve:
        serve()
        return
    # The server runs in its own process: a child's peak RSS starts from its parent's at fork
    # time, so this process must stay small (it never holds the image or a request body).
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert server.stdout is not None and server.stdin is not None
    base_url = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            image = make_image(Path(tmp), args.size)
            rss: dict[str, list[float]] = {m: [] for m in MODES}
            for _ in range(args.runs):
                for mode in MODES:
                    rss[mode].append(run(mode, image, base_url, traced=False)[0])
            traced = {mode: run(mode, image, base_url, traced=True)[1] or 0 for mode in MODES}
    finally:
        server.stdin.close()
        server.wait()
    report(args.size, args.runs, rss, traced)


def serve() -> None:
    """The local API server, until stdin closes; it forgets each request's body once answered."""
    import threading

    from tests.server import FakeServer

    with FakeServer() as srv:
        print(srv.base_url, flush=True)
        done = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        while not done.wait(0.05):
            srv.requests.clear()


def report(size: int, runs: int, rss: dict[str, list[float]], traced: dict[str, int]) -> None:
    plain = statistics.median(rss["plain"])
    budget = 4 * size / MIB + BUDGET_MIB
    print(f"image: {size:,} bytes ({size / MIB:.1f} MiB); {runs} runs of each mode; "
          f"target: peak RSS below 4 x image + {BUDGET_MIB:.0f} MiB = {budget:.1f} MiB\n")
    print("| mode | peak RSS, median (min-max) | over plain | over plain / image | Python peak (tracemalloc) "
          "| Python peak / image | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for mode in MODES:
        peak = statistics.median(rss[mode])
        over = peak - plain
        low, high = min(rss[mode]), max(rss[mode])
        ratio = f"{over * MIB / size:.2f}x" if mode != "plain" else ""
        met = ("met" if peak < budget else "NOT met") if mode != "plain" else ""
        print(f"| {mode} | {peak:.1f} MiB ({low:.1f}-{high:.1f}) | {over:+.1f} MiB | {ratio} "
              f"| {traced[mode] / MIB:.1f} MiB | {traced[mode] / size:.2f}x | {met} |")


if __name__ == "__main__":
    main()
