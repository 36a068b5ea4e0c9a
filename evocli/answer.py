"""The answer contract: corrective turns, code blocks, incomplete answers, refusals, gpt-5 controls."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evocli.client import Completion, usage_counts
from evocli.errors import IncompleteError, RejectedError

# How many validation issues a corrective turn lists (the rest are counted).
MAX_LISTED_ISSUES = 5


def compact(document: Any) -> str:
    """A valid document as printed in text mode: one line, `,` and `:` separators, no escaping."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def corrective_turns(content: str, issues: Sequence[str]) -> list[dict[str, str]]:
    """The turns that follow the same messages in a corrective retry: the answer as the
    assistant said it, then a user turn listing at most 5 issues and asking for a correction."""
    listed = [f"- {issue}" for issue in issues[:MAX_LISTED_ISSUES]]
    if len(issues) > MAX_LISTED_ISSUES:
        listed.append(f"- and {len(issues) - MAX_LISTED_ISSUES} more")
    request = "\n".join(
        [
            "Your answer does not match the required JSON schema:",
            *listed,
            "Reply with only the corrected JSON document.",
        ]
    )
    return [{"role": "assistant", "content": content}, {"role": "user", "content": request}]


def schema_failure(issues: Sequence[str], attempts: int) -> RejectedError:
    """Exit 4 after the last corrective retry: the first issue, and how many attempts it took."""
    more = len(issues) - 1
    others = f"{more} more problem{'s' if more != 1 else ''}; " if more else ""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    hint = f"{others}{tries} made: raise --schema-retries, or look at the answer with -o json"
    return RejectedError(f"the answer does not match the schema: {issues[0]}", hint=hint)


# ---------------------------------------------------------------------------------------------
# -x/--extract and --extract-last: fenced code blocks.

# An opening fence: indentation, 3 or more backticks or tildes, then the info string.
_OPENING = re.compile(r"( *)(`{3,}|~{3,})(.*)")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def code_blocks(text: str) -> list[str]:
    """The contents of the answer's fenced code blocks, in order.

    An opening fence is 3 or more backticks or tildes after any number of spaces (blocks in
    list items are indented); its info string may be anything, except that a backtick fence's
    may not hold a backtick (so a line like ```` ```x``` ```` is inline code, not a fence). The
    block ends at a line of only the same character, at least as many of them, with any spaces
    around them, or at the end of the answer. Each content line loses as many leading spaces
    as the opening fence had, where it has them. A block's content is its lines joined by
    "\\n" (CRLF and CR become LF), with no line break after the last line: "" for an empty block.
    """
    blocks: list[str] = []
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # a final line break ends the last line; it does not start another
    i = 0
    while i < len(lines):
        fence = _opening(lines[i])
        i += 1
        if fence is None:
            continue
        indent, marker = fence
        body: list[str] = []
        while i < len(lines) and not _closes(lines[i], marker):
            body.append(_dedent(lines[i], indent))
            i += 1
        i += 1  # past the closing fence (or the end)
        blocks.append("\n".join(body))
    return blocks


def extract_block(text: str, *, last: bool = False) -> str | None:
    """The content of the first (or, with `last`, the last) fenced code block; None without one."""
    blocks = code_blocks(text)
    if not blocks:
        return None
    return blocks[-1] if last else blocks[0]


def no_block_error(*, last: bool = False) -> RejectedError:
    """Exit 4 for -x/--extract-last on an answer without a fenced code block."""
    option = "--extract-last" if last else "-x/--extract"
    return RejectedError(
        f"the answer has no fenced code block for {option}",
        hint="run without it to see the whole answer, or ask for the code in a ``` block",
    )


def _opening(line: str) -> tuple[int, str] | None:
    match = _OPENING.fullmatch(line)
    if match is None:
        return None
    indent, marker, info = match.groups()
    if marker[0] == "`" and "`" in info:
        return None
    return len(indent), marker


def _closes(line: str, marker: str) -> bool:
    stripped = line.strip(" \t")
    return len(stripped) >= len(marker) and stripped == marker[0] * len(stripped)


def _dedent(line: str, indent: int) -> str:
    spaces = len(line) - len(line.lstrip(" "))
    return line[min(spaces, indent) :]


# ---------------------------------------------------------------------------------------------
# Incomplete answers (exit 3) and refusals (exit 4).

# finish_reason values of a whole answer: a tool call is one, and some servers send none.
FINISHED = frozenset({"stop", "tool_calls", "function_call"})
LENGTH_HINT = "raise --max-tokens, or lower --effort so fewer tokens go to reasoning"
ACCEPT_HINT = "--allow-incomplete accepts what arrived"


@dataclass(frozen=True)
class Incomplete:
    """Why an answer is incomplete, for the exit-3 error or the --allow-incomplete warning."""

    reason: str  # "length", "content_filter", another finish_reason, or "empty"
    message: str
    hint: str

    def error(self) -> IncompleteError:
        return IncompleteError(self.message, hint=self.hint)


def incomplete(completion: Completion) -> Incomplete | None:
    """What makes the answer incomplete, or None for a whole one.

    Incomplete: finish_reason `length` or `content_filter` (or any other that is not stop,
    tool_calls, function_call or absent), or no text at all (empty or null content) without a
    refusal or tool calls. An answer without text names its reasoning token count.
    """
    reason = completion.finish_reason
    refused = bool((completion.refusal or "").strip())
    empty = not completion.content and not refused and not completion.tool_calls
    if reason == "length" and empty:
        spent = _reasoning(completion)
        message = f"the answer has no text: it reached the token limit after {spent} (finish_reason length)"
        return Incomplete("length", message, LENGTH_HINT)
    if reason == "length":
        message = "the answer was cut off at the token limit (finish_reason length)"
        return Incomplete("length", message, LENGTH_HINT)
    if reason == "content_filter":
        message = "the content filter stopped the answer (finish_reason content_filter)"
        return Incomplete("content_filter", message, f"rephrase the request; {ACCEPT_HINT}")
    if reason is not None and reason not in FINISHED:
        message = f"the answer did not finish normally (finish_reason {reason})"
        return Incomplete(reason, message, ACCEPT_HINT)
    if empty:
        message = f"the answer has no text ({_reasoning(completion)})"
        return Incomplete("empty", message, "raise --max-tokens or lower --effort, then try again")
    return None


def _reasoning(completion: Completion) -> str:
    count = usage_counts(completion.usage)["reasoning_tokens"]
    return f"{count:,} reasoning token{'s' if count != 1 else ''}"


def check_refusal(completion: Completion) -> None:
    """Exit 4 at once when the model refused (a non-empty `message.refusal`), quoting it."""
    text = " ".join((completion.refusal or "").split())
    if text:
        raise RejectedError(f"the model refused: {text}")


# ---------------------------------------------------------------------------------------------
# gpt-5 controls: --effort, --verbosity, --seed, and the same keys in params.

EFFORTS = ("none", "low", "medium", "high", "xhigh")
VERBOSITIES = ("low", "medium", "high")
CONTROLS = {"reasoning_effort": EFFORTS, "verbosity": VERBOSITIES, "seed": None}


def control_problem(key: str, value: Any) -> str | None:
    """Why a value is refused for a gpt-5 control (`reasoning_effort`, `verbosity`, `seed`);
    None when it is accepted or the key is not one of them."""
    if key not in CONTROLS:
        return None
    shown = json.dumps(value, ensure_ascii=False, default=repr)
    allowed = CONTROLS[key]
    if allowed is None:
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        return f"seed must be an integer, not {shown}"
    if isinstance(value, str) and value in allowed:
        return None
    note = " (gpt-5.2 rejects minimal)" if value == "minimal" else ""
    return f"{key} must be one of {', '.join(allowed)}, not {shown}{note}"


def controls_problem(params: Mapping[str, Any]) -> str | None:
    """The first refused gpt-5 control among request body fields, or None."""
    for key, value in params.items():
        problem = control_problem(key, value)
        if problem:
            return problem
    return None
