"""Turn prompts, piped text and conversations into the list of chat messages (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evocli.errors import InputError

Message = dict[str, Any]

EMPTY_PROMPT_HINT = 'give the prompt as arguments (evocli ask "...") or pipe it on stdin'


def compose_prompt(args: Sequence[str], stdin_text: str | None) -> str:
    """The user's text: piped stdin, a blank line, then the arguments (the instruction last).

    Either part may be missing. Trailing line breaks of stdin are dropped so the blank line
    between the two parts is exactly one; nothing else is changed or cut.
    """
    for number, arg in enumerate(args, 1):
        _check_decoded(arg, number)
    arg_text = " ".join(args)
    piped = stdin_text.rstrip("\r\n") if stdin_text and stdin_text.strip() else ""
    if piped and arg_text.strip():
        text = f"{piped}\n\n{arg_text}"
    else:
        text = piped or arg_text
    if not text.strip():
        raise InputError("the prompt is empty", hint=EMPTY_PROMPT_HINT)
    return text


def _check_decoded(arg: str, number: int) -> None:
    """Python keeps argument bytes that are not UTF-8 as lone surrogates (U+DC80-U+DCFF): such
    an argument cannot be sent, and saying so beats a confusing error about the request body."""
    for index, char in enumerate(arg):
        if "\ud800" <= char <= "\udfff":
            offset = len(arg[:index].encode("utf-8", "surrogateescape"))
            raise InputError(
                f"the prompt is not valid UTF-8 text (argument {number}, byte {offset})",
                hint="evocli reads arguments as UTF-8: convert the text first (iconv -t UTF-8)",
            )


def ask_messages(prompt: str, system: str | None, content: Any = None) -> list[Message]:
    """The messages of a one-shot question: an optional system message, then the user's
    (`content` when given: the prompt with its attachments, else the prompt)."""
    messages: list[Message] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt if content is None else content})
    return messages
