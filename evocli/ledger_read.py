"""The usage ledger read back: the period asked for, the monthly files it touches, and a streaming
summary of their lines (in parallel processes for a big ledger)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

from evocli.errors import NoInputError, UsageError

GROUPINGS = ("model", "day", "tag", "command")
# The report's columns after the group key, in order (SPEC §2).
COLUMNS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
    "mean_latency_ms",
)
_COUNTED = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "total_tokens")

# Patterns as text, compiled (and cached by `re`) on first use: nothing is compiled at start-up.
_MONTH_FILE = r"[0-9]{4}-[0-9]{2}\.jsonl"
_RELATIVE = r"([0-9]{1,6})([dh])"
_WHEN_HINT = "use a date (2026-11-01), a UTC time (2026-11-01T09:30), days (7d) or hours (24h)"
_RANGE_HINT = "times go from 0001-01-01 to 9999-12-31 (UTC)"
# The first and the last moment a datetime can hold.
_START = datetime.min.replace(tzinfo=UTC)
_END = datetime.max.replace(tzinfo=UTC)


def _ts_text(when: datetime) -> str:
    """A moment in the ledger's own `ts` form, so that periods compare as plain strings."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Period:
    """From `since` (included) to `until` (excluded); None is open-ended."""

    since: datetime | None = None
    until: datetime | None = None

    @property
    def since_ts(self) -> str | None:
        return None if self.since is None else _ts_text(self.since)

    @property
    def until_ts(self) -> str | None:
        # A period that ends at the end of time has no end a record could reach.
        return None if self.until is None or self.until == _END else _ts_text(self.until)

    def months(self) -> tuple[str | None, str | None]:
        """The first and last `YYYY-MM` the period touches (None: open-ended)."""
        first = None if self.since is None else _month(self.since)
        last = None
        if self.until is not None:
            # `until` is excluded: a period ending at midnight on the 1st does not touch that month.
            # (Never stepping back before the first moment there is.)
            last = _month(self.until - min(timedelta(milliseconds=1), self.until - _START))
        return first, last


def _month(when: datetime) -> str:
    """`YYYY-MM` in UTC, the year always four digits (strftime writes the year 1 as `1`)."""
    when = when.astimezone(UTC)
    return f"{when.year:04d}-{when.month:02d}"


def parse_when(option: str, text: str, now: datetime, *, until: bool = False) -> datetime:
    """A `--since`/`--until` value: `2026-11-01`, `2026-11-01T09:30[Z|+01:00]`, `7d` or `24h`.

    Dates and times without an offset are UTC, like the ledger; any offset is turned into UTC. A
    bare date given to `--until` means the end of that day, so the whole day is included (for
    9999-12-31, the last day there is, up to the last moment a time can hold).
    A time that cannot be held in UTC (before 0001-01-01 or after 9999-12-31) is a usage error.
    """
    value = text.strip()
    when: datetime | None = None
    try:
        relative = re.fullmatch(_RELATIVE, value)
        if relative:
            amount, unit = int(relative.group(1)), relative.group(2)
            return now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
        if value[:1].isdigit():
            when = datetime.fromisoformat(value)
            when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except ValueError:
        when = None
    except OverflowError:
        raise UsageError(f"{option}: {text!r} is out of range", hint=_RANGE_HINT) from None
    if when is None:
        raise UsageError(f"{option}: cannot read {text!r} as a time", hint=_WHEN_HINT)
    # Any ISO form with a time is longer than 10 characters: this one is a date alone.
    if until and len(value) <= 10:
        when = when + timedelta(days=1) if when.date() < _END.date() else _END
    return when


def make_period(since: str | None, until: str | None, now: datetime) -> Period:
    """The period of `--since`/`--until`; a period that ends before it starts is a usage error."""
    period = Period(
        None if since is None else parse_when("--since", since, now),
        None if until is None else parse_when("--until", until, now, until=True),
    )
    if period.since and period.until and period.since > period.until:
        raise UsageError(f"--since {since} is after --until {until}")
    return period


def month_files(ledger_dir: Path, period: Period) -> list[Path]:
    """The monthly files the period touches, oldest first; a missing folder has none."""
    first, last = period.months()
    try:
        names = sorted(e.name for e in os.scandir(ledger_dir) if re.fullmatch(_MONTH_FILE, e.name))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NoInputError(f"cannot read the usage ledger in {ledger_dir}: {exc.strerror or exc}") from None
    return [
        ledger_dir / name
        for name in names
        if (first is None or name[:7] >= first) and (last is None or name[:7] <= last)
    ]


BLOCK_SIZE = 1 << 18
MAX_LINE = 1 << 20
# Stands in for a line too long to be a record: summarize counts it as one corrupt line.
OVERLONG = b"<overlong line>\n"


def read_blocks(
    path: Path,
    size: int = BLOCK_SIZE,
    max_line: int = MAX_LINE,
    *,
    start: int = 0,
    end: int | None = None,
) -> Iterator[bytes]:
    """The lines that start in [start, end) of the file, as blocks of whole lines.

    Memory stays flat whatever the file's size; byte ranges let several processes share a file.
    """
    try:
        # O_NONBLOCK: opening a FIFO in a month file's place would wait for a writer, forever.
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK)) as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise NoInputError(f"cannot read the usage ledger file {path}: it is not a regular file")
            if start:
                # The line under `start` belongs to the range before this one.
                fh.seek(start - 1)
                _skip_line(fh, max_line)
            pos = fh.tell()
            while end is None or pos < end:
                block = fh.read(size if end is None else min(size, end - pos))
                if not block:
                    break
                if not block.endswith(b"\n"):
                    rest = fh.readline(max_line)
                    block += rest
                    if len(rest) == max_line and not rest.endswith(b"\n"):
                        # A runaway line (a file of garbage): keep what came before it, skip the rest.
                        block = block[: block.rfind(b"\n") + 1] + OVERLONG
                        _skip_line(fh, max_line)
                pos = fh.tell()
                yield block
    except OSError as exc:
        raise NoInputError(f"cannot read the usage ledger file {path}: {exc.strerror or exc}") from None


def _skip_line(fh: BinaryIO, max_line: int) -> None:
    while (rest := fh.readline(max_line)) and not rest.endswith(b"\n"):
        pass


# The exact shape `append` writes, so that almost every line is read by one C-level regex pass
# instead of json.loads (twice as fast on a million records). Any line that does not match is read
# by `_parse_line`, which decides what a record means: this pattern only accepts lines that
# `_parse_line` reads to the same values (tests/test_ledger_read.py checks that property).
_STR = rb'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'  # printable ASCII, no quote or backslash
_OPT_STR = rb"(?:" + _STR + rb"|null)"
_INT = rb"(?:0|[1-9][0-9]*)"
_FAST_SOURCE = (
    rb'^\{"ts":"((\d{4}-\d\d-\d\d)T\d\d:\d\d:\d\d\.\d{3}Z)"'
    rb',"command":(' + _OPT_STR + rb'),"model":(' + _OPT_STR + rb'),"id":' + _OPT_STR
    + rb',"ok":(true|false),"http_status":(?:' + _INT + rb"|null)"
    + rb',"exit_code":' + _INT + rb',"finish_reason":' + _OPT_STR
    + rb',"prompt_tokens":(' + _INT + rb'),"completion_tokens":(' + _INT + rb")"
    + rb',"total_tokens":(' + _INT + rb'),"reasoning_tokens":(' + _INT + rb")"
    + rb',"cached_tokens":(' + _INT + rb'),"latency_ms":(' + _INT + rb")"
    + rb',"attempts":' + _INT + rb',"stream":(?:true|false),"tag":(' + _OPT_STR + rb")\}$"
)


@cache
def fast_pattern() -> re.Pattern[bytes]:
    """The fast path's regex, compiled on first use: compiling it costs start-up time otherwise."""
    return re.compile(_FAST_SOURCE, re.MULTILINE)


_CANONICAL_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"

# A parsed line: ts, day, command, model, ok, then the numbers in _NUMBER_FIELDS order, tag.
# Text values are kept as their JSON encoding (bytes) until the end, so they can be dict keys.
Row = tuple[Any, ...]
_NUMBER_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "latency_ms",
)
_KEY_INDEX = {"day": 1, "command": 2, "model": 3, "tag": 11}
_TS, _OK, _TAG = 0, 4, 11


def _parse_line(line: bytes) -> Row | None:
    """Read one ledger line the lenient way (json), or None when it is not a record."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    ts = _record_ts(data.get("ts"))
    ok = data.get("ok")
    if ts is None or not isinstance(ok, bool):
        return None
    numbers = []
    for name in _NUMBER_FIELDS:
        value = data.get(name)
        if value is None:
            value = 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return None
        numbers.append(value)
    texts = []
    for name in ("command", "model", "tag"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return None
        texts.append(_json_key(value))
    command, model, tag = texts
    return (ts.encode(), ts[:10].encode(), command, model, b"true" if ok else b"false", *numbers, tag)


def _record_ts(value: Any) -> str | None:
    """A record's time in the canonical `ts` form, or None when it is not a time."""
    if not isinstance(value, str):
        return None
    if re.fullmatch(_CANONICAL_TS, value):
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return _ts_text(when)
    except OverflowError:  # a time that is out of range once moved to UTC (0001-01-01T00:00+14:00)
        return None


def _json_key(value: str | None) -> bytes:
    """A text value as the fast path captures it: its JSON encoding."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


@dataclass
class Tally:
    """Running sums for one group of records."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: int = 0

    def add(self, other: Tally) -> None:
        for name in _TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def values(self) -> dict[str, int | None]:
        """The report's columns for this group."""
        # Rounded half up, in integers: exact however large the sums grow.
        mean = (2 * self.latency_ms + self.requests) // (2 * self.requests) if self.requests else None
        row: dict[str, int | None] = {"requests": self.requests, "errors": self.errors}
        row.update({name: getattr(self, name) for name in _COUNTED})
        row["mean_latency_ms"] = mean
        return row


_TALLY_FIELDS = ("requests", "errors", *_NUMBER_FIELDS)


@dataclass
class Report:
    """A usage report: one row per group key (None for a missing tag), their totals, skipped lines."""

    by: str
    rows: list[tuple[str | None, Tally]]
    totals: Tally
    corrupt: int = 0


def summarize(
    blocks: Iterable[bytes],
    by: str = "model",
    period: Period = Period(),
    tags: Sequence[str] = (),
) -> Report:
    """Sum the records in blocks of whole ledger lines (a single line is a block too).

    Streaming: memory holds one block and one tally per group, never the records.
    """
    sums, corrupt = _tally(blocks, by, period, tags)
    return _report(by, sums, corrupt)


Sums = dict[bytes, list[int]]


def _tally(blocks: Iterable[bytes], by: str, period: Period, tags: Sequence[str]) -> tuple[Sums, int]:
    """The sums per raw group key, and the number of corrupt lines."""
    if by not in _KEY_INDEX:
        raise ValueError(f"unknown grouping {by!r}")
    key_of = itemgetter(_KEY_INDEX[by])
    ts_of = itemgetter(_TS)
    since, until = period.since_ts, period.until_ts
    since_b = since.encode() if since else None
    until_b = until.encode() if until else None
    wanted = {_json_key(tag) for tag in tags}
    fast_rows = fast_pattern().findall
    fast_line = fast_pattern().fullmatch
    sums: Sums = {}
    corrupt = 0
    for block in blocks:
        rows: list[Row] = fast_rows(block)
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        if len(rows) != lines:
            # Some line is not in the exact written shape: read line by line, leniently.
            rows = []
            for line in block.split(b"\n"):
                if not line.strip():
                    continue
                fast = fast_line(line)
                row = fast.groups() if fast else _parse_line(line)
                if row is None:
                    corrupt += 1
                else:
                    rows.append(row)
        if not rows:
            continue
        if since_b is not None or until_b is not None:
            # Lines are mostly in time order: test the whole block before testing each row.
            first, last = min(rows, key=ts_of)[_TS], max(rows, key=ts_of)[_TS]
            if (since_b is not None and last < since_b) or (until_b is not None and first >= until_b):
                continue
            if (since_b is not None and first < since_b) or (until_b is not None and last >= until_b):
                rows = [
                    r
                    for r in rows
                    if (since_b is None or r[_TS] >= since_b) and (until_b is None or r[_TS] < until_b)
                ]
        if wanted:
            rows = [r for r in rows if r[_TAG] in wanted]
        # Sorting and zipping run in C: far cheaper than adding up each row in Python.
        rows.sort(key=key_of)
        for key, group in groupby(rows, key_of):
            columns = list(zip(*group, strict=True))
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0] * len(_TALLY_FIELDS)
            acc[0] += len(columns[0])
            acc[1] += columns[_OK].count(b"false")
            for i in range(len(_NUMBER_FIELDS)):
                acc[2 + i] += sum(map(int, columns[5 + i]))
    return sums, corrupt


def _merge(parts: Iterable[tuple[Sums, int]]) -> tuple[Sums, int]:
    sums: Sums = {}
    corrupt = 0
    for part_sums, part_corrupt in parts:
        corrupt += part_corrupt
        for key, values in part_sums.items():
            acc = sums.setdefault(key, [0] * len(values))
            for i, value in enumerate(values):
                acc[i] += value
    return sums, corrupt


def _report(by: str, sums: Sums, corrupt: int) -> Report:
    decoded = [(key.decode() if by == "day" else json.loads(key), values) for key, values in sums.items()]
    # Sorted by key, a missing tag last; days sort as dates.
    decoded.sort(key=lambda item: (item[0] is None, item[0] or ""))
    totals = Tally()
    rows = []
    for key, values in decoded:
        tally = Tally(*values)
        totals.add(tally)
        rows.append((key, tally))
    return Report(by, rows, totals, corrupt)


# Below this many bytes a second process costs more than it saves (about 100,000 records).
PARALLEL_MIN_BYTES = 32 << 20
MAX_WORKERS = 8


# One byte range of one file for one worker: (path, start, end, by, period, tags). A plain tuple
# rather than a dataclass: this module loads on every evocli start, and each class costs time.
_Job = tuple[Path, int, int, str, Period, tuple[str, ...]]


def report(
    ledger_dir: Path,
    by: str = "model",
    period: Period = Period(),
    tags: Sequence[str] = (),
    *,
    workers: int | None = None,
    parallel_min_bytes: int = PARALLEL_MIN_BYTES,
) -> Report:
    """Summarize the ledger's monthly files that the period touches.

    A big ledger is cut into byte ranges summarized by one process per CPU: reading a million
    records is CPU-bound, and the sums of the parts add up to the sums of the whole.
    """
    files = month_files(ledger_dir, period)
    try:
        sizes = [(path, path.stat().st_size) for path in files]
    except OSError as exc:
        raise NoInputError(f"cannot read the usage ledger in {ledger_dir}: {exc.strerror or exc}") from None
    total = sum(size for _, size in sizes)
    workers = min(workers or _cpus(), MAX_WORKERS)
    if workers < 2 or total < parallel_min_bytes or "fork" not in _start_methods():
        blocks = (block for path in files for block in read_blocks(path))
        return _report(by, *_tally(blocks, by, period, tags))
    target = -(-total // workers)
    jobs: list[_Job] = []
    for path, size in sizes:
        pieces = max(1, -(-size // target))
        step = -(-size // pieces)
        jobs += [(path, i, min(i + step, size), by, period, tuple(tags)) for i in range(0, size, step)]
    import multiprocessing

    # fork, not spawn: a spawned child would re-run `python -m evocli` from the top.
    with multiprocessing.get_context("fork").Pool(min(workers, len(jobs)), _ignore_sigint) as pool:
        return _report(by, *_merge(pool.imap_unordered(_run_job, jobs)))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them: no traceback from each child."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_job(job: _Job) -> tuple[Sums, int]:
    path, start, end, by, period, tags = job
    return _tally(read_blocks(path, start=start, end=end), by, period, tags)
