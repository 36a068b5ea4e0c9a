"""The process's side of a call: stdin, terminals, settings, and one call sent, recorded and shown."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evocli import client, config, messages
from evocli.cli.options import CallOptions
from evocli.errors import EvocliError, ExitCode, InputError, UsageError
from evocli.output import Console, Renderer
from evocli.redact import add_secret, add_url_secrets

if TYPE_CHECKING:
    from evocli.attach import Attachment


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


def ledger_dir() -> Path:
    """Where the ledger is, resolved like every setting; reading it needs no key."""
    env = dict(os.environ)
    # need_key=False: api_key_command (which may prompt for a passphrase) is not run.
    return config.resolve(config.Overrides(), env, config.load_config_file(env), need_key=False).ledger_dir


class Waiting:
    """`waiting for gpt-5.2… 7 s` on the status line while a call has shown nothing for a second,
    updated each second; only on a terminal's stderr, and not with -q."""

    def __init__(self, out: Console, model: str) -> None:
        self.out, self.model = out, model
        self.done = threading.Event()
        self.thread: threading.Thread | None = None
        if out.err_tty and not out.quiet:
            self.thread = threading.Thread(target=self._run, name="evocli-waiting", daemon=True)

    def __enter__(self) -> Waiting:
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        started = time.monotonic()
        while not self.done.wait(1.0):
            self.out.status(f"waiting for {self.model}… {time.monotonic() - started:.0f} s")

    def stop(self) -> None:
        """Erase the line for good (the answer, or an error, comes next)."""
        if self.thread is not None and not self.done.is_set():
            self.done.set()
            self.thread.join()
            self.out.status("")


def run_call(
    opts: CallOptions,
    msgs: list[messages.Message],
    command: str,
    out: Console,
    conversation: config.Overrides | None = None,
    attachments: Sequence[Attachment] = (),
) -> client.Completion | None:
    """Resolve settings, send the messages, record the call and render the answer.

    Returns the completion (None for --dry-run) so a command can do more with it.
    `attachments` are the files the messages carry, named if the request is too large.
    """
    from evocli import attach, payload

    mode = opts.mode
    stream = mode.stream(opts.stream, out.out_tty)
    settings = load_settings(opts, conversation, need_key=not opts.dry_run, warn=out.warn)
    request = client.build_request(settings, msgs, stream=stream)
    attach.check_request_size(payload.encoded_size(request.body), attachments)
    if opts.dry_run:
        doc = client.describe_request(request, settings.api_key, settings.key_source)
        shown = payload.shorten_payloads(doc)  # a 5 MB image stays readable
        out.answer((json.dumps(shown, indent=2, ensure_ascii=False) + "\n").encode())
        return None

    from evocli import ledger, transport

    renderer = Renderer(out, mode, opts.show_usage)
    recorder = ledger.Recorder(
        enabled=settings.ledger, ledger_dir=settings.ledger_dir, command=command, model=settings.model,
        stream=stream, tag=opts.tag, warn=out.warn,
    )
    link = transport.Link(notify=out.notice, max_response_bytes=settings.max_response_bytes)
    waiting = Waiting(out, settings.model)

    def on_delta(text: str) -> None:
        waiting.stop()  # before the first byte of the answer
        renderer.delta(text)

    try:
        with waiting:
            if stream:
                completion, reply = transport.stream(settings, request, on_delta, link)
            else:
                completion, reply = transport.complete(settings, request, link)
    except EvocliError as err:
        recorder.record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
        renderer.cut()
        raise
    except KeyboardInterrupt:
        recorder.record(exit_code=int(ExitCode.INTERRUPTED), status=200 if renderer.started else None)
        with suppress(OSError):
            renderer.cut()
        raise
    except BrokenPipeError:
        # The reader went away (`| head -1`): the user's choice, not a failed call.
        recorder.record(exit_code=int(ExitCode.OK), status=200, ok=True)
        raise
    recorder.record(exit_code=0, status=reply.status, attempts=reply.attempts, completion=completion)
    if not stream:
        renderer.delta(completion.content)
    renderer.end(completion)
    return completion


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


def converse(
    opts: CallOptions, out: Console, file: str, system: str | None, text: str, files: Sequence[Attachment]
) -> None:
    """`ask -c FILE`: the file's conversation and the new turn are sent; after a successful
    answer both turns are saved to FILE, as `chat-file --append` saves them (one run at a time,
    atomic replace, comments kept; attachments as references, never their data)."""
    import dataclasses

    from evocli import conversation, convstore

    folder = os.path.dirname(file)
    saved = conversation.reference_turn(text, files, folder)  # before sending: must be savable
    sending = {"role": "user", "content": attach_content(text, files), "literal": True}

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
        conv = dataclasses.replace(conv, system=system if system is not None else conv.system,
                                   messages=[*conv.messages, sending])
        prepared = conversation.prepare(conv, {}, None)
        out.hold_failures = not opts.dry_run  # the answer is saved whatever becomes of stdout
        reply = run_call(opts, prepared.messages, "ask", out, conv.overrides(),
                         attachments=[*files, *prepared.attachments])
        if reply is not None:
            answer = conversation.turn("assistant", reply.content)
            convstore.save_turns(path, file, [saved, answer], system=system)
        out.raise_failure()


def _read_if_any(path: str, file: str) -> str:
    """The conversation so far; a file that does not exist (a dry run creates nothing) is new."""
    from evocli import convstore

    if not os.path.lexists(path):
        return ""
    return convstore.read_text(path, file)
