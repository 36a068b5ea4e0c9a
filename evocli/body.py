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

# gpt-5 controls: the values the API takes, checked before sending (None: any integer). An
# unknown effort is a 400 from the API, after the call was paid for in time if not in tokens.
EFFORTS = ("none", "low", "medium", "high", "xhigh")
VERBOSITIES = ("low", "medium", "high")
# The `detail` an image part may ask for.
IMAGE_DETAILS = ("low", "high", "auto")
CONTROLS: dict[str, tuple[str, ...] | None] = {
    "reasoning_effort": EFFORTS,
    "verbosity": VERBOSITIES,
    "seed": None,
}


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


def param_problem(key: Any, value: Any) -> str | None:
    """Why `params` may not hold this field, or None; the text starts with `params`.

    The one rule for body fields given by the config file, a conversation file or a batch line:
    reserved fields, values JSON cannot carry, and the gpt-5 controls' values.
    """
    if not isinstance(key, str):
        return f"params: keys must be text, got {key!r}"
    if key in RESERVED_PARAMS:
        return f"params cannot set {key!r}: {RESERVED_PARAMS[key]}"
    problem = json_problem(value)
    if problem:
        return f"params.{key}: {problem}"
    problem = control_problem(key, value)
    return f"params.{problem}" if problem else None


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
        body[key] = _checked(item, key, _value(item, value))
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


def _checked(item: str, key: str, value: Any) -> Any:
    problem = control_problem(key, value)
    if problem:
        raise UsageError(f"-p {item!r}: {problem}")
    return value
