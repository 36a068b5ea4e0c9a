"""One row per call from the ledger: the newest calls of a period, in time order (newest last)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evocli import cost as costs
from evocli.client import TOKEN_FIELDS
from evocli.ledger_read import Period, month_files, read_blocks
from evocli.ledger_rows import COUNTS, Row, Scan, numbers

if TYPE_CHECKING:
    from decimal import Decimal

    from evocli.cost import Prices

# A call's columns; `cost` goes before latency_ms when prices are configured.
CALL_COLUMNS = ("ts", "command", "model", "tag", *TOKEN_FIELDS, "latency_ms", "exit_code")
_FIELDS = ("ts", "command", "model", "exit_code", "counts", "tag", "image_tokens")
# Rows kept between trims of the newest-first list: sorting in C now and then beats a heap in Python.
_SLACK = 4096


@dataclass(frozen=True)
class Call:
    """One ledger record as a row of `usage --calls` (None: not in the record)."""

    ts: str
    command: str | None
    model: str | None
    tag: str | None
    tokens: dict[str, int]  # TOKEN_FIELDS
    latency_ms: int
    exit_code: int | None
    cost: Decimal | None = None


class Calls:
    """The calls listed, oldest first; the corrupt lines skipped and (with prices) the models seen
    without a price.

    `rows` is a list, or, for every call of a period, an iterator that reads the ledger as it is
    consumed: `corrupt` and `unpriced` are complete once it has been.
    """

    def __init__(self, rows: Iterable[Call], scan: Scan, prices: Prices | None = None) -> None:
        self.prices = prices
        self._scan = scan
        self._models: set[str | None] = set()
        self.rows: Iterable[Call] = (
            [self._seen(c) for c in rows] if isinstance(rows, list) else map(self._seen, rows)
        )

    def _seen(self, call: Call) -> Call:
        self._models.add(call.model)
        return call

    @property
    def corrupt(self) -> int:
        return self._scan.corrupt

    @property
    def unpriced(self) -> list[str]:
        return costs.unpriced(self.prices, self._models)


def columns(calls: Calls) -> list[str]:
    """The listing's columns: CALL_COLUMNS, with `cost` before latency_ms when priced."""
    if calls.prices is None:
        return list(CALL_COLUMNS)
    at = CALL_COLUMNS.index("latency_ms")
    return [*CALL_COLUMNS[:at], "cost", *CALL_COLUMNS[at:]]


def calls(
    ledger_dir: Path,
    period: Period = Period(),
    tags: Sequence[str] = (),
    limit: int | None = None,
    prices: Prices | None = None,
) -> Calls:
    """The last `limit` calls of the period, oldest first; with no limit, every call, read as the
    rows are consumed.

    A month's file holds only that month's records, so older files cannot hold newer calls: with a
    limit, files are read newest first until `limit` calls are found (memory: `limit` calls and a
    block); without one, month after month (memory: one month's calls of the period).
    """
    scan = Scan(_FIELDS, period, tags)
    files = month_files(ledger_dir, period)
    if limit is None:
        return Calls(_every(files, scan, prices), scan, prices)
    kept: list[tuple[bytes, int, Row]] = []
    for number, path in reversed(list(enumerate(files))):
        kept = _keep(kept, scan, read_blocks(path), limit, number << 40)
        if len(kept) >= limit:
            break
    return Calls(_rows(kept, scan, limit, prices), scan, prices)


def _every(files: list[Path], scan: Scan, prices: Prices | None) -> Iterator[Call]:
    for path in files:
        yield from _rows(_keep([], scan, read_blocks(path), None, 0), scan, None, prices)


def last_calls(
    blocks: Iterable[bytes],
    period: Period = Period(),
    tags: Sequence[str] = (),
    limit: int | None = None,
    prices: Prices | None = None,
) -> Calls:
    """The last `limit` calls in blocks of whole ledger lines (all when None), oldest first; memory
    holds at most `limit` calls and one block."""
    scan = Scan(_FIELDS, period, tags)
    return Calls(_rows(_keep([], scan, blocks, limit, 0), scan, limit, prices), scan, prices)


def _keep(
    kept: list[tuple[bytes, int, Row]], scan: Scan, blocks: Iterable[bytes], limit: int | None, start: int
) -> list[tuple[bytes, int, Row]]:
    """`kept` plus the rows of these blocks, as (ts, position, row), trimmed to about `limit`."""
    ts_of = itemgetter(scan.index["ts"])
    position = count(start)
    for rows in scan.rows(blocks):
        # `position` is endless: the rows end the zip.
        kept.extend(zip(map(ts_of, rows), position, rows, strict=False))
        if limit is not None and len(kept) > limit + _SLACK:
            kept.sort()
            del kept[: len(kept) - limit]
    return kept


def _rows(
    kept: list[tuple[bytes, int, Row]], scan: Scan, limit: int | None, prices: Prices | None
) -> list[Call]:
    # Ties in time keep the ledger's order.
    kept.sort()
    if limit is not None:
        kept = kept[len(kept) - limit :] if limit else []
    return [_call(row, scan.index, prices) for _, _, row in kept]


def _call(row: Row, index: dict[str, int], prices: Prices | None) -> Call:
    values = dict(zip(COUNTS, numbers([row[index["counts"]]]), strict=True))
    values["image_tokens"] = int(row[index["image_tokens"]] or 0)
    model: Any = json.loads(row[index["model"]])
    price = prices.get(model) if prices else None
    code = row[index["exit_code"]]
    return Call(
        ts=row[index["ts"]].decode(),
        command=json.loads(row[index["command"]]),
        model=model,
        tag=json.loads(row[index["tag"]]),
        tokens={name: values[name] for name in TOKEN_FIELDS},
        latency_ms=values["latency_ms"],
        exit_code=int(code) if code else None,
        cost=None
        if price is None
        else costs.cost(price, values["prompt_tokens"], values["cached_tokens"], values["completion_tokens"]),
    )
