"""Usage reports rendered: an aligned table, tab-separated values, CSV, or one JSON document."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

from evocli.cost import display_text, number_text
from evocli.ledger_calls import Call, Calls
from evocli.ledger_calls import columns as call_columns
from evocli.ledger_sum import COLUMNS, Report, Tally

FORMATS = ("table", "tsv", "csv", "json")
# The terminal table's headings: shorter than the column names, so a row fits a terminal.
HEADINGS = {
    "requests": "requests",
    "errors": "errors",
    "prompt_tokens": "prompt",
    "completion_tokens": "completion",
    "reasoning_tokens": "reasoning",
    "cached_tokens": "cached",
    "image_tokens": "image",
    "total_tokens": "total",
    "mean_latency_ms": "mean ms",
    "ts": "time",
    "latency_ms": "ms",
    "exit_code": "exit",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# The day chart: the largest day fills BAR_WIDTH cells; a cell is drawn in eighths.
BAR_WIDTH = 24
_FULL = "\u2588"
_PARTS = ("", "\u258f", "\u258e", "\u258d", "\u258c", "\u258b", "\u258a", "\u2589")


def render(report: Report, fmt: str) -> str:
    """The report in one of FORMATS; the table adds a bar chart when grouped by day alone."""
    return {"table": as_table, "tsv": as_tsv, "csv": as_csv, "json": as_json}[fmt](report)


def render_calls(calls: Calls, fmt: str) -> str:
    """A `usage --calls` listing in one of FORMATS."""
    return "".join(calls_chunks(calls, fmt))


def calls_chunks(calls: Calls, fmt: str) -> Iterator[str]:
    """A `usage --calls` listing as pieces of text to write as they come (a line each, but for the
    table), so that listing every call of a big ledger holds neither the calls nor the text."""
    return {"table": calls_table, "tsv": calls_tsv, "csv": calls_csv, "json": calls_json}[fmt](calls)


def columns(report: Report) -> list[str]:
    """The group keys' columns, then the report's columns, then `cost` when priced."""
    return [*report.by, *COLUMNS, *(["cost"] if report.prices else [])]


def _values(report: Report, tally: Tally) -> list[Any]:
    """A group's column values after its keys; a cost is a Decimal, or None without a price."""
    return [*tally.values().values(), *([tally.cost] if report.prices else [])]


def _clean(key: str | None) -> str:
    """A key on one line: tabs or newlines in a tag would break the rows of a table or TSV."""
    return "" if key is None else _CONTROL.sub(" ", key)


def _json_value(value: Any) -> str:
    """One JSON value; a cost exactly, as digits (no rounding, no exponent)."""
    if isinstance(value, Decimal):
        return number_text(value)
    return json.dumps(value, ensure_ascii=False)


def _json_object(pairs: Sequence[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{_json_value(name)}: {_json_value(value)}" for name, value in pairs) + "}"


def _json_document(head: list[tuple[str, Any]], rows: list[str], tail: list[tuple[str, str]]) -> str:
    """A JSON document of a few keys, one row per line: `jq` reads it, people can too.

    `rows` and the values in `tail` are JSON texts already."""
    rows_text = "[\n    " + ",\n    ".join(rows) + "\n  ]" if rows else "[]"
    parts = [f"  {_json_value(k)}: {_json_value(v)}" for k, v in head]
    parts.append(f'  "rows": {rows_text}')
    parts += [f"  {_json_value(k)}: {text}" for k, text in tail]
    return "{\n" + ",\n".join(parts) + "\n}\n"


def as_json(report: Report) -> str:
    """`{"by", "columns", "rows", "totals"}` (and `price_unit` when priced); `by` is a list for two keys."""
    names = columns(report)
    rows = [_json_object(list(zip(names, [*k, *_values(report, t)], strict=True))) for k, t in report.rows]
    totals = _json_object(list(zip(names[len(report.by) :], _values(report, report.totals), strict=True)))
    by: Any = report.by[0] if len(report.by) == 1 else list(report.by)
    tail = [("totals", totals)]
    if report.prices:
        tail.append(("price_unit", _json_value(report.prices.unit)))
    return _json_document([("by", by), ("columns", names)], rows, tail)


def _plain(value: Any) -> str:
    """A value for TSV and CSV: plain digits, a cost exact, nothing for None."""
    if value is None:
        return ""
    return number_text(value) if isinstance(value, Decimal) else str(value)


def as_tsv(report: Report) -> str:
    """A header line, then one tab-separated line per group: plain numbers, for cut/awk/sort."""
    lines = ["\t".join(columns(report))]
    for key, tally in report.rows:
        lines.append("\t".join([*(_clean(k) for k in key), *map(_plain, _values(report, tally))]))
    return "\n".join(lines) + "\n"


def as_csv(report: Report) -> str:
    """RFC 4180 CSV with a header row (lines end in \\n)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(report))
    for key, tally in report.rows:
        writer.writerow([*("" if k is None else k for k in key), *map(_plain, _values(report, tally))])
    return out.getvalue()


def _cost_heading(unit: str) -> str:
    return f"cost {_clean(unit)}"


def _grouped(value: Any) -> str:
    """A number for people: thousands separated, a cost rounded to 4 places, `-` for none."""
    if value is None:
        return "-"
    return display_text(value) if isinstance(value, Decimal) else f"{value:,}"


def as_table(report: Report) -> str:
    """An aligned table for people: thousands separators, a missing tag as (none), a total row.

    Grouped by day alone, a last column charts each day's cost (when priced) or total tokens.
    """
    heads = [*report.by, *(HEADINGS[name] for name in COLUMNS)]
    if report.prices:
        heads.append(_cost_heading(report.prices.unit))
    body = [
        [*("(none)" if k is None else _clean(k) for k in key), *map(_grouped, _values(report, tally))]
        for key, tally in report.rows
    ]
    if report.rows:
        blank = [""] * (len(report.by) - 1)
        body.append(["total", *blank, *map(_grouped, _values(report, report.totals))])
    left = len(report.by)
    if report.by == ("day",):
        amounts = [(t.cost or 0) if report.prices else t.total_tokens for _, t in report.rows]
        largest = max(amounts, default=0)
        heads.append("")
        for row, amount in zip(body, amounts, strict=False):
            row.append(bar(amount, largest))
        if report.rows:
            body[-1].append("")
    return _aligned([heads, *body], left, chart=report.by == ("day",))


def _aligned(table: list[list[str]], left: int, chart: bool = False) -> str:
    """Columns padded to their widest cell: the first `left` to the left, numbers to the right,
    a chart (the last column) left as drawn."""
    count = len(table[0]) - (1 if chart else 0)
    widths = [max(len(row[i]) for row in table) for i in range(count)]
    lines = []
    for row in table:
        # With a chart, its cell is the one left over.
        pairs = enumerate(zip(row, widths, strict=not chart))
        cells = [cell.ljust(width) if i < left else cell.rjust(width) for i, (cell, width) in pairs]
        if chart:
            cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def bar(amount: int | Decimal, largest: int | Decimal, width: int = BAR_WIDTH) -> str:
    """A horizontal bar, `largest` filling `width` cells, in eighths of a cell (rounded half up).

    Anything above zero shows at least one eighth, so that no day with use looks empty.
    """
    if amount <= 0 or largest <= 0:
        return ""
    eighths = int((2 * amount * width * 8 + largest) // (2 * largest))
    eighths = max(eighths, 1)
    return _FULL * (eighths // 8) + _PARTS[eighths % 8]


# ---------------------------------------------------------------------------------------------
# usage --calls


def _call_values(calls: Calls, call: Call) -> list[Any]:
    values: dict[str, Any] = {
        "ts": call.ts, "command": call.command, "model": call.model, "tag": call.tag, **call.tokens,
        "cost": call.cost, "latency_ms": call.latency_ms, "exit_code": call.exit_code,
    }
    return [values[name] for name in call_columns(calls)]


def calls_json(calls: Calls) -> Iterator[str]:
    """`{"columns", "rows"}` (and `price_unit` when priced), one call per line."""
    names = call_columns(calls)
    yield "{\n" f'  "columns": {_json_value(names)},\n' '  "rows": ['
    separator = "\n    "
    for call in calls.rows:
        yield separator + _json_object(list(zip(names, _call_values(calls, call), strict=True)))
        separator = ",\n    "
    yield "\n  ]" if separator != "\n    " else "]"
    yield f',\n  "price_unit": {_json_value(calls.prices.unit)}\n}}\n' if calls.prices else "\n}\n"


def calls_tsv(calls: Calls) -> Iterator[str]:
    """A header line, then one tab-separated line per call."""
    yield "\t".join(call_columns(calls)) + "\n"
    for call in calls.rows:
        values = _call_values(calls, call)
        yield "\t".join(_clean(v) if isinstance(v, str) else _plain(v) for v in values) + "\n"


def calls_csv(calls: Calls) -> Iterator[str]:
    """RFC 4180 CSV with a header row, one line per call."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(call_columns(calls))
    for call in calls.rows:
        writer.writerow([_plain(v) for v in _call_values(calls, call)])
        # One line at a time: the listing of a whole ledger is never held as text.
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def calls_table(calls: Calls) -> Iterator[str]:
    """An aligned table, one line per call: texts to the left, numbers to the right, `-` for none.
    (Its widths need every row: on a terminal, the listing has a limit.)"""
    names = call_columns(calls)
    heads = [HEADINGS.get(name, name) for name in names]
    if calls.prices:
        heads[names.index("cost")] = _cost_heading(calls.prices.unit)
    body = [
        [_clean(v) if isinstance(v, str) else _grouped(v) for v in _call_values(calls, call)]
        for call in calls.rows
    ]
    yield _aligned([heads, *body], names.index("tag") + 1)
