"""`evocli usage --by model` against DuckDB's read_json with the same GROUP BY, over the same ledger.

Both run as fresh processes, alternately (A B A B …), over the ledger bench/gen_ledger.py writes
(made once by usage_bench.ledger). The sums must agree, model by model, or the script fails.
Time is wall time from start to exit; memory is measured in separate runs: the peak RSS of the
process (wait4, the largest single process) and the peak of the whole process tree's PSS,
sampled every 5 ms (PSS shares the pages a forked worker has in common with its parent; DuckDB
is one process, so its two figures are about the same).

DuckDB is a bench-only dependency: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from usage_bench import ledger  # noqa: E402

from evocli.client import TOKEN_FIELDS  # noqa: E402

SUMS = TOKEN_FIELDS
QUERY = """
SELECT model,
       count(*) AS requests,
       count(*) FILTER (WHERE NOT ok) AS errors,
       {sums},
       (2 * sum(latency_ms) + count(*)) // (2 * count(*)) AS mean_latency_ms
FROM read_json('{folder}/*.jsonl', format = 'newline_delimited')
GROUP BY model
ORDER BY model
"""


def duckdb_child(folder: str) -> None:
    """Run in the measured DuckDB process: the query, printed as evocli's JSON rows."""
    import duckdb

    sums = ", ".join(f"sum({name}) AS {name}" for name in SUMS)
    result = duckdb.sql(QUERY.format(sums=sums, folder=folder))
    names = [column[0] for column in result.description]
    rows = [dict(zip(names, (v if isinstance(v, str) else int(v) for v in row), strict=True))
            for row in result.fetchall()]
    json.dump({"rows": rows, "version": duckdb.__version__}, sys.stdout)


def evocli_argv() -> list[str]:
    return [sys.executable, "-m", "evocli", "usage", "--by", "model", "--json"]


def duckdb_argv(folder: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--duckdb-child", str(folder)]


def env_for(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVOCLI_", "EVOLINK_", "PYTHON"))}
    env["EVOCLI_LEDGER_DIR"] = str(folder)
    env["EVOCLI_CONFIG"] = os.devnull
    return env


def run(
    argv: list[str], env: dict[str, str], sample: bool = False
) -> tuple[float, float, float, bytes, float]:
    """One process: (seconds, peak RSS in MiB from wait4, peak tree PSS in MiB or 0, stdout,
    CPU seconds of the process and the children it waited for)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=HERE.parent)
    peak = [0]
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(proc.pid, peak, stop), daemon=True)
    if sample:
        sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    stop.set()
    if sample:
        sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} exited {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss / 1024, peak[0] / 1024, out, usage.ru_utime + usage.ru_stime


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo += [int(child) for child in fh.read().split()]
        except OSError:
            continue
    return pids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sample(pid: int, peak: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.005):
        peak[0] = max(peak[0], sum(_pss_kib(p) for p in _tree(pid)))


def check(evocli_out: bytes, duckdb_out: bytes) -> None:
    """The two reports must hold the same numbers for every model."""
    ours = {row["model"]: row for row in json.loads(evocli_out)["rows"]}
    theirs = {row["model"]: row for row in json.loads(duckdb_out)["rows"]}
    columns = ("requests", "errors", *SUMS, "mean_latency_ms")
    mine = {m: [r[c] for c in columns] for m, r in ours.items()}
    other = {m: [r[c] for c in columns] for m, r in theirs.items()}
    if mine != other:
        raise SystemExit(f"the totals differ:\nevocli {mine}\nduckdb {other}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=5, help="measured A/B pairs (after one warm-up pair)")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "evocli-bench")
    parser.add_argument("--duckdb-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.duckdb_child:
        duckdb_child(args.duckdb_child)
        return
    # DuckDB is not imported here: a child's peak RSS starts from its parent's at fork time.
    folder = ledger(args.data, args.records)
    env = env_for(folder)
    a, b = evocli_argv(), duckdb_argv(folder)
    theirs = run(b, env)[3]
    check(run(a, env)[3], theirs)  # also the warm-up pair
    version = json.loads(theirs)["version"]
    times: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []
    for _ in range(args.pairs):
        x, y = run(a, env), run(b, env)
        times.append((x[0], y[0]))
        cpu.append((x[4], y[4]))
    memory = [(run(a, env, sample=True), run(b, env, sample=True)) for _ in range(2)]
    ratios = sorted(x / y for x, y in times)
    p25, p75 = statistics.quantiles(ratios, n=4)[0], statistics.quantiles(ratios, n=4)[2]
    print(f"python {sys.version.split()[0]}, duckdb {version}, {os.cpu_count()} CPUs, "
          f"{args.records:,} records, {args.pairs} pairs; the sums agree")
    print(f"{'':<34} {'best s':>7} {'median s':>8} {'CPU s':>6} {'peak RSS MiB':>12} {'tree PSS MiB':>12}")
    for i, label in enumerate(["evocli usage --by model --json", "duckdb read_json GROUP BY model"]):
        best, seconds = min(t[i] for t in times), statistics.median(t[i] for t in times)
        work = statistics.median(c[i] for c in cpu)
        rss = max(m[i][1] for m in memory)
        pss = max(m[i][2] for m in memory)
        print(f"{label:<34} {best:>7.2f} {seconds:>8.2f} {work:>6.2f} {rss:>12.1f} {pss:>12.1f}")
    rss_ratio = max(m[0][1] for m in memory) / max(m[1][1] for m in memory)
    pss_ratio = max(m[0][2] for m in memory) / max(m[1][2] for m in memory)
    best_ratio = min(t[0] for t in times) / min(t[1] for t in times)
    print(f"evocli / duckdb: time {statistics.median(ratios):.2f}x median of pairs "
          f"(p25-p75 {p25:.2f}-{p75:.2f}), "
          f"{best_ratio:.2f}x best to best, "
          f"peak RSS {rss_ratio:.2f}x, tree PSS {pss_ratio:.2f}x")


if __name__ == "__main__":
    main()
