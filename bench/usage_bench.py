"""Time `evocli usage` over generated ledgers (100k and 1M records) and print wall time and peak RSS;
then the same report with and without prices, alternately, and the ratio of their times.

Each run is a fresh `python -m evocli usage …` process, timed from start to exit; its peak RSS
comes from wait4() and covers any worker processes it started. The ledgers are generated once
(bench/gen_ledger.py, in a child process) and kept in a temporary folder between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (arguments, pinned to one CPU): the pinned run shows the time without a second worker process.
CASES = [
    (["usage"], False),
    (["usage"], True),
    (["usage", "--by", "day"], False),
    (["usage", "--by", "tag", "--json"], False),
    (["usage", "--since", "2026-10-01", "--by", "command"], False),
]
GENERATOR_VERSION = "3"  # 3: records carry image_tokens
# Prices for the models bench/gen_ledger.py writes, per million tokens (one left unpriced), as a
# config file holds them.
PRICES_CONFIG = """prices:
  gpt-5.2: {input: 1.75, cached_input: 0.175, output: 14}
  gpt-5.2-mini: {input: 0.25, cached_input: 0.025, output: 2}
  claude-sonnet-4.5: {input: 3, cached_input: 0.3, output: 15}
"""


def ledger(data: Path, records: int) -> Path:
    """The generated ledger of `records` records, made on first use."""
    folder = data / f"ledger-{records}"
    stamp = folder / ".complete"
    wanted = f"{records} records, generator {GENERATOR_VERSION}"
    if not stamp.exists() or stamp.read_text() != wanted:
        print(f"generating {records:,} records in {folder} …", file=sys.stderr)
        # In a child process: a child's peak RSS starts from its parent's at fork time, so this
        # process must stay small for the figures of the evocli processes it starts to be true.
        gen = [sys.executable, str(HERE / "gen_ledger.py"), str(folder), "-n", str(records)]
        subprocess.run(gen, check=True, stdout=subprocess.DEVNULL)
        stamp.write_text(wanted)
    return folder


# The report with prices (a config file with `prices:`) against the same report without them.
PRICE_CASES = [["--by", "model"], ["--by", "day"], ["--by", "tag", "--by", "model"]]


def run(
    args: list[str], folder: Path, one_cpu: bool = False, config: Path | None = None
) -> tuple[float, float, bytes, float]:
    """One `evocli` process: (seconds, peak RSS in MiB, stdout, CPU seconds: user and system time,
    workers included). Without `config`, no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVOCLI_", "EVOLINK_"))}
    env["EVOCLI_LEDGER_DIR"] = str(folder)
    env["EVOCLI_CONFIG"] = str(config or os.devnull)
    started = time.perf_counter()
    argv = [sys.executable, "-m", "evocli", *args]
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_cpu else None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=HERE.parent, preexec_fn=pin)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"evocli {' '.join(args)} exited {proc.returncode}")
    # ru_maxrss is in KiB on Linux
    return elapsed, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; shows the best and the median")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "evocli-bench")
    parser.add_argument("--prices-only", action="store_true", help="only the table with and without prices")
    args = parser.parse_args()
    if args.prices_only:
        prices_table(ledger(args.data, max(args.records)), max(args.records), args.repeat)
        return

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'records':>9}  {'command':<52} {'best s':>7} {'median s':>8} {'peak RSS MiB':>12}")
    empty = args.data / "ledger-0"
    empty.mkdir(parents=True, exist_ok=True)
    rows = [(0, ["usage"], False, empty)]
    for records in args.records:
        folder = ledger(args.data, records)
        rows += [(records, case, one_cpu, folder) for case, one_cpu in CASES]
    for records, case, one_cpu, folder in rows:
        results = [run(case, folder, one_cpu) for _ in range(args.repeat)]
        times = [r[0] for r in results]
        peak = max(r[1] for r in results)
        if records:
            check = json.loads(run(["usage", "--json"], folder)[2])
            assert check["totals"]["requests"] == records, check["totals"]
        command = "evocli " + " ".join(case) + ("   (one CPU)" if one_cpu else "")
        best, median = min(times), statistics.median(times)
        print(f"{records:>9,}  {command:<52} {best:>7.2f} {median:>8.2f} {peak:>12.1f}")
    prices_table(ledger(args.data, max(args.records)), max(args.records), args.repeat)


def prices_table(folder: Path, records: int, repeat: int) -> None:
    """Each report with prices (A) and without (B), alternately: medians of time and of CPU time,
    and the medians of the pairs' ratios. CPU time shows the work itself: on a shared machine the
    wall time also shows what else ran."""
    print(f"\n{records:,} records, with prices (A) and without (B), {repeat} pairs; goal A/B <= 1.2")
    heads = ("A s", "B s", "A/B", "A CPU s", "B CPU s", "A/B CPU", "A RSS MiB", "B RSS MiB")
    print(f"{'report':<28} " + " ".join(f"{h:>9}" for h in heads))
    config = folder.parent / "prices.yaml"
    config.write_text(PRICES_CONFIG)
    for case in PRICE_CASES:
        # -q: the warning about unpriced models is one line on stderr, not part of the work.
        usage = ["usage", "-q", *case]
        pairs = [(run(usage, folder, config=config), run(usage, folder)) for _ in range(repeat)]
        figures = [
            statistics.median(a[0] for a, _ in pairs),
            statistics.median(b[0] for _, b in pairs),
            statistics.median(a[0] / b[0] for a, b in pairs),
            statistics.median(a[3] for a, _ in pairs),
            statistics.median(b[3] for _, b in pairs),
            statistics.median(a[3] / b[3] for a, b in pairs),
            max(a[1] for a, _ in pairs),
            max(b[1] for _, b in pairs),
        ]
        print(f"{' '.join(case):<28} " + " ".join(f"{v:>9.2f}" for v in figures))


if __name__ == "__main__":
    main()
