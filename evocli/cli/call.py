"""The process's side of a call: stdin, terminals, settings, and one call sent, recorded and shown."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

from evocli import client, config, messages
from evocli.cli.base import is_terminal
from evocli.cli.options import CallOptions
from evocli.errors import EvocliError, ExitCode, InputError
from evocli.output import Console, Renderer
from evocli.redact import add_secret


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
) -> client.Completion | None:
    """Resolve settings, send the messages, record the call and render the answer.

    Returns the completion (None for --dry-run) so a command can do more with it.
    """
    mode = opts.mode
    stream = mode.stream(opts.stream, is_terminal(sys.stdout))
    settings = load_settings(opts, conversation, need_key=not opts.dry_run)
    request = client.build_request(settings, msgs, stream=stream)
    if opts.dry_run:
        doc = client.describe_request(request, settings.api_key, settings.key_source)
        out.answer((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return None

    from evocli import ledger, transport

    renderer = Renderer(out, mode, opts.show_usage)
    recorder = ledger.Recorder(
        enabled=settings.ledger, ledger_dir=settings.ledger_dir, command=command, model=settings.model,
        stream=stream, tag=opts.tag, warn=out.warn,
    )
    link = transport.Link(notify=out.notice)
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
