"""One call's requests: each attempt sent, recorded in the ledger, judged by the answer contract, shown."""

from __future__ import annotations

import threading
import time
from contextlib import suppress
from typing import TYPE_CHECKING, NamedTuple

from evocli import answer, client, signals
from evocli.config import Settings
from evocli.errors import EvocliError, ExitCode
from evocli.messages import Message
from evocli.output import Console, OutputMode, Renderer

if TYPE_CHECKING:
    from evocli.ledger import Recorder
    from evocli.transport import Link, Reply


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


class Shape(NamedTuple):
    """How a call is sent and shown: the output mode, streaming, -u, and its ledger labels."""

    mode: OutputMode
    stream: bool
    show_usage: bool
    command: str
    tag: str | None


class _Sent(NamedTuple):
    """One attempt's answer, not yet recorded: its record waits for the verdict's exit code."""

    completion: client.Completion
    reply: Reply
    recorder: Recorder

    def record(self, code: int) -> None:
        self.recorder.record(exit_code=code, ok=code == 0, status=self.reply.status,
                             attempts=self.reply.attempts, completion=self.completion)


class Exchange:
    """Sends a call's messages until its answer is judged: once, or again with corrective turns
    while a schema's answer does not match. Every attempt is its own ledger record.

    What the output modes show of the attempts: `text` shows the answer as it arrives, except
    when the contract prints a document or a block instead (then only the last attempt's, once
    judged); `jsonl` streams every attempt, each ending with its done event; `json` and `usage`
    show the last attempt's body or usage.
    """

    def __init__(
        self, settings: Settings, contract: answer.Contract, out: Console, shape: Shape, link: Link
    ) -> None:
        self.settings, self.contract, self.out, self.shape, self.link = settings, contract, out, shape, link
        self.holding = shape.mode.name == "text" and contract.holds_text

    def run(self, messages: list[Message]) -> client.Completion:
        """The last attempt's completion; its verdict's error (exit 3 or 4) is raised."""
        turns: list[Message] = []
        for attempt in range(1, self.contract.attempts + 1):
            renderer = Renderer(self.out, self.shape.mode, self.shape.show_usage,
                                self.settings.prices, self.settings.model)
            sent = self._send([*messages, *turns], renderer)
            judgement = answer.judge(self.contract, sent.completion, attempt)
            sent.record(judgement.code)
            if judgement.retry is None:
                self._show(renderer, sent.completion, judgement)
                if judgement.error is not None:
                    raise judgement.error
                return sent.completion
            self._ask_again(renderer, sent.completion, judgement)
            turns = judgement.retry
        raise AssertionError("the last attempt's verdict never asks again")

    def _send(self, messages: list[Message], renderer: Renderer) -> _Sent:
        from evocli import ledger, transport

        settings, shape = self.settings, self.shape
        request = client.build_request(settings, messages, stream=shape.stream)
        recorder = ledger.Recorder(
            enabled=settings.ledger, ledger_dir=settings.ledger_dir, command=shape.command,
            model=settings.model, stream=shape.stream, tag=shape.tag, warn=self.out.warn,
        )
        waiting = Waiting(self.out, settings.model)

        def on_delta(text: str) -> None:
            if not self.holding:
                waiting.stop()  # before the first byte of the answer
                renderer.delta(text)

        try:
            with waiting:
                if shape.stream:
                    completion, reply = transport.stream(settings, request, on_delta, self.link)
                else:
                    completion, reply = transport.complete(settings, request, self.link)
        except EvocliError as err:
            recorder.record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
            renderer.cut()
            raise
        except (KeyboardInterrupt, signals.TimeUp) as stop:
            code = ExitCode.TEMPFAIL if isinstance(stop, signals.TimeUp) else ExitCode.INTERRUPTED
            recorder.record(exit_code=int(code), status=200 if renderer.started else None)
            with suppress(OSError):
                renderer.cut()  # what arrived stays, ended with a line break
            raise
        except BrokenPipeError:
            # The reader went away (`| head -1`): the user's choice, not a failed call.
            recorder.record(exit_code=int(ExitCode.OK), status=200, ok=True)
            raise
        return _Sent(completion, reply, recorder)

    def _show(self, renderer: Renderer, completion: client.Completion, judgement: answer.Judgement) -> None:
        """The last attempt: its answer (or what the contract prints of it), then any warning."""
        if self.holding:
            if judgement.output is not None:
                renderer.delta(judgement.output)
        elif not self.shape.stream:
            renderer.delta(completion.content)
        renderer.end(completion, whole=judgement.error is None)
        if judgement.warning:
            self.out.warn(judgement.warning)

    def _ask_again(
        self, renderer: Renderer, completion: client.Completion, judgement: answer.Judgement
    ) -> None:
        """An attempt whose answer is corrected: only jsonl shows it (its done event)."""
        if self.shape.mode.name == "jsonl":
            renderer.end(completion, whole=False)
        if judgement.warning:
            self.out.warn(judgement.warning)
        if judgement.notice:
            self.out.notice(judgement.notice)
