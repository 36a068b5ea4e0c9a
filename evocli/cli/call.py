"""The process's side of a call: stdin, terminals, settings, the answer contract, and the call made."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from evocli import client, config, messages, signals
from evocli.cli.options import CallOptions
from evocli.errors import InputError, TemporaryError, UsageError
from evocli.output import Console
from evocli.redact import add_secret, add_url_secrets

if TYPE_CHECKING:
    # Imported where they are used: building the app for --help or TAB needs neither.
    from evocli import answer, schema, transport
    from evocli.attach import Attachment
    from evocli.conversation import Conversation


def read_stdin(force: bool = False) -> str | None:
    """Piped stdin as text, or None when stdin is a terminal (unless forced) or absent."""
    stream = sys.stdin
    if stream is None:
        return None
    try:
        if not force and stream.isatty():
            return None
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    except (OSError, ValueError):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin is not valid UTF-8 text (byte {exc.start})") from None


def load_settings(
    opts: CallOptions,
    conversation: config.Overrides | None = None,
    *,
    need_key: bool = True,
    warn: Callable[[str], None] | None = None,
) -> config.Settings:
    """Resolve the settings of a call once, from flags, environment and config file; `warn`
    hears of a base URL that would send the calls to the wrong place."""
    flags = opts.overrides()
    env = dict(os.environ)
    settings = config.resolve(flags, env, config.load_config_file(env), conversation, need_key=need_key)
    add_secret(settings.api_key)
    for url in (settings.base_url, settings.fallback_base_url, settings.credits_url):
        add_url_secrets(url)
    problem = config.base_url_problem(settings.base_url)
    if problem and warn is not None:
        warn(f"base URL {settings.base_url}: {problem}")
    return settings


def answer_contract(
    opts: CallOptions, conv: Conversation | None = None, *, lines: bool = False
) -> answer.Contract:
    """The call's answer contract, checked and its schema compiled before any request (and
    before --dry-run prints one). --schema wins over the conversation file's `schema:`. With
    `lines` (batch), the schema flags may act on the lines' own schemas instead."""
    from evocli import answer

    source, load = _schema_source(opts, conv)
    if source is not None or not lines:
        needs = "--schema" if conv is None else f"--schema, or a schema: in {conv.name}"
        opts.check_answer_flags(source, needs)
    prepared = None
    if load is not None:  # the schema module (and its validator) load only when there is one
        from evocli import schema

        prepared = schema.prepare(load(), strict=not opts.no_strict, multi=opts.schema_multi)
    retries = 1 if opts.schema_retries is None else opts.schema_retries
    return answer.Contract(prepared, retries, opts.extraction, opts.allow_incomplete)


def _schema_source(
    opts: CallOptions, conv: Conversation | None
) -> tuple[str | None, Callable[[], schema.Loaded] | None]:
    """Where the call's schema comes from, in words, and how it is loaded (None, None: no schema)."""
    if opts.schema is not None:
        text = opts.schema

        def from_option() -> schema.Loaded:
            from evocli import schema

            return schema.from_option(text, schema.files_in(""))

        return "--schema", from_option
    if conv is not None and conv.schema is not None:
        return f"the schema of {conv.name}", lambda: file_schema(conv)
    return None, None


def file_schema(conv: Conversation) -> schema.Loaded:
    """A conversation file's `schema:`, a file it names read relative to the file's folder."""
    from evocli import schema

    if "response_format" in conv.params:
        # Both in the one file: neither layer can win over the other.
        raise InputError(f"{conv.schema_where}: cannot be combined with params.response_format, "
                         "as the schema is sent as the response_format")
    return schema.from_value(conv.schema, schema.files_in(os.path.dirname(conv.name)), conv.schema_where)


def run_call(
    opts: CallOptions,
    msgs: list[messages.Message],
    command: str,
    out: Console,
    contract: answer.Contract,
    conversation: config.Overrides | None = None,
    attachments: Sequence[Attachment] = (),
) -> client.Completion | None:
    """Resolve settings, send the messages until the answer is judged, record every attempt and
    render the answer.

    Returns the last completion (None for --dry-run) so a command can do more with it.
    `attachments` are the files the messages carry, named if the request is too large.
    """
    from evocli import payload
    from evocli.cli.exchange import Exchange, Shape

    mode = opts.mode
    stream = mode.stream(opts.stream, out.out_tty)
    settings = load_settings(opts, conversation, need_key=not opts.dry_run, warn=out.warn)
    settings = replace(settings, params={**settings.params, **contract.params()})
    request = client.build_request(settings, msgs, stream=stream)
    size = payload.encoded_size(request.body)
    if size > payload.BODY_LIMIT:
        from evocli import attach

        attach.check_request_size(size, attachments)
    if opts.dry_run:
        doc = client.describe_request(request, settings.api_key, settings.key_source)
        shown = payload.shorten_payloads(doc)  # a 5 MB image stays readable
        out.answer((json.dumps(shown, indent=2, ensure_ascii=False) + "\n").encode())
        return None
    shape = Shape(mode, stream, opts.show_usage, command, opts.tag)
    link = _link(opts, settings, out)
    try:
        with signals.time_limit(opts.max_time):
            return Exchange(settings, contract, out, shape, link).run(msgs)
    except signals.TimeUp:
        raise TemporaryError(
            f"the call did not finish within --max-time {opts.max_time:g} s",
            hint="raise --max-time, or ask for less (--max-tokens, --effort)",
        ) from None


def _link(opts: CallOptions, settings: config.Settings, out: Console) -> transport.Link:
    """How the call's requests go out: its size limit, its -v trace, its --max-time deadline."""
    from evocli import transport

    link = transport.Link(notify=out.notice, max_response_bytes=settings.max_response_bytes)
    if opts.verbose:
        from evocli import trace

        link.session, link.trace = trace.session(), trace.Trace(out.trace)
    if opts.max_time is not None:
        link.deadline = time.monotonic() + opts.max_time
    return link


class Turn(NamedTuple):
    """The user's new turn: its text and the files attached to it."""

    text: str
    files: Sequence[Attachment] = ()


def load_attachments(given: Sequence[str], detail: str | None) -> list[Attachment]:
    """The files of -a, read now (refused before any request); `-` reads stdin."""
    if not given:
        return []
    from evocli import attach

    stdin = sys.stdin.buffer if "-" in given and sys.stdin is not None else None
    return attach.load_all(given, attach.Sources(detail=detail, stdin=stdin))


def attach_content(text: str, files: Sequence[Attachment]) -> Any:
    """A user turn's content: the text, then its attachments (the text alone without any)."""
    if not files:
        return text
    from evocli import attach

    return attach.user_content(text, files)


def converse(opts: CallOptions, out: Console, file: str, system: str | None, turn: Turn) -> None:
    """`ask -c FILE`: the file's conversation and the new turn are sent; after a successful
    answer both turns are saved to FILE, as `chat-file --append` saves them (one run at a time,
    atomic replace, comments kept; attachments as references, never their data)."""
    import dataclasses

    from evocli import conversation, convstore

    saved = conversation.reference_turn(turn.text, turn.files, os.path.dirname(file))  # must be savable
    sending = {"role": "user", "content": attach_content(turn.text, turn.files), "literal": True}

    def waiting() -> None:
        out.notice(f"waiting for another evocli appending to {file}")

    # --dry-run sends nothing, so it saves nothing either: FILE is left alone, not even created.
    lock = contextlib.nullcontext(file) if opts.dry_run else convstore.locked(file, waiting, create=True)
    with lock as path:
        current = _read_if_any(path, file)
        conv = conversation.parse(current, file) if current.strip() else conversation.Conversation(file)
        if system is not None and current.strip():
            raise UsageError(
                f"-s: {file} already holds a conversation; its system message is set when it is created",
                hint=f"edit {file} to change it",
            )
        contract = answer_contract(opts, conv)
        conv = dataclasses.replace(conv, system=system if system is not None else conv.system,
                                   messages=[*conv.messages, sending])
        prepared = conversation.prepare(conv, {}, None)
        out.hold_failures = not opts.dry_run  # the answer is saved whatever becomes of stdout
        reply = run_call(opts, prepared.messages, "ask", out, contract, conv.overrides(),
                         attachments=[*turn.files, *prepared.attachments])
        if reply is not None:
            answered = conversation.turn("assistant", reply.content)
            convstore.save_turns(path, file, [saved, answered], system=system)
        out.raise_failure()


def _read_if_any(path: str, file: str) -> str:
    """The conversation so far; a file that does not exist (a dry run creates nothing) is new."""
    from evocli import convstore

    if not os.path.lexists(path):
        return ""
    return convstore.read_text(path, file)
