"""The answer contract: what an answer must be (schema, code block, whole, no refusal), and the verdict."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from evocli.client import Completion, usage_counts
from evocli.errors import EvocliError, ExitCode, IncompleteError, RejectedError
from evocli.messages import Message

if TYPE_CHECKING:
    from evocli.schema import AnswerSchema

# How many validation issues a corrective turn lists (the rest are counted).
MAX_LISTED_ISSUES = 5


def compact(document: Any) -> str:
    """A valid document as printed in text mode: one line, `,` and `:` separators, no escaping."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def corrective_turns(content: str, issues: Sequence[str]) -> list[Message]:
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
_OPENING = r"( *)(`{3,}|~{3,})(.*)"  # compiled by `re` on first use, not at start-up
_LINE_BREAK = r"\r\n|\r|\n"


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
    lines = re.split(_LINE_BREAK, text)
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
    match = re.fullmatch(_OPENING, line)
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


class Incomplete(NamedTuple):
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


def refusal(completion: Completion) -> RejectedError | None:
    """The exit-4 error of an answer that is a refusal (a non-empty `message.refusal`), quoting it."""
    text = " ".join((completion.refusal or "").split())
    return RejectedError(f"the model refused: {text}") if text else None


# ---------------------------------------------------------------------------------------------
# The verdict on one answer, for the command line and for batch.


@dataclass(frozen=True)
class Contract:
    """What an answer must be for its call to succeed: a document matching `schema` (asked
    again up to `retries` times), a fenced code block (`extract`: "first" or "last"), and a
    complete answer unless `allow_incomplete`. A refusal never succeeds."""

    schema: AnswerSchema | None = None
    retries: int = 1
    extract: str | None = None
    allow_incomplete: bool = False

    @property
    def attempts(self) -> int:
        """How many requests a call may make: corrective turns exist only for a schema."""
        return 1 + self.retries if self.schema is not None else 1

    def params(self) -> dict[str, Any]:
        """The body fields the contract adds: a schema's response_format."""
        return {} if self.schema is None else {"response_format": self.schema.response_format()}

    @property
    def holds_text(self) -> bool:
        """Whether text mode prints something else than the answer's text (the document, the
        block), so nothing can be shown before the answer is whole."""
        return self.schema is not None or self.extract is not None


class Judgement(NamedTuple):
    """The verdict on one answer.

    `error` is why the call fails (exit 3 or 4); `retry` holds the corrective turns when the
    call asks again instead, with `notice` saying so; `warning` is an incomplete answer that
    was accepted. `output` is what text mode prints when the contract holds the text (None:
    nothing); `valid` says a document matched the schema (`document`, which may be null).
    """

    error: EvocliError | None = None
    retry: list[Message] | None = None
    notice: str | None = None
    warning: str | None = None
    output: str | None = None
    valid: bool = False
    document: Any = None

    @property
    def code(self) -> int:
        """This answer's exit code (a rejected answer that is asked again is still a 4)."""
        if self.error is not None:
            return int(self.error.code)
        return int(ExitCode.REJECTED if self.retry is not None else ExitCode.OK)


def judge(contract: Contract, completion: Completion, attempt: int = 1) -> Judgement:
    """The verdict on the answer of attempt `attempt` (from 1): a refusal first (exit 4, never
    asked again), then an incomplete answer (exit 3: a longer answer will not come from a
    correction), then the schema (asked again while attempts remain, then exit 4) or the code
    block (exit 4 without one)."""
    refused = refusal(completion)
    if refused is not None:
        return Judgement(error=refused)
    gap = incomplete(completion)
    if gap is not None and not contract.allow_incomplete:
        # What arrived is still printed: the whole text, or the (cut) block; never a document.
        output = None if contract.schema is not None else _block(contract, completion.content)
        return Judgement(error=gap.error(), output=output)
    warning = gap.message if gap is not None else None
    if contract.schema is not None:
        return _against_schema(contract, contract.schema, completion.content, attempt, warning)
    if contract.extract is not None:
        block = _block(contract, completion.content)
        missing = no_block_error(last=contract.extract == "last") if block is None else None
        return Judgement(warning=warning, output=block, error=missing)
    return Judgement(warning=warning)


def _block(contract: Contract, content: str) -> str | None:
    if contract.extract is None:
        return None
    return extract_block(content, last=contract.extract == "last")


def _against_schema(
    contract: Contract, schema: AnswerSchema, content: str, attempt: int, warning: str | None
) -> Judgement:
    verdict = schema.check(content)
    if verdict.ok:
        document = verdict.document
        return Judgement(warning=warning, output=compact(document), valid=True, document=document)
    if attempt <= contract.retries:
        notice = (f"the answer does not match the schema: {verdict.issues[0]}; "
                  f"asking for a correction (attempt {attempt + 1} of {contract.attempts})")
        return Judgement(warning=warning, retry=corrective_turns(content, verdict.issues), notice=notice)
    return Judgement(warning=warning, error=schema_failure(verdict.issues, attempt))
