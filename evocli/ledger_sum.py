"""Usage summaries: the ledger's records summed per group of one or two keys, with their cost."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evocli import cost as costs
from evocli.client import TOKEN_FIELDS
from evocli.errors import NoInputError
from evocli.ledger_read import GROUPINGS, Period, month_files, read_blocks
from evocli.ledger_rows import COUNTS, Scan, image_sum, numbers

if TYPE_CHECKING:
    from decimal import Decimal

    from evocli.cost import Prices

# The report's columns after the group keys, in order (SPEC §2); `cost` follows when priced.
COLUMNS = ("requests", "errors", *TOKEN_FIELDS, "mean_latency_ms")
# A group's running sums, in this order.
_SUMS = ("requests", "errors", *COUNTS, "image_tokens")

Key = tuple[str | None, ...]
# Sums per raw key: the JSON text of each key (the day as is), and the model's when priced.
Sums = dict[Any, list[int]]


@dataclass
class Tally:
    """Running sums for one group of records, and their cost (None: no call in it has a price)."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: int = 0
    image_tokens: int = 0
    cost: Decimal | None = None

    @classmethod
    def of(cls, values: Sequence[int]) -> Tally:
        """A tally from running sums in _SUMS order."""
        tally = cls()
        for name, value in zip(_SUMS, values, strict=True):
            setattr(tally, name, value)
        return tally

    def add(self, other: Tally) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost = costs.add(self.cost, other.cost)

    def values(self) -> dict[str, int | None]:
        """The report's token columns for this group (COLUMNS, without the cost)."""
        # Rounded half up, in integers: exact however large the sums grow.
        mean = (2 * self.latency_ms + self.requests) // (2 * self.requests) if self.requests else None
        row: dict[str, int | None] = {"requests": self.requests, "errors": self.errors}
        row.update({name: getattr(self, name) for name in TOKEN_FIELDS})
        row["mean_latency_ms"] = mean
        return row


@dataclass
class Report:
    """A usage report: one row per group (keys in `by` order; None for a missing tag), the totals,
    the lines skipped as corrupt. With `prices`, each tally carries its cost and `unpriced` names the
    models seen without a price."""

    by: tuple[str, ...]
    rows: list[tuple[Key, Tally]]
    totals: Tally
    corrupt: int = 0
    prices: Prices | None = None
    unpriced: list[str] = field(default_factory=list)


def groupings(by: str | Sequence[str]) -> tuple[str, ...]:
    """`--by` values as a tuple of one or two known keys, each once (ValueError otherwise)."""
    keys = (by,) if isinstance(by, str) else tuple(by) or ("model",)
    if len(keys) > 2 or len(set(keys)) != len(keys) or any(k not in GROUPINGS for k in keys):
        raise ValueError(f"unknown grouping {'/'.join(keys)!r}")
    return keys


def summarize(
    blocks: Iterable[bytes],
    by: str | Sequence[str] = "model",
    period: Period = Period(),
    tags: Sequence[str] = (),
    prices: Prices | None = None,
) -> Report:
    """Sum the records in blocks of whole ledger lines (a single line is a block too).

    Streaming: memory holds one block and one tally per group (per group and model when priced).
    """
    keys = groupings(by)
    return _report(keys, prices, *tally(blocks, keys, period, tags, prices is not None))


def _raw_keys(by: tuple[str, ...], priced: bool) -> tuple[str, ...]:
    # A cost is a price times a model's tokens: with prices, sums are kept per model in each group.
    return (*by, "model") if priced and "model" not in by else by


def tally(
    blocks: Iterable[bytes], by: tuple[str, ...], period: Period, tags: Sequence[str], priced: bool
) -> tuple[Sums, int]:
    """The sums per raw key, and the number of corrupt lines."""
    keys = _raw_keys(by, priced)
    scan = Scan((*keys, "ok", "counts", "image_tokens"), period, tags)
    key_of = itemgetter(*(scan.index[k] for k in keys))
    ok, counts, images = scan.index["ok"], scan.index["counts"], scan.index["image_tokens"]
    width = len(COUNTS)
    sums: Sums = {}
    for rows in scan.rows(blocks):
        # Sorting, zipping and json's number parser run in C: far cheaper than a loop over rows.
        rows.sort(key=key_of)
        for key, group in groupby(rows, key_of):
            columns = list(zip(*group, strict=True))
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0] * len(_SUMS)
            acc[0] += len(columns[0])
            acc[1] += columns[ok].count(b"false")
            values = numbers(columns[counts])
            for i in range(width):
                acc[2 + i] += sum(values[i::width])
            acc[-1] += image_sum(columns[images])
    return sums, scan.corrupt


def merge(parts: Iterable[tuple[Sums, int]]) -> tuple[Sums, int]:
    """The sums of several parts of a ledger (they add up to the sums of the whole)."""
    sums: Sums = {}
    corrupt = 0
    for part_sums, part_corrupt in parts:
        corrupt += part_corrupt
        for key, values in part_sums.items():
            acc = sums.setdefault(key, [0] * len(values))
            for i, value in enumerate(values):
                acc[i] += value
    return sums, corrupt


def _decode(names: tuple[str, ...], raw: Any) -> Key:
    parts = raw if isinstance(raw, tuple) else (raw,)
    pairs = zip(names, parts, strict=True)
    return tuple(part.decode() if name == "day" else json.loads(part) for name, part in pairs)


def _report(by: tuple[str, ...], prices: Prices | None, sums: Sums, corrupt: int) -> Report:
    names = _raw_keys(by, prices is not None)
    groups: dict[Key, Tally] = {}
    models = set()
    for raw, values in sums.items():
        key = _decode(names, raw)
        part = Tally.of(values)
        if prices is not None:
            model = key[names.index("model")]
            models.add(model)
            price = prices.get(model)
            if price is not None:
                part.cost = costs.cost(price, part.prompt_tokens, part.cached_tokens, part.completion_tokens)
        groups.setdefault(key[: len(by)], Tally()).add(part)
    # Sorted by key, a missing tag last; days sort as dates.
    rows = sorted(groups.items(), key=lambda item: [(v is None, v or "") for v in item[0]])
    totals = Tally()
    for _, group in rows:
        totals.add(group)
    return Report(by, rows, totals, corrupt, prices, costs.unpriced(prices, models))


# Below this many bytes a second process costs more than it saves (about 100,000 records).
PARALLEL_MIN_BYTES = 32 << 20
MAX_WORKERS = 8
# Byte ranges no larger than this, so that workers share months of different sizes evenly.
MAX_JOB_BYTES = 8 << 20

# One byte range of one file for one worker: (path, start, end, by, period, tags, priced). A plain
# tuple rather than a dataclass, so that it pickles small.
_Job = tuple[Path, int, int, tuple[str, ...], Period, tuple[str, ...], bool]


def report(
    ledger_dir: Path,
    by: str | Sequence[str] = "model",
    period: Period = Period(),
    tags: Sequence[str] = (),
    prices: Prices | None = None,
    *,
    workers: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> Report:
    """Summarize the ledger's monthly files that the period touches.

    A big ledger is cut into byte ranges summarized by one process per CPU: reading a million
    records is CPU-bound, and the sums of the parts add up to the sums of the whole.
    """
    keys = groupings(by)
    priced = prices is not None
    files = month_files(ledger_dir, period)
    try:
        sizes = [(path, path.stat().st_size) for path in files]
    except OSError as exc:
        raise NoInputError(f"cannot read the usage ledger in {ledger_dir}: {exc.strerror or exc}") from None
    total = sum(size for _, size in sizes)
    workers = min(workers or _cpus(), MAX_WORKERS)
    if workers < 2 or total < parallel_min_bytes or "fork" not in _start_methods():
        blocks = (block for path in files for block in read_blocks(path))
        return _report(keys, prices, *tally(blocks, keys, period, tags, priced))
    step_max = min(-(-total // workers), MAX_JOB_BYTES)
    jobs: list[_Job] = []
    for path, size in sizes:
        step = -(-size // max(1, -(-size // step_max)))
        starts = range(0, size, step)
        jobs += [(path, i, min(i + step, size), keys, period, tuple(tags), priced) for i in starts]
    import multiprocessing

    # fork, not spawn: a spawned child would re-run `python -m evocli` from the top.
    with multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), _ignore_sigint) as pool:
        return _report(keys, prices, *merge(pool.imap_unordered(_run_job, jobs)))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from each child.

    The parent ends the pool with SIGTERM once the report is made; a forked worker would inherit
    evocli's handler, which turns SIGTERM into KeyboardInterrupt: it printed a traceback, and once
    in a while hung in its exit handling, the parent waiting on it for good. Workers die of it
    quietly instead.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_job(job: _Job) -> tuple[Sums, int]:
    path, start, end, by, period, tags, priced = job
    return tally(read_blocks(path, start=start, end=end), by, period, tags, priced)
