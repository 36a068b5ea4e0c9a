"""Ledger lines read as rows: one regex for the shape `append` writes, json for any other line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

from evocli.ledger import RECORD_FIELDS
from evocli.ledger_read import Period, _record_ts

# What a row may hold, in this order (a row holds the fields asked for, in this order):
#   ts, day      the record's time in the canonical `ts` form, and its first 10 characters
#   command, model, tag   their JSON encoding (b'"ask"' or b'null'), so that they can be dict keys
#   ok           b'true' or b'false'
#   exit_code    its digits, or b'' when a record has none that is a count
#   counts       the six numbers of COUNTS, as written (`"prompt_tokens":12,…`) or bare (`12,…`)
#   image_tokens its digits, or b'' when the record predates the field
# Text stays bytes until the end: converting a million values costs more than the whole match.
FIELDS = ("ts", "day", "command", "model", "ok", "exit_code", "counts", "tag", "image_tokens")
# The numbers a record holds side by side, in the order the ledger writes them.
COUNTS = RECORD_FIELDS[RECORD_FIELDS.index("prompt_tokens") : RECORD_FIELDS.index("latency_ms") + 1]
Row = tuple[Any, ...]

# Everything in a `counts` text but the digits and commas: deleted in one pass to leave `12,7,…`.
_NAME_BYTES = b'abcdefghijklmnopqrstuvwxyz_":'
# Possessive repeats (`*+`): a value is never given back once read, so the engine keeps no
# backtracking state (about 10% faster over a big ledger).
_STR = rb'"[\x20\x21\x23-\x5b\x5d-\x7e]*+"'  # printable ASCII, no quote or backslash
_OPT_STR = rb"(?:" + _STR + rb"|null)"
_INT = rb"(?!0[0-9])[0-9]++"  # as JSON writes a count: no leading zero


def _source(captured: frozenset[str]) -> bytes:
    """The exact line `append` writes, capturing only the fields asked for (each group costs time)."""

    def field(name: str, body: bytes) -> bytes:
        return b"(" + body + b")" if name in captured else b"(?:" + body + b")"

    counts = b",".join(b'"' + name.encode() + b'":' + _INT for name in COUNTS)
    return (
        rb'^\{"ts":"' + field("ts", field("day", rb"\d{4}-\d\d-\d\d") + rb"T\d\d:\d\d:\d\d\.\d{3}Z")
        + rb'","command":' + field("command", _OPT_STR)
        + rb',"model":' + field("model", _OPT_STR)
        + rb',"id":' + _OPT_STR
        + rb',"ok":' + field("ok", rb"true|false")
        + rb',"http_status":(?:' + _INT + rb"|null)"
        + rb',"exit_code":' + field("exit_code", _INT)
        + rb',"finish_reason":' + _OPT_STR
        + rb"," + field("counts", counts)
        + rb',"attempts":' + _INT
        + rb',"stream":(?:true|false)'
        + rb',"tag":' + field("tag", _OPT_STR)
        # Lines written before image_tokens existed end at the tag.
        + rb'(?:,"image_tokens":' + field("image_tokens", _INT) + rb")?"
        + rb"\}$"
    )


@cache
def pattern(captured: tuple[str, ...]) -> re.Pattern[bytes]:
    """The fast path's regex for these fields, compiled on first use (never at start-up)."""
    return re.compile(_source(frozenset(captured)), re.MULTILINE)


def fast_pattern() -> re.Pattern[bytes]:
    """The fast path's regex capturing every field of FIELDS."""
    return pattern(FIELDS)


def parse_line(line: bytes) -> Row | None:
    """Read one ledger line the lenient way (json) into every field of FIELDS; None when it is not
    a record. The fast regex only accepts lines that this reads to the same values (a property test
    checks it)."""
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
    numbers = [_count(data.get(name)) for name in (*COUNTS, "image_tokens")]
    if None in numbers:
        return None
    texts = [data.get(name) for name in ("command", "model", "tag")]
    if any(value is not None and not isinstance(value, str) for value in texts):
        return None
    command, model, tag = (json_key(value) for value in texts)
    exit_code = data.get("exit_code")
    # A record's exit code only labels it: one that is not a count is unknown, not corrupt.
    code = str(exit_code).encode() if _count(exit_code) is not None and exit_code is not None else b""
    counts = b",".join(str(n).encode() for n in numbers[:-1])
    return (ts.encode(), ts[:10].encode(), command, model, b"true" if ok else b"false", code, counts, tag,
            str(numbers[-1]).encode())


def _count(value: Any) -> int | None:
    """A count field's value (missing or null is 0); None when it is not a count."""
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return None
    return value


def json_key(value: str | None) -> bytes:
    """A text value as the fast path captures it: its JSON encoding."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def numbers(counts: Sequence[bytes]) -> list[int]:
    """The numbers of many `counts` texts, in order, six per row (json reads them in C)."""
    return json.loads(b"[" + b",".join(counts).translate(None, _NAME_BYTES) + b"]")  # type: ignore[no-any-return]


def image_sum(values: Iterable[bytes]) -> int:
    """The sum of an image_tokens column (b'' for lines from before the field counts as 0)."""
    return sum(map(int, filter(None, values)))


class Scan:
    """Rows of the fields asked for, from blocks of whole lines, within a period and a set of tags.

    Rows hold `fields` (FIELDS order; `ts` and `tag` are added when the filters need them).
    `corrupt` counts the lines that are not records.
    """

    def __init__(self, fields: Iterable[str], period: Period = Period(), tags: Sequence[str] = ()) -> None:
        since, until = period.since_ts, period.until_ts
        self.since = since.encode() if since else None
        self.until = until.encode() if until else None
        self.tags = {json_key(tag) for tag in tags}
        wanted = set(fields) | ({"ts"} if since or until else set()) | ({"tag"} if tags else set())
        if not wanted <= set(FIELDS) or len(wanted) < 2:
            raise ValueError(f"cannot scan for {sorted(wanted)}")
        self.fields = tuple(name for name in FIELDS if name in wanted)
        self.index = {name: i for i, name in enumerate(self.fields)}
        self.corrupt = 0

    def rows(self, blocks: Iterable[bytes]) -> Iterator[list[Row]]:
        """The rows of each block that pass the filters (a block may give none)."""
        findall = pattern(self.fields).findall
        fullmatch = pattern(self.fields).fullmatch
        project = itemgetter(*(FIELDS.index(name) for name in self.fields))
        for block in blocks:
            rows: list[Row] = findall(block)
            lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            if len(rows) != lines:
                # Some line is not in the exact written shape: read line by line, leniently.
                rows = []
                for line in block.split(b"\n"):
                    if not line.strip():
                        continue
                    fast = fullmatch(line)
                    row = fast.groups() if fast else parse_line(line)
                    if row is None:
                        self.corrupt += 1
                    else:
                        rows.append(row if fast else project(row))
            yield self._filter(rows)

    def _filter(self, rows: list[Row]) -> list[Row]:
        since, until = self.since, self.until
        if rows and (since is not None or until is not None):
            ts = self.index["ts"]
            # Lines are mostly in time order: test the whole block before testing each row.
            first, last = min(map(itemgetter(ts), rows)), max(map(itemgetter(ts), rows))
            if (since is not None and last < since) or (until is not None and first >= until):
                return []
            if (since is not None and first < since) or (until is not None and last >= until):
                low, high = since or b"", until or b"\xff"
                rows = [r for r in rows if low <= r[ts] < high]
        if self.tags and rows:
            tag = self.index["tag"]
            rows = [r for r in rows if r[tag] in self.tags]
        return rows
