"""`evocli usage`: the usage ledger as a report or a listing of calls, or the account's credits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from evocli.cli import options as o
from evocli.cli.call import load_settings
from evocli.errors import UsageError
from evocli.ledger_read import GROUPINGS
from evocli.output import Console

if TYPE_CHECKING:
    from evocli.config import Settings
    from evocli.ledger_read import Period

    Grouping = str
else:  # one of the ledger's groupings: Typer checks each --by and TAB completes it
    Grouping = Enum("Grouping", {name: name for name in GROUPINGS}, type=str)

# How many calls `--calls` lists on a terminal when --limit is not given (piped: every call).
TERMINAL_LIMIT = 50
# Pieces of a listing are written in writes of about this size: a million calls piped to a file
# would otherwise be a million writes.
_WRITE_SIZE = 1 << 16


def usage(
    ctx: typer.Context,
    by: Annotated[
        list[Grouping] | None,
        typer.Option(
            "--by", metavar="KEY", case_sensitive=False,
            help="Group the rows by model, day, tag or command; give two for one row per pair.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="From this time: 2026-11-01, 2026-11-01T09:30 (UTC), 7d or 24h."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="WHEN", help="Up to this time; a date includes that whole day."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="TEXT", help="Only calls with this tag (repeatable)."),
    ] = None,
    calls: Annotated[
        bool, typer.Option("--calls", help="One row per call, newest last, instead of a report.")
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", metavar="N", min=0,
            help=f"With --calls: the last N calls (default {TERMINAL_LIMIT} on a terminal, all when piped).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    credits: Annotated[
        bool, typer.Option("--credits", help="Ask the API for the account's remaining and used credits.")
    ] = False,
    quiet: o.QuietOpt = False,
    debug: o.DebugOpt = False,
) -> None:
    """Report the calls in the usage ledger (tokens, and their cost when prices are configured),
    list them one by one with --calls, or show the account's credits with --credits.

    A table on a terminal, tab-separated values with a header when piped.

    Example: evocli usage --since 7d --by tag --by model
    """
    out: Console = ctx.obj
    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together")
    if credits:
        given = (("--by", by), ("--since", since), ("--until", until), ("--tag", tag), ("--csv", as_csv),
                 ("--calls", calls), ("--limit", limit is not None))
        for name, value in given:
            if value:
                raise UsageError(f"--credits cannot be combined with {name}")
        _credits(out, as_json)
        return
    keys = groupings(by or ())
    if calls and by:
        raise UsageError("--calls lists each call: it cannot be combined with --by")
    if limit is not None and not calls:
        raise UsageError("--limit needs --calls (it limits the listing of calls)")
    from datetime import UTC, datetime

    from evocli import ledger_read

    period = ledger_read.make_period(since, until, datetime.now(UTC))
    # Reading the ledger needs no key: api_key_command (which may ask for a passphrase) is not run.
    settings = load_settings(o.CallOptions(), need_key=False)
    fmt = "json" if as_json else "csv" if as_csv else "table" if out.out_tty else "tsv"
    if calls:
        shown = limit if limit is not None else TERMINAL_LIMIT if out.out_tty else None
        _list_calls(out, settings, period, tag or (), shown, fmt)
    else:
        _report(out, settings, keys, period, tag or (), fmt)


def groupings(given: Sequence[str]) -> tuple[str, ...]:
    """The `--by` keys as plain names: one or two, each once (`model` when none is given)."""
    # Typer hands over members of the Grouping enum: their values are the names.
    keys = tuple(str(getattr(key, "value", key)) for key in given) or ("model",)
    if len(keys) > 2:
        raise UsageError(f"--by takes one or two keys, got {len(keys)}", hint="--by tag --by model")
    if len(keys) == 2 and keys[0] == keys[1]:
        raise UsageError(f"--by {keys[0]} is given twice")
    return keys


def _report(
    out: Console, settings: Settings, keys: tuple[str, ...], period: Period, tags: Sequence[str], fmt: str
) -> None:
    from evocli import ledger_sum, report

    summary = ledger_sum.report(settings.ledger_dir, keys, period, tags, settings.prices)
    out.answer(report.render(summary, fmt).encode())
    _warnings(out, summary.corrupt, summary.unpriced)


def _list_calls(
    out: Console, settings: Settings, period: Period, tags: Sequence[str], limit: int | None, fmt: str
) -> None:
    from evocli import ledger_calls, report

    listing = ledger_calls.calls(settings.ledger_dir, period, tags, limit, settings.prices)
    _write(out, report.calls_chunks(listing, fmt))
    # After the listing: without a limit it is read as it is written, and only then complete.
    _warnings(out, listing.corrupt, listing.unpriced)


def _write(out: Console, chunks: Iterable[str]) -> None:
    """Pieces of text written to stdout as they come, gathered into writes of a useful size."""
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= _WRITE_SIZE:
            out.answer("".join(pending).encode())
            pending, size = [], 0
    if pending:
        out.answer("".join(pending).encode())


def _warnings(out: Console, corrupt: int, unpriced: Sequence[str]) -> None:
    """What a report or listing left out, on stderr (both hidden by -q)."""
    from evocli import cost

    if corrupt:
        out.warn(f"skipped {corrupt} corrupt ledger line{'s' if corrupt > 1 else ''}")
    warning = cost.unpriced_warning(unpriced)
    if warning:
        out.warn(warning)


def _credits(out: Console, as_json: bool) -> None:
    from evocli import credits

    balance = credits.fetch_credits(load_settings(o.CallOptions()), notify=out.notice)
    out.answer((credits.credits_json(balance) if as_json else credits.credits_text(balance)).encode())
