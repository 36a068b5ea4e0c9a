"""Answers checked against a JSON Schema (Draft 2020-12) with jsonschema-rs, imported only when used."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs

# How much of one validation message is kept: some quote a whole (long) value.
MESSAGE_LIMIT = 300


class SchemaProblem(ValueError):
    """What is wrong with a schema; the caller adds where it came from and the exit code."""


@dataclass(frozen=True)
class Verdict:
    """An answer checked against its schema: the parsed document, or what is wrong with it."""

    document: Any
    issues: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues


def strict_loads(text: str) -> Any:
    """JSON as the standard has it: NaN, Infinity and numbers that overflow a float are refused
    (ValueError), as Python's json would read them and then write them back as non-JSON."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def compile_schema(schema: Mapping[str, Any]) -> jsonschema_rs.Validator:
    """A Draft 2020-12 validator for the schema; SchemaProblem when it is not a valid one.

    Compiled once per distinct schema (a batch reuses it). References are resolved offline:
    a schema that points at a URL is refused rather than fetched.
    """
    return _compiled(json.dumps(schema, ensure_ascii=False))


@functools.lru_cache(maxsize=64)
def _compiled(canonical: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    try:
        return jsonschema_rs.Draft202012Validator(json.loads(canonical), offline=True)
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError) as exc:
        path = json_path(getattr(exc, "instance_path", ()))
        raise SchemaProblem(f"not a valid JSON Schema (Draft 2020-12): {path}: {_first_line(exc)}") from None


def check_document(schema: Mapping[str, Any], content: str) -> Verdict:
    """The content parsed as JSON (NaN, Infinity and overflowing numbers are not JSON) and
    every way it fails the schema, each `<JSON path>: <message>`, in the validator's order."""
    try:
        document = strict_loads(content)
    except json.JSONDecodeError as exc:
        detail = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
        return Verdict(None, (f"$: not valid JSON: {detail if content.strip() else 'the answer is empty'}",))
    except ValueError as exc:
        return Verdict(None, (f"$: not valid JSON: {exc}",))
    except RecursionError:
        return Verdict(None, ("$: not valid JSON: nested too deeply",))
    errors = _explained(compile_schema(schema).iter_errors(document))
    return Verdict(document, tuple(f"{json_path(e.instance_path)}: {_short(e.message)}" for e in errors))


def _explained(errors: Iterable[jsonschema_rs.ValidationError]) -> Iterator[jsonschema_rs.ValidationError]:
    """The errors, an anyOf/oneOf one replaced by its branch's own when only one branch fits
    the value's type: a nullable property's error then says what is wrong with the value, not
    that it matches none of [S, null]."""
    import jsonschema_rs

    kinds = jsonschema_rs.ValidationErrorKind
    for error in errors:
        branches = error.kind.context if isinstance(error.kind, kinds.AnyOf | kinds.OneOfNotValid) else []
        fitting = [b for b in branches if not _wrong_type(b, error.instance_path)]
        if len(fitting) == 1:
            yield from _explained(fitting[0])
        else:
            yield error


def _wrong_type(branch: list[jsonschema_rs.ValidationError], path: list[str | int]) -> bool:
    import jsonschema_rs

    return (
        len(branch) == 1
        and isinstance(branch[0].kind, jsonschema_rs.ValidationErrorKind.Type)
        and branch[0].instance_path == path
    )


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range for a number")
    return value


def _first_line(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return _short(message.splitlines()[0] if message else "")


def _short(message: str) -> str:
    text = " ".join(message.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


_PLAIN_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def json_path(parts: Iterable[str | int]) -> str:
    """A location as a JSON path: `$`, `.name` for plain keys, `["odd key"]`, `[0]`."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out
