"""`evocli batch`: many prompts from JSON Lines, sent concurrently, results in input order."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from evocli.cli import options as o
from evocli.cli.call import answer_contract, load_settings
from evocli.errors import UsageError


@o.shared_options(
    "model", "temperature", "max_tokens", "param", "effort", "verbosity", "seed", "schema", "schema_multi",
    "no_strict", "schema_retries", "allow_incomplete", "tag", "quiet", "no_ledger", "timeout",
    "connect_timeout", "retries", "retry_max_time", "debug",
)
def batch(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="JSON Lines of prompts; - reads stdin.", show_default=False)
    ],
    concurrency: Annotated[
        int, typer.Option("-c", "--concurrency", metavar="N", min=1, max=256, help="Requests in flight.")
    ] = 4,
    out: Annotated[
        str | None,
        typer.Option("--out", metavar="FILE", help="Write the results to FILE instead of stdout."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="With --out: skip the ids FILE already holds as ok.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Only the lines whose number modulo N is I-1."),
    ] = None,
    max_cost: Annotated[
        str | None,
        typer.Option(
            "--max-cost", metavar="AMOUNT",
            help="Send no more lines once this run has spent AMOUNT (needs a price for every model).",
        ),
    ] = None,
    max_total_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-total-tokens", metavar="N", min=0, help="Send no more lines once this run used N tokens."
        ),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option(
            "-s", "--system", metavar="TEXT", help="Default system message.", rich_help_panel=o.CALL
        ),
    ] = None,
    **shared: Any,
) -> None:
    """Run many prompts from JSON Lines, concurrently; results come out in input order.

    Each line is a JSON string (a prompt) or an object with any of id, prompt, system,
    messages, model, params, vars, attach, schema. The options are the defaults for every line.

    Example: evocli batch tickets.jsonl --concurrency 8 --out results.jsonl --resume
    """
    opts = o.CallOptions.from_params(
        ctx.params,
        own=("file", "concurrency", "out", "resume", "shard", "max_cost", "max_total_tokens", "system"),
    )
    from evocli import batch as lines
    from evocli import batchrun, cost
    from evocli.batchbudget import RunBudget

    # Lines may bring their own schema: --schema-multi, --no-strict and --schema-retries act on it.
    contract = answer_contract(opts, lines=True)
    if resume and out is None:
        raise UsageError("--resume needs --out FILE (the results to resume from)")
    stdin = sys.stdin.buffer if sys.stdin is not None else None
    if out is not None and batchrun.names_input(out, file, stdin):
        raise UsageError("--out must not be the input file", hint="write the results to another file")
    cap = None if max_cost is None else cost.parse_max_cost(max_cost)
    settings = load_settings(opts, warn=ctx.obj.warn)
    budget = None
    if cap is not None or max_total_tokens is not None:
        budget = RunBudget(cost.Budget(settings.prices, cap, max_total_tokens))
    plan = batchrun.Plan(
        file, out, resume, lines.parse_shard(shard) if shard else None, concurrency, system, opts.tag,
        contract, strict=not opts.no_strict, multi=opts.schema_multi, budget=budget,
    )
    batchrun.run(plan, settings, ctx.obj, stdin)
