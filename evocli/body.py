"""What a request body may hold, stated once: reserved fields, JSON-safe values, `-p` pairs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from evocli.errors import UsageError
from evocli.jsonsafe import json_problem

# Body fields that no settings layer (flags, config file, conversation file, batch line) may set.
RESERVED_PARAMS = {
    "messages": "they come from the prompt, the conversation file or the batch line",
    "stream": "use --stream / --no-stream",
    "model": "the model has its own setting: -m/--model, or model: in the file",
}

def param_problem(key: Any, value: Any) -> str | None:
    """Why `params` may not hold this field, or None; the text starts with `params`.

    The one rule for body fields given by the config file, a conversation file or a batch line.
    """
    if not isinstance(key, str):
        return f"params: keys must be text, got {key!r}"
    if key in RESERVED_PARAMS:
        return f"params cannot set {key!r}: {RESERVED_PARAMS[key]}"
    problem = json_problem(value)
    return f"params.{key}: {problem}" if problem else None


def params_problem(params: Mapping[Any, Any]) -> str | None:
    """The first problem of a whole `params` mapping, or None."""
    for key, value in params.items():
        problem = param_problem(key, value)
        if problem:
            return problem
    return None


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """`-p KEY=VALUE` pairs as body fields; VALUE is JSON when it parses, else a string."""
    body: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
        if key in RESERVED_PARAMS:
            raise UsageError(f"-p cannot set {key!r}: {RESERVED_PARAMS[key]}")
        body[key] = _value(item, value)
    return body


def _value(item: str, text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    except RecursionError:
        raise UsageError(f"-p {item[:40]!r}…: the value is nested too deeply") from None
    problem = json_problem(value)  # json reads NaN, Infinity and 1e999 as numbers
    if problem:
        raise UsageError(f"-p {item!r}: {problem}")
    return value
