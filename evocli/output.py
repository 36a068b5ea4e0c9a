"""Renderers: the answer to stdout, everything else (warnings, usage, notices) to stderr."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from evocli.client import TOKEN_FIELDS, Completion, usage_counts
from evocli.errors import OutputError, UsageError
from evocli.redact import SecretFilter, redact, scrub

if TYPE_CHECKING:
    from decimal import Decimal

    from evocli.cost import Prices

# An answer that ends by asking for a tool is whole (answer.incomplete lets it pass), but evocli
# runs no tools: say so. Every other unusual end is an incomplete answer, reported by its verdict.
_TOOL_ENDS = ("tool_calls", "function_call")


_CONTROL = "[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # compiled by `re` on first use


@dataclass
class Console:
    """Where output goes: the answer (bytes) to stdout, the diagnostics (text) to stderr.

    It owns the terminal's status line (a progress or waiting line on stderr): every other
    write to that terminal clears it first and draws it again after, so no line mixes the two.
    Writes come from several threads in a batch, so they are serialised.
    """

    out: IO[bytes] | None  # None when the process was started with stdout closed
    err: IO[str]
    quiet: bool = False
    out_tty: bool = False  # stdout is a terminal (the status line's terminal, as far as we know)
    err_tty: bool = False
    # While set, a failure to write the answer is kept (in `failed`) instead of raised, and later
    # answers are dropped: a run that must still save its work (--append) raises it afterwards.
    hold_failures: bool = False
    failed: BaseException | None = None
    _status: str = ""
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def answer(self, data: bytes) -> None:
        with self._lock:
            if self.failed is not None:
                return
            try:
                self._write_out(data)
            except (BrokenPipeError, OutputError) as exc:
                if not self.hold_failures:
                    raise
                self.failed = exc

    def _write_out(self, data: bytes) -> None:
        if self.out is None:
            raise OutputError("stdout is closed: there is nowhere to write the answer")
        shared = self.out_tty and bool(self._status)
        if shared:
            self._draw("")
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError:
            raise  # the reader went away: a quiet end, handled by the CLI
        except OSError as exc:
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None
        if shared:
            self._draw(self._status)

    def answer_line(self, data: Any) -> None:
        """One JSON document as a line of the answer (a batch result)."""
        self.answer(json_line(data))

    def raise_failure(self) -> None:
        """Raise the answer's write failure that was held, if any."""
        if self.failed is not None:
            raise self.failed

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._say(f"evocli: warning: {message}\n")

    def notice(self, message: str) -> None:
        if not self.quiet:
            self._say(f"evocli: {message}\n")

    def error(self, message: str, hint: str | None = None) -> None:
        text = f"evocli: error: {message}\n"
        if hint:
            text += f"hint: {hint}\n"
        self._say(text)

    def trace(self, message: str) -> None:
        """A line of the -v trace: asked for, so shown even with -q."""
        self._say(f"evocli: {message}\n")

    def line(self, text: str) -> None:
        """A line on stderr that is not a message (the usage line of -u)."""
        self._say(text + "\n", masked=False)

    def status(self, text: str) -> None:
        """Show, replace or (with "") erase the status line; only on a terminal's stderr, and
        not with -q."""
        if self.quiet or not self.err_tty:
            return
        with self._lock:
            if text or self._status:
                self._draw(text)
            self._status = text

    def _say(self, text: str, masked: bool = True) -> None:
        # Messages quote what servers and files say: their control characters (an escape
        # sequence, a carriage return) must not act on the terminal.
        text = re.sub(_CONTROL, "\ufffd", text)
        with self._lock:
            status = self._status
            if status:
                text = "\r\x1b[K" + text
            self._err_write(redact(text) if masked else text)
            if status:
                self._draw(status)

    def _draw(self, text: str) -> None:
        self._err_write(f"\r\x1b[K{redact(text)}")

    def _err_write(self, text: str) -> None:
        """Write to stderr; a stderr that cannot be written is dropped, so it never changes the
        exit code (Python would exit 120 failing to flush it at the end)."""
        try:
            self.err.write(text)
            self.err.flush()
        except (OSError, ValueError):
            silence(self.err)


def silence(stream: IO[Any] | None) -> None:
    """Point a stream's descriptor at /dev/null so that no later flush can fail again."""
    if stream is None:
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def json_line(data: Any) -> bytes:
    """One compact JSON document and a newline."""
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def raw_body(raw: bytes) -> bytes:
    """The response body as received, with a final newline added only if it has none."""
    return raw if raw.endswith(b"\n") else raw + b"\n"


class Charge(NamedTuple):
    """What one call cost, exactly, in the unit of the prices."""

    amount: Decimal
    unit: str


def charge(prices: Prices | None, model: str | None, usage: dict[str, Any] | None) -> Charge | None:
    """The cost of a call at its model's price; None without a price, or without usage to price."""
    if prices is None or usage is None:
        return None
    from evocli.cost import call_cost

    amount = call_cost(prices, model, usage)
    return None if amount is None else Charge(amount, prices.unit)


def usage_line(usage: dict[str, Any] | None, cost: Charge | None = None) -> str:
    """The `-u` line: `usage: prompt_tokens=13 completion_tokens=20 … cost=0.000271 USD`."""
    if usage is None:
        return "usage: not reported by the server"
    counts = usage_counts(usage)
    line = "usage: " + " ".join(f"{name}={counts[name]}" for name in TOKEN_FIELDS)
    if cost is None:
        return line
    from evocli.cost import number_text

    return f"{line} cost={number_text(cost.amount)} {cost.unit}"


def usage_json(usage: dict[str, Any] | None, cost: Charge | None = None) -> bytes:
    """The `-o usage` line: the usage object, and with a price its `cost` and `price_unit`.

    The cost is written as its exact digits (json would turn a Decimal into a rounded float).
    Those two fields are evocli's: a server's own fields of the same names give way to them.
    """
    if cost is None:
        return json_line(usage or {})
    from evocli.cost import number_text

    fields = {k: v for k, v in (usage or {}).items() if k not in ("cost", "price_unit")}
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    added = f'"cost":{number_text(cost.amount)},"price_unit":{json.dumps(cost.unit, ensure_ascii=False)}'
    return f"{text[:-1]}{',' if fields else ''}{added}}}\n".encode()


def finish_warning(finish_reason: str | None) -> str | None:
    """The warning for an answer that ended asking for a tool, if it did."""
    if finish_reason not in _TOOL_ENDS:
        return None
    return f"the model asked to call a tool, which evocli does not run (finish_reason: {finish_reason})"


class _Writer:
    """Writes one answer in one output mode: each piece of text as it comes, then the ending."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = False  # whether any of the answer's text reached stdout
        self.cost: Charge | None = None  # the call's cost, known when it ends (-o usage shows it)

    def piece(self, text: str) -> None:
        """A piece of the answer's text (the whole text, for an answer that was not streamed)."""

    def end(self, completion: Completion, whole: bool = True) -> None:
        """The answer is complete; `whole` is False when it is refused or incomplete."""

    def cut(self) -> None:
        """The answer broke off."""


class _Text(_Writer):
    """The answer's text and exactly one final newline: trailing line breaks are held back and
    written only if more text follows."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self._held = ""

    def piece(self, text: str) -> None:
        text = self._held + text
        body = text.rstrip("\r\n")
        self._held = text[len(body) :]
        if body:
            self.started = True  # before the write: Ctrl-C may land right after it
            self.console.answer(body.encode("utf-8"))

    def end(self, completion: Completion, whole: bool = True) -> None:
        # A failed answer that printed nothing leaves stdout empty, not a blank line.
        if whole or self.started:
            self.console.answer(b"\n")

    def cut(self) -> None:
        if self.started:  # end partial text with a line break so the error starts clean
            self.console.answer(b"\n")


class _Json(_Writer):
    def end(self, completion: Completion, whole: bool = True) -> None:
        self.console.answer(scrub(raw_body(completion.raw or json_line(completion.data))))


class _Jsonl(_Writer):
    def piece(self, text: str) -> None:
        self.started = True
        self.console.answer(json_line({"type": "delta", "content": text}))

    def end(self, completion: Completion, whole: bool = True) -> None:
        done = {
            "type": "done",
            "id": completion.id,
            "model": completion.model,
            "finish_reason": completion.finish_reason,
            "usage": completion.usage,
        }
        self.console.answer(scrub(json_line(done)))


class _Usage(_Writer):
    def end(self, completion: Completion, whole: bool = True) -> None:
        self.console.answer(scrub(usage_json(completion.usage, self.cost)))


@dataclass(frozen=True)
class OutputMode:
    """One value of `-o`: what it prints, and when it streams.

    `streams` is "always", "never", "terminal" (when stdout is one, unless a flag says
    otherwise) or "asked" (only with --stream).
    """

    name: str
    help: str
    streams: str
    writer: Callable[[Console], _Writer]

    def stream(self, flag: bool | None, stdout_is_tty: bool) -> bool:
        """Whether a call in this mode streams, given --stream/--no-stream (None: not given)."""
        if self.streams == "always" and flag is False:
            raise UsageError(f"-o {self.name} always streams; drop --no-stream")
        if self.streams == "never" and flag:
            raise UsageError(
                f"-o {self.name} prints the response body as received, which a stream does not have",
                hint="use -o jsonl for streamed JSON",
            )
        if self.streams in ("always", "never"):
            return self.streams == "always"
        if flag is not None:
            return flag
        return self.streams == "terminal" and stdout_is_tty


MODES = {
    mode.name: mode
    for mode in (
        OutputMode("text", "the answer", "terminal", _Text),
        OutputMode("json", "the response body", "never", _Json),
        OutputMode("jsonl", "streamed JSON lines", "always", _Jsonl),
        OutputMode("usage", "the usage object", "asked", _Usage),
    )
}


class Renderer:
    """Writes one answer: `delta` for each piece of text, then `end` (or `cut` if it broke off).

    A non-streamed answer is rendered the same way, as a single delta, so both paths print
    the same bytes. The key never reaches stdout, even when the server echoes it.

    With `prices`, `-o usage` and `-u` add the call's cost, at the price of the model that
    answered (else of `model`, the one asked for): the model the ledger records for the call.
    """

    def __init__(
        self,
        console: Console,
        mode: OutputMode,
        show_usage: bool = False,
        prices: Prices | None = None,
        model: str | None = None,
    ) -> None:
        self.console = console
        self.writer = mode.writer(console)
        self.show_usage = show_usage and mode.name == "text"
        self.prices, self.model = prices, model
        self._secrets = SecretFilter()

    @property
    def started(self) -> bool:
        return self.writer.started

    def delta(self, text: str) -> None:
        masked = self._secrets.feed(text)
        if masked:
            self.writer.piece(masked)

    def end(self, completion: Completion, whole: bool = True) -> None:
        """The answer is complete; `whole` is False when its call fails (refused, incomplete)."""
        self.delta_flush()
        self.writer.cost = charge(self.prices, completion.model or self.model, completion.usage)
        self.writer.end(completion, whole)
        warning = finish_warning(completion.finish_reason)
        if warning:
            self.console.warn(warning)
        if self.show_usage:
            self.console.line(usage_line(completion.usage, self.writer.cost))

    def cut(self) -> None:
        """The answer broke off: end partial text with a line break so the error starts clean."""
        self.delta_flush()
        self.writer.cut()

    def delta_flush(self) -> None:
        held = self._secrets.flush()
        if held:
            self.writer.piece(held)
