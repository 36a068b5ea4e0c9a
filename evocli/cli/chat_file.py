"""`evocli chat-file`: a YAML conversation, sent and optionally continued in the file."""

from __future__ import annotations

import dataclasses
import os
from contextlib import nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer

from evocli.cli import options as o
from evocli.cli.call import answer_contract, load_attachments, read_stdin, run_call
from evocli.errors import UsageError
from evocli.output import Console

if TYPE_CHECKING:
    from evocli.attach import Attachment
    from evocli.conversation import Prepared

VarOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        help="A value for {{ NAME }} in the file; wins over its vars: (repeatable).",
        rich_help_panel=o.CALL,
    ),
]
AppendOpt = Annotated[
    bool,
    typer.Option(
        "--append",
        help="After a successful reply, append the new turns (piped stdin, the answer) to FILE.",
        rich_help_panel=o.CALL,
    ),
]


@o.shared_options(*o.CALL_OPTIONS)
def chat_file(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="A YAML conversation; - reads it from stdin.", show_default=False
        ),
    ],
    var: VarOpt = None,
    append: AppendOpt = False,
    attach: o.AttachOpt = None,
    image_detail: o.ImageDetailOpt = None,
    no_stdin: o.NoStdinOpt = False,
    **shared: Any,
) -> None:
    """Send a YAML conversation; piped stdin fills {{ stdin }} or becomes the last user turn.

    Example: git diff | evocli chat-file review.yaml
    """
    opts = o.CallOptions.from_params(
        ctx.params, own=("file", "var", "append", "attach", "image_detail", "no_stdin")
    )
    if file == "-" and append:
        raise UsageError("--append needs a FILE to write to, not - (stdin)")
    if file == "-" and no_stdin:
        raise UsageError("FILE - reads the conversation from stdin, which --no-stdin forbids")
    if "-" in (attach or []) and (file == "-" or no_stdin):
        raise UsageError("-a - reads an attachment from stdin, which "
                         + ("holds the conversation" if file == "-" else "--no-stdin forbids"))
    from evocli import conversation, convstore

    out: Console = ctx.obj
    variables = conversation.parse_vars(var or [])
    files = load_attachments(attach or [], image_detail)
    # Read stdin before taking the lock: a slow producer must not hold up other runs.
    piped = None if no_stdin or file == "-" or "-" in (attach or []) else read_stdin()
    # --dry-run sends nothing, so it saves nothing either: FILE is left alone, unlocked.
    saving = append and not opts.dry_run

    def waiting() -> None:
        out.notice(f"waiting for another evocli appending to {file}")

    with convstore.locked(file, waiting) if saving else nullcontext(file) as path:
        text = (read_stdin(force=True) or "") if file == "-" else convstore.read_text(path, file)
        conv = conversation.parse(text, "<stdin>" if file == "-" else file)
        contract = answer_contract(opts, conv)
        prepared = _attached(conversation.prepare(conv, variables, piped), files, file, saving)
        out.hold_failures = saving  # the answer is saved whatever becomes of stdout
        reply = run_call(opts, prepared.messages, "chat-file", out, contract, conv.overrides(),
                         attachments=[*files, *prepared.attachments])
        if saving and reply is not None:
            turns = [*prepared.new_turns, conversation.turn("assistant", reply.content)]
            if not convstore.save_turns(path, file, turns):
                out.warn(f"{file}: its layout does not allow appending in place; "
                         "rewrote it without its comments and formatting")
        out.raise_failure()


def _attached(prepared: Prepared, files: list[Attachment], file: str, saving: bool) -> Prepared:
    """-a adds the files to the turn being sent: the one piped stdin made (saved with references
    to them), else the file's last message, which --append could not save them with."""
    if not files:
        return prepared
    from evocli import attach, conversation

    if not prepared.new_turns and saving:
        raise UsageError("-a with --append attaches to the turn piped on stdin, and there is none",
                         hint="pipe the new turn on stdin, or drop --append")
    messages = [*prepared.messages[:-1], attach.add_parts(prepared.messages[-1], files)]
    turns = prepared.new_turns
    if turns:
        text = turns[0]["content"]
        turns = [conversation.reference_turn(text, files, os.path.dirname(file)), *turns[1:]]
    return dataclasses.replace(prepared, messages=messages, new_turns=turns)
