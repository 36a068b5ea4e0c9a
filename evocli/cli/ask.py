"""`evocli ask`: one question from the arguments and/or piped stdin."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from evocli import messages
from evocli.cli import options as o
from evocli.cli.call import (
    Turn,
    answer_contract,
    attach_content,
    converse,
    load_attachments,
    read_stdin,
    run_call,
)
from evocli.errors import UsageError


@o.shared_options(*o.CALL_OPTIONS)
def ask(
    ctx: typer.Context,
    prompt: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="PROMPT...", help="The prompt; a lone - reads it from stdin.", show_default=False
        ),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option(
            "-s", "--system", metavar="TEXT", help="A system message to put first.", rich_help_panel=o.CALL
        ),
    ] = None,
    conversation: Annotated[
        str | None,
        typer.Option(
            "-c",
            "--conversation",
            metavar="FILE",
            help="Continue the conversation in FILE (created if missing) and save both turns to it.",
            rich_help_panel=o.CALL,
        ),
    ] = None,
    attach: o.AttachOpt = None,
    image_detail: o.ImageDetailOpt = None,
    no_stdin: o.NoStdinOpt = False,
    **shared: Any,
) -> None:
    """Ask one question; piped stdin comes first, then a blank line, then the arguments.

    Example: git log -5 | evocli ask "Summarize these commits"
    """
    opts = o.CallOptions.from_params(
        ctx.params, own=("prompt", "system", "conversation", "attach", "image_detail", "no_stdin")
    )
    args = list(prompt or [])
    from_stdin_only = args == ["-"]
    stdin_attached = "-" in (attach or [])
    if from_stdin_only and no_stdin:
        raise UsageError("a lone - reads the prompt from stdin, which --no-stdin forbids")
    if stdin_attached and (from_stdin_only or no_stdin):
        raise UsageError("-a - reads an attachment from stdin, so the prompt cannot come from it"
                         if from_stdin_only else "-a - reads stdin, which --no-stdin forbids")
    files = load_attachments(attach or [], image_detail)
    stdin_text = None if no_stdin or stdin_attached else read_stdin(force=from_stdin_only)
    text = messages.compose_prompt([] if from_stdin_only else args, stdin_text)
    if conversation is not None:
        converse(opts, ctx.obj, conversation, system, Turn(text, files))
    else:
        msgs = messages.ask_messages(text, system, attach_content(text, files))
        run_call(opts, msgs, "ask", ctx.obj, answer_contract(opts), attachments=files)
