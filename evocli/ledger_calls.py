"""One row per call from the ledger: the newest calls of a period, in time order (newest last)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


@dataclass
class Calls:
    """The calls listed, the corrupt lines skipped, and (with prices) the models without a price."""

    rows: list[Call]
    corrupt: int = 0
    prices: Prices | None = None
    unpriced: list[str] = field(default_factory=list)


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
    """The last `limit` calls of the period (all when None), oldest first.

    Files are read newest first and reading stops once `limit` calls are found: a month's file
    holds only that month's records, so older files cannot hold newer calls.
    """
    scan = Scan(_FIELDS, period, tags)
    kept: list[tuple[bytes, int, Row]] = []
    files = month_files(ledger_dir, period)
    for number, path in reversed(list(enumerate(files))):
        kept = _keep(kept, scan, read_blocks(path), limit, number << 40)
        if limit is not None and len(kept) >= limit:
            break
    return _calls(kept, scan, limit, prices)


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
    return _calls(_keep([], scan, blocks, limit, 0), scan, limit, prices)


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


def _calls(kept: list[tuple[bytes, int, Row]], scan: Scan, limit: int | None, prices: Prices | None) -> Calls:
    # Ties in time keep the ledger's order.
    kept.sort()
    if limit is not None:
        kept = kept[len(kept) - limit :] if limit else []
    index = scan.index
    rows = [_call(row, index, prices) for _, _, row in kept]
    return Calls(rows, scan.corrupt, prices, costs.unpriced(prices, (c.model for c in rows)))


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
