"""JSON that evocli can hold: server JSON read safely, and values checked before they are sent."""

from __future__ import annotations

import json
import math
import re
from typing import Any

# How deep a JSON value may nest, in a request or an answer. Real ones nest a few levels (a JSON
# schema a few dozen); the cap keeps every later step (json.dumps, YAML, printing) far from
# Python's recursion limit, so no value evocli accepts can fail there.
MAX_DEPTH = 200
# Lone surrogates: str can hold them (json reads "\\ud800", argv holds undecodable bytes as
# U+DC80-U+DCFF), UTF-8 cannot encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")


def json_problem(value: Any) -> str | None:
    """Why a value cannot go into a JSON request body, or None when it can.

    JSON has no NaN or infinities, and no dates, binary data or other non-JSON values (which
    YAML may hold); its text must be encodable as UTF-8, and it must not nest deeper than
    MAX_DEPTH. The value is walked iteratively: however deep it is, this cannot overflow.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{_NON_FINITE[str(item)]} is not a JSON number"
        elif isinstance(item, list | dict):
            if depth >= MAX_DEPTH:
                return f"it is nested more than {MAX_DEPTH} levels deep"
            if isinstance(item, dict):
                if not all(isinstance(key, str) for key in item):
                    return "mapping keys must be text"
                stack.extend((key, depth) for key in reversed(item))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in reversed(list(children)))
        else:
            return f"a {type(item).__name__} is not a JSON value (quote it to send it as text)"
    return None


def _text_problem(text: str) -> str | None:
    found = None if text.isascii() else _SURROGATE.search(text)
    if found is None:
        return None
    return f"text holds {found.group()!a}, a lone surrogate that is not valid UTF-8"


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class UnusableJSON(ValueError):
    """JSON that parses but that evocli cannot hold; str() completes "the server's answer …"."""


def load_json(raw: bytes | str) -> Any:
    """Parse JSON from the server; ValueError when it is not JSON, UnusableJSON when it cannot be
    held (NaN or a number out of range, nesting deeper than MAX_DEPTH).

    Lone surrogates (`"A\\ud800B"`, what a model writes when it cuts an emoji in half) become
    U+FFFD, as invalid UTF-8 does in a stream: the text is kept, and it can be encoded.
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise UnusableJSON(f"is nested more than {MAX_DEPTH} levels deep") from None
    # The walk is needed only where it can find something: a lone surrogate comes from a \u
    # escape, and nesting past MAX_DEPTH needs that many brackets (most answers have neither).
    if isinstance(raw, bytes):
        # json reads bytes with surrogatepass: an encoded surrogate starts with 0xED too.
        plain = b"\\u" not in raw and b"\xed" not in raw and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
    else:
        plain = "\\u" not in raw and raw.count("[") + raw.count("{") <= MAX_DEPTH
    if plain:
        return value
    return _held(value)


def _no_constant(name: str) -> Any:
    raise UnusableJSON(f"holds {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:39] + "…"
        raise UnusableJSON(f"holds a number out of range ({shown})")
    return value


def _held(value: Any) -> Any:
    """The parsed value with lone surrogates replaced, in place; deeper than MAX_DEPTH raises."""
    if isinstance(value, str):
        return safe_text(value)
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UnusableJSON(f"is nested more than {MAX_DEPTH} levels deep")
        if isinstance(item, dict):
            if any(_text_problem(key) for key in item):
                fixed = {safe_text(key): child for key, child in item.items()}
                item.clear()
                item.update(fixed)
            pairs: list[tuple[Any, Any]] = list(item.items())
        elif isinstance(item, list):
            pairs = list(enumerate(item))
        else:
            continue
        for slot, child in pairs:
            if isinstance(child, str):
                item[slot] = safe_text(child)
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return value


def safe_text(text: str) -> str:
    """The text with each lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def safe_value(value: Any) -> Any:
    """A copy of a JSON-like value whose every text (mapping keys included) encodes as UTF-8."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, list):
        return [safe_value(item) for item in value]
    if isinstance(value, dict):
        return {safe_value(key): safe_value(item) for key, item in value.items()}
    return value
