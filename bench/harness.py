"""Timing harness: run a command and its baseline alternately, report medians, pair ratios and peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Command:
    """One measured process: its argv, extra environment, and a check of its first run."""

    label: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # Given (exit code, stdout), says what is wrong with the run, or None when it is right.
    check: Callable[[int, bytes], str | None] | None = None


@dataclass
class Sample:
    seconds: float
    max_rss_kib: int


@dataclass
class Pair:
    """A measured command against its baseline, with per-run samples of both."""

    a: Command
    b: Command
    target: float | None = None
    a_runs: list[Sample] = field(default_factory=list)
    b_runs: list[Sample] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [x.seconds / y.seconds for x, y in zip(self.a_runs, self.b_runs, strict=True)]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without PYTHON* (no -u, no disabled bytecode) plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra or {})
    return env


def run_once(cmd: Command, *, capture: bool = False) -> tuple[Sample, int, bytes]:
    """Start the command, wait for it with wait4, return its wall time, peak RSS and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd.argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        env=clean_env(cmd.env),
    )
    out = b""
    if capture:
        # Only the checking run reads the output; timed runs write to /dev/null.
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read()
        err = proc.stderr.read()
        if err:
            sys.stderr.write(f"[{cmd.label}] stderr: {err.decode(errors='replace')}")
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(elapsed, usage.ru_maxrss), proc.returncode, out


def verify(cmd: Command) -> None:
    """Run once and stop the benchmark if the command does not do what it should."""
    _, code, out = run_once(cmd, capture=True)
    problem = cmd.check(code, out) if cmd.check else (None if code == 0 else f"exit {code}")
    if problem:
        raise SystemExit(f"bench: {cmd.label}: {problem}\n  argv: {list(cmd.argv)}\n  stdout: {out[:300]!r}")


def measure(pair: Pair, pairs: int, warmup: int) -> None:
    """A B A B ...: alternating spreads any drift of the machine evenly over both."""
    for i in range(warmup + pairs):
        a, _, _ = run_once(pair.a)
        b, _, _ = run_once(pair.b)
        if i >= warmup:
            pair.a_runs.append(a)
            pair.b_runs.append(b)


def run_rows(rows: Sequence[Pair], pairs: int, warmup: int) -> None:
    """Check every command once (a wrong answer stops the bench), then measure each row."""
    for row in rows:
        verify(row.a)
        verify(row.b)
    for row in rows:
        print(f"bench: {row.a.label} vs {row.b.label} ...", file=sys.stderr)
        measure(row, pairs, warmup)


def median_ms(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds for s in samples) * 1000


def median_rss_mib(samples: Sequence[Sample]) -> float:
    return statistics.median(s.max_rss_kib for s in samples) / 1024


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def verdict(value: float, target: float | None, unit: str = "x") -> str:
    if target is None:
        return ""
    return f"≤ {target:g}{unit}: {'met' if value <= target else 'MISSED'}"


def time_table(rows: Sequence[Pair]) -> str:
    lines = [
        "| command (A) | baseline (B) | A median | B median | A/B, median of pairs (p25-p75) | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for p in rows:
        ratio = statistics.median(p.ratios)
        lo, hi = quartiles(p.ratios)
        lines.append(
            f"| {p.a.label} | {p.b.label} | {median_ms(p.a_runs):.1f} ms | {median_ms(p.b_runs):.1f} ms "
            f"| **{ratio:.2f}x** ({lo:.2f}-{hi:.2f}) | {verdict(ratio, p.target)} |"
        )
    return "\n".join(lines)


def memory_table(rows: Sequence[tuple[str, Sequence[Sample], float | None]]) -> str:
    lines = ["| process | peak RSS, median | target |", "|---|---:|---|"]
    for label, samples, target in rows:
        mib = median_rss_mib(samples)
        lines.append(f"| {label} | {mib:.1f} MiB | {verdict(mib, target, ' MiB')} |")
    return "\n".join(lines)


def _quiet(argv: Sequence[str]) -> None:
    """Run a setup step; its output is shown only when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"bench: failed: {' '.join(argv)}")


def install(venv: Path, *requirements: str) -> None:
    """evocli from this working tree, installed in `venv` from a wheel as a user gets it (not editable).

    With `requirements`, evocli goes in without its declared dependencies and these are installed
    instead (to measure it with another typer than the pinned one).
    """
    if not (venv / "bin" / "python").exists():
        _quiet([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    with tempfile.TemporaryDirectory() as wheels:
        _quiet([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, str(REPO)])
        [wheel] = Path(wheels).glob("evocli-*.whl")
        _quiet([*pip, "--force-reinstall", "--no-deps", str(wheel)])
        _quiet([*pip, *requirements] if requirements else [*pip, str(wheel)])


def git_describe() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=REPO, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()
