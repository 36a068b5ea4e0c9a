"""The process's side of a call: stdin, terminals, settings, the answer contract, and the call made."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from evocli import client, config, messages
from evocli.cli.base import is_terminal
from evocli.cli.options import CallOptions
from evocli.errors import InputError
from evocli.output import Console
from evocli.redact import add_secret

if TYPE_CHECKING:
    # Imported where they are used: building the app for --help or TAB needs neither.
    from evocli import answer, schema
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
    opts: CallOptions, conversation: config.Overrides | None = None, *, need_key: bool = True
) -> config.Settings:
    """Resolve the settings of a call once, from flags, environment and config file."""
    flags = opts.overrides()
    env = dict(os.environ)
    settings = config.resolve(flags, env, config.load_config_file(env), conversation, need_key=need_key)
    add_secret(settings.api_key)
    return settings


def ledger_dir() -> Path:
    """Where the ledger is, resolved like every setting; reading it needs no key."""
    env = dict(os.environ)
    # need_key=False: api_key_command (which may prompt for a passphrase) is not run.
    return config.resolve(config.Overrides(), env, config.load_config_file(env), need_key=False).ledger_dir


def answer_contract(
    opts: CallOptions, conv: Conversation | None = None, *, lines: bool = False
) -> answer.Contract:
    """The call's answer contract, checked and its schema compiled before any request (and
    before --dry-run prints one). --schema wins over the conversation file's `schema:`. With
    `lines` (batch), the schema flags may act on the lines' own schemas instead."""
    from evocli import answer, schema

    source, load = _schema_source(opts, conv)
    if source is not None or not lines:
        needs = "--schema" if conv is None else f"--schema, or a schema: in {conv.name}"
        opts.check_answer_flags(source, needs)
    loaded = None if load is None else load()
    strict, multi = not opts.no_strict, opts.schema_multi
    prepared = None if loaded is None else schema.prepare(loaded, strict=strict, multi=multi)
    retries = 1 if opts.schema_retries is None else opts.schema_retries
    return answer.Contract(prepared, retries, opts.extraction, opts.allow_incomplete)


def _schema_source(
    opts: CallOptions, conv: Conversation | None
) -> tuple[str | None, Callable[[], schema.Loaded] | None]:
    """Where the call's schema comes from, in words, and how it is loaded (None, None: no schema)."""
    from evocli import schema

    if opts.schema is not None:
        text = opts.schema
        return "--schema", lambda: schema.from_option(text, schema.files_in(""))
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
) -> client.Completion | None:
    """Resolve settings, send the messages until the answer is judged, record every attempt and
    render the answer.

    Returns the last completion (None for --dry-run) so a command can do more with it.
    """
    from evocli.cli.exchange import Exchange, Shape

    mode = opts.mode
    stream = mode.stream(opts.stream, is_terminal(sys.stdout))
    settings = load_settings(opts, conversation, need_key=not opts.dry_run)
    settings = replace(settings, params={**settings.params, **contract.params()})
    if opts.dry_run:
        request = client.build_request(settings, msgs, stream=stream)
        doc = client.describe_request(request, settings.api_key, settings.key_source)
        out.answer((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return None
    shape = Shape(mode, stream, opts.show_usage, command, opts.tag)
    return Exchange(settings, contract, out, shape).run(msgs)
