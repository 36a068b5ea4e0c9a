"""`evocli usage`: the usage ledger as a report, or the account's credits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

import typer

from evocli.cli import options as o
from evocli.cli.call import ledger_dir, load_settings
from evocli.errors import UsageError
from evocli.ledger_read import GROUPINGS
from evocli.output import Console

if TYPE_CHECKING:
    Grouping = str
else:  # one of the ledger's groupings: Typer checks it and TAB completes it
    Grouping = Literal[GROUPINGS]


def usage(
    ctx: typer.Context,
    by: Annotated[
        Grouping | None,
        typer.Option(
            "--by", metavar="KEY", case_sensitive=False, help="Group the rows by model, day, tag or command."
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
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    credits: Annotated[
        bool, typer.Option("--credits", help="Ask the API for the account's remaining and used credits.")
    ] = False,
    quiet: o.QuietOpt = False,
    debug: o.DebugOpt = False,
) -> None:
    """Report the calls in the usage ledger, or the account's credits with --credits.

    A table on a terminal, tab-separated values with a header when piped.

    Example: evocli usage --since 7d --by tag
    """
    out: Console = ctx.obj
    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together")
    if credits:
        for name, value in (("--by", by), ("--since", since), ("--until", until), ("--tag", tag),
                            ("--csv", as_csv)):
            if value:
                raise UsageError(f"--credits cannot be combined with {name}")
        _credits(out, as_json)
        return
    from datetime import UTC, datetime

    from evocli import ledger_read, report

    period = ledger_read.make_period(since, until, datetime.now(UTC))
    summary = ledger_read.report(ledger_dir(), by or "model", period, tag or ())
    if summary.corrupt:
        out.warn(f"skipped {summary.corrupt} corrupt ledger line{'s' if summary.corrupt > 1 else ''}")
    fmt = "json" if as_json else "csv" if as_csv else "table" if out.out_tty else "tsv"
    out.answer(report.render(summary, fmt).encode())


def _credits(out: Console, as_json: bool) -> None:
    from evocli import credits

    balance = credits.fetch_credits(load_settings(o.CallOptions()), notify=out.notice)
    out.answer((credits.credits_json(balance) if as_json else credits.credits_text(balance)).encode())
