"""Renderers: the answer to stdout, everything else (warnings, usage, notices) to stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from evocli.client import TOKEN_FIELDS, Completion, usage_counts
from evocli.errors import OutputError
from evocli.redact import SecretFilter, redact, scrub

_FINISH_WARNINGS = {
    "length": "the answer was cut short by the token limit (finish_reason: length); "
    "raise --max-tokens",
    "content_filter": "the answer was stopped by the content filter (finish_reason: content_filter)",
    "tool_calls": "the model asked to call a tool, which evocli does not run "
    "(finish_reason: tool_calls)",
}


@dataclass
class Console:
    """Where output goes: the answer (bytes) and the diagnostics (text)."""

    out: IO[bytes] | None  # None when the process was started with stdout closed
    err: IO[str]
    quiet: bool = False

    def answer(self, data: bytes) -> None:
        if self.out is None:
            raise OutputError("stdout is closed: there is nowhere to write the answer")
        try:
            self.out.write(data)
            self.out.flush()
        except BrokenPipeError:
            raise  # the reader went away: a quiet end, handled by the CLI
        except OSError as exc:
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.write(redact(f"evocli: warning: {message}") + "\n")
            self.err.flush()

    def notice(self, message: str) -> None:
        if not self.quiet:
            self.err.write(redact(f"evocli: {message}") + "\n")
            self.err.flush()

    def error(self, message: str, hint: str | None = None) -> None:
        text = f"evocli: error: {message}\n"
        if hint:
            text += f"hint: {hint}\n"
        self.err.write(redact(text))
        self.err.flush()


def json_line(data: Any) -> bytes:
    """One compact JSON document and a newline."""
    return (json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def raw_body(raw: bytes) -> bytes:
    """The response body as received, with a final newline added only if it has none."""
    return raw if raw.endswith(b"\n") else raw + b"\n"


def usage_line(usage: dict[str, Any] | None) -> str:
    """The `-u` line: `usage: prompt_tokens=13 completion_tokens=20 …`."""
    if usage is None:
        return "usage: not reported by the server"
    counts = usage_counts(usage)
    return "usage: " + " ".join(f"{name}={counts[name]}" for name in TOKEN_FIELDS)


def finish_warning(finish_reason: str | None) -> str | None:
    """The warning for an answer that did not end normally, if any."""
    if finish_reason in (None, "stop"):
        return None
    return _FINISH_WARNINGS.get(finish_reason or "", f"the answer ended with finish_reason: {finish_reason}")


class Renderer:
    """Writes one answer in one output mode; `delta` for each piece of text, then `end`.

    A non-streamed answer is rendered the same way, as a single delta, so both paths print
    the same bytes.
    """

    def __init__(self, console: Console, mode: str, show_usage: bool = False) -> None:
        self.console = console
        self.mode = mode
        self.show_usage = show_usage and mode == "text"
        self._held = ""  # trailing line breaks, written only if more text follows
        self._secrets = SecretFilter()  # the key never reaches stdout, even if echoed
        self.started = False

    def delta(self, text: str) -> None:
        self._write(self._secrets.feed(text))

    def _write(self, text: str) -> None:
        if not text:
            return
        if self.mode == "text":
            text = self._held + text
            body = text.rstrip("\r\n")
            self._held = text[len(body) :]
            if body:
                self.started = True  # before the write: Ctrl-C may land right after it
                self.console.answer(body.encode("utf-8"))
        elif self.mode == "jsonl":
            self.started = True
            self.console.answer(json_line({"type": "delta", "content": text}))

    def end(self, completion: Completion) -> None:
        self._write(self._secrets.flush())
        if self.mode == "text":
            self.console.answer(b"\n")
        elif self.mode == "json":
            self.console.answer(scrub(raw_body(completion.raw or json_line(completion.data))))
        elif self.mode == "jsonl":
            self.console.answer(scrub(json_line({
                "type": "done",
                "id": completion.id,
                "model": completion.model,
                "finish_reason": completion.finish_reason,
                "usage": completion.usage,
            })))
        elif self.mode == "usage":
            self.console.answer(scrub(json_line(completion.usage or {})))
        warning = finish_warning(completion.finish_reason)
        if warning:
            self.console.warn(warning)
        if self.show_usage:
            self.console.err.write(usage_line(completion.usage) + "\n")
            self.console.err.flush()

    def cut(self) -> None:
        """The answer broke off: end partial text with a line break so the error starts clean."""
        self._write(self._secrets.flush())
        if self.mode == "text" and self.started:
            self.console.answer(b"\n")
