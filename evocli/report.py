"""Usage reports rendered: an aligned table, tab-separated values, CSV, or one JSON document."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from evocli.ledger_read import COLUMNS, Report

# The terminal table's headings: shorter than the column names, so a row fits a terminal.
HEADINGS = {
    "requests": "requests",
    "errors": "errors",
    "prompt_tokens": "prompt",
    "completion_tokens": "completion",
    "reasoning_tokens": "reasoning",
    "cached_tokens": "cached",
    "total_tokens": "total",
    "mean_latency_ms": "mean ms",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def render(report: Report, fmt: str) -> str:
    """The report in one of the formats: table, tsv, csv or json."""
    return {"table": as_table, "tsv": as_tsv, "csv": as_csv, "json": as_json}[fmt](report)


def columns(report: Report) -> list[str]:
    """The group key's column, then the report's columns."""
    return [report.by, *COLUMNS]


def _clean(key: str | None) -> str:
    """A key on one line: tabs or newlines in a tag would break the rows of a table or TSV."""
    return "" if key is None else _CONTROL.sub(" ", key)


def as_json(report: Report) -> str:
    """One JSON document, `{"by", "columns", "rows", "totals"}`, with one row per line."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    rows = [dump({report.by: key, **tally.values()}) for key, tally in report.rows]
    rows_text = "[\n    " + ",\n    ".join(rows) + "\n  ]" if rows else "[]"
    return (
        "{\n"
        f'  "by": {dump(report.by)},\n'
        f'  "columns": {dump(columns(report))},\n'
        f'  "rows": {rows_text},\n'
        f'  "totals": {dump(report.totals.values())}\n'
        "}\n"
    )


def as_tsv(report: Report) -> str:
    """A header line, then one tab-separated line per group: plain numbers, for cut/awk/sort."""
    lines = ["\t".join(columns(report))]
    for key, tally in report.rows:
        lines.append("\t".join([_clean(key), *(_plain(v) for v in tally.values().values())]))
    return "\n".join(lines) + "\n"


def as_csv(report: Report) -> str:
    """RFC 4180 CSV with a header row (lines end in \\n)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns(report))
    for key, tally in report.rows:
        writer.writerow(["" if key is None else key, *(_plain(v) for v in tally.values().values())])
    return out.getvalue()


def as_table(report: Report) -> str:
    """An aligned table for people: thousands separators, a missing tag as (none), a total row."""
    header = [report.by, *(HEADINGS[name] for name in COLUMNS)]
    body = [
        ["(none)" if key is None else _clean(key), *_grouped(tally.values())] for key, tally in report.rows
    ]
    if report.rows:
        body.append(["total", *_grouped(report.totals.values())])
    table = [header, *body]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _plain(value: int | None) -> str:
    return "" if value is None else str(value)


def _grouped(values: dict[str, int | None]) -> list[str]:
    return ["-" if v is None else f"{v:,}" for v in values.values()]
