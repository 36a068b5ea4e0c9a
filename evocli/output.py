"""Renderers: the answer to stdout, everything else (warnings, usage, notices) to stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any

from evocli.client import Completion, usage_counts
from evocli.redact import redact

OUTPUT_MODES = ("text", "json", "jsonl", "usage")

_FINISH_WARNINGS = {
    "length": "the answer was cut short by the token limit (finish_reason: length); "
    "raise --max-tokens",
    "content_filter": "the answer was stopped by the content filter (finish_reason: content_filter)",
    "tool_calls": "the model asked to call a tool, which evocli does not run "
    "(finish_reason: tool_calls)",
}

USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "total_tokens",
)


@dataclass
class Console:
    """Where output goes: the answer (bytes) and the diagnostics (text)."""

    out: IO[bytes]
    err: IO[str]
    quiet: bool = False

    def answer(self, data: bytes) -> None:
        self.out.write(data)
        self.out.flush()

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


def text_answer(content: str) -> bytes:
    """The answer as text, ending in exactly one newline."""
    return (content.rstrip("\r\n") + "\n").encode("utf-8")


def raw_body(raw: bytes) -> bytes:
    """The response body as received, with a final newline added only if it has none."""
    return raw if raw.endswith(b"\n") else raw + b"\n"


def usage_line(usage: dict[str, Any] | None) -> str:
    """The `-u` line: `usage: prompt_tokens=13 completion_tokens=20 …`."""
    if usage is None:
        return "usage: not reported by the server"
    counts = usage_counts(usage)
    return "usage: " + " ".join(f"{name}={counts[name]}" for name in USAGE_FIELDS)


def finish_warning(finish_reason: str | None) -> str | None:
    """The warning for an answer that did not end normally, if any."""
    if finish_reason in (None, "stop"):
        return None
    return _FINISH_WARNINGS.get(finish_reason or "", f"the answer ended with finish_reason: {finish_reason}")


def render(console: Console, completion: Completion, mode: str, show_usage: bool) -> None:
    """Write a finished, non-streamed answer in the chosen output mode."""
    if mode == "json":
        console.answer(raw_body(completion.raw or json_line(completion.data)))
    elif mode == "usage":
        console.answer(json_line(completion.usage or {}))
    else:
        console.answer(text_answer(completion.content))
    finish(console, completion, show_usage and mode == "text")


def finish(console: Console, completion: Completion, show_usage: bool) -> None:
    """What follows an answer on stderr: the finish warning and the `-u` usage line."""
    warning = finish_warning(completion.finish_reason)
    if warning:
        console.warn(warning)
    if show_usage:
        console.err.write(usage_line(completion.usage) + "\n")
        console.err.flush()
