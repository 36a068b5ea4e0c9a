"""The usage ledger read back: the period asked for, the monthly files it touches, their lines."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from evocli.errors import NoInputError, UsageError

GROUPINGS = ("model", "day", "tag", "command")

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


_CANONICAL_TS = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"


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

