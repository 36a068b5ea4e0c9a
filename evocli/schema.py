"""Answer schemas: read from --schema or a file's value, checked, made strict, and sent (pure)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from evocli.errors import EvocliError, InputError, NoInputError, UsageError
from evocli.validation import SchemaProblem, Verdict, check_document, compile_schema, json_path, strict_loads

# Reads a schema file given by name; may raise OSError. Loading takes one, so it stays pure.
Reader = Callable[[str], bytes]

DEFAULT_NAME = "answer"
FILE_SUFFIXES = (".json", ".yaml", ".yml")
CONCISE_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
FIELD_NAME = re.compile(r"\w[\w-]*")
# The API accepts a schema name of at most 64 of these characters.
NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
STRICT_HINT = "fix the schema, or send it as it is with --no-strict"


class StrictProblem(SchemaProblem):
    """A valid schema that strict mode cannot express (an open object, allOf of objects)."""


@dataclass(frozen=True)
class Loaded:
    """A schema as the user gave it, where it came from, and how a problem with it is raised."""

    schema: dict[str, Any]
    name: str = DEFAULT_NAME
    where: str = "--schema"
    error: type[EvocliError] = UsageError


@dataclass(frozen=True)
class AnswerSchema:
    """A checked schema ready to send: its name, the schema as given, and the one sent."""

    name: str
    given: dict[str, Any]
    sent: dict[str, Any]
    strict: bool

    def response_format(self) -> dict[str, Any]:
        """The request's `response_format` field."""
        spec = {"name": self.name, "strict": self.strict, "schema": self.sent}
        return {"type": "json_schema", "json_schema": spec}

    def check(self, content: str) -> Verdict:
        """The answer's content parsed as JSON and validated against the schema that was sent."""
        return check_document(self.sent, content)


# ---------------------------------------------------------------------------------------------
# Loading: inline JSON, a .json/.yaml file, or the concise form.


def files_in(base: str) -> Reader:
    """The reader of schema files named relative to `base` ("" = the current folder): a
    conversation file's folder, a batch file's."""

    def read(path: str) -> bytes:
        with open(os.path.join(base, path), "rb") as fh:
            return fh.read()

    return read


def from_option(text: str, read: Reader) -> Loaded:
    """The `--schema` value. Bad inline JSON or concise syntax is exit 2; a missing file 66; a
    file that holds no schema 65 (its schema, once loaded, is the file's: problems are 65 too)."""
    return _from_text(text, read, "--schema", UsageError)


def from_value(value: Any, read: Reader, where: str) -> Loaded:
    """A `schema` value already parsed (a conversation file's key, a batch line's field).

    An object is the schema itself; a string is read as `--schema` reads it. Every problem is
    exit 65 (66 for a missing file), its message starting with `where`.
    """
    if isinstance(value, str):
        return _from_text(value, read, where, InputError)
    if not isinstance(value, dict):
        raise InputError(f"{where}: a schema is a JSON object, a file name or the concise form")
    return _loaded(value, DEFAULT_NAME, where, InputError)


def _from_text(text: str, read: Reader, where: str, error: type[EvocliError]) -> Loaded:
    stripped = text.strip()
    if stripped.startswith("{"):
        return _loaded(_parse_json(text, where, error), DEFAULT_NAME, where, error)
    if "\n" not in stripped and stripped.lower().endswith(FILE_SUFFIXES):
        return _from_file(stripped, read)
    try:
        return Loaded(concise(stripped), DEFAULT_NAME, where, error)
    except SchemaProblem as exc:
        hint = "a field is NAME [str|int|float|bool] [: description]; a schema file ends in .json or .yaml"
        raise error(f"{where}: {exc}", hint=hint) from None


def _from_file(path: str, read: Reader) -> Loaded:
    try:
        raw = read(path)
    except OSError as exc:
        raise NoInputError(f"cannot read the schema file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the schema file is not UTF-8 text") from None
    if path.lower().endswith(".json"):
        data = _parse_json(text, path, InputError)
    else:
        from evocli import yamlsafe

        _, data = yamlsafe.load(text, path, what="schema file")
    if not isinstance(data, dict):
        raise InputError(f"{path}: a schema file holds one JSON Schema object")
    return _loaded(data, schema_name(path), path, InputError)


def _loaded(data: dict[str, Any], name: str, where: str, error: type[EvocliError]) -> Loaded:
    from evocli.jsonsafe import json_problem

    problem = json_problem(data)
    if problem:
        raise error(f"{where}: the schema cannot be sent: {problem}")
    return Loaded(data, name, where, error)


def _parse_json(text: str, where: str, error: type[EvocliError]) -> Any:
    try:
        return strict_loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:
        raise error(f"{where}: not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{where}: not valid JSON: nested too deeply") from None


def schema_name(path: str) -> str:
    """The name a schema file is sent under: its stem, with characters the API refuses as `_`."""
    return NAME_CHARS.sub("_", PurePath(path).stem)[:64] or DEFAULT_NAME


def concise(text: str) -> dict[str, Any]:
    """The concise form as a schema: one object whose fields are all required.

    Fields are separated by commas or newlines, each `NAME [TYPE] [: description]`, TYPE one of
    str (the default), int, float, bool; empty fields are skipped. On one line a description
    ends at the next comma; when the text has several lines, a description runs to the end of
    its line, commas included (except a final one), so `tags: a, b or c` can be said.
    """
    if "\n" in text:
        pieces = [piece for line in text.splitlines() for piece in _line_fields(line)]
    else:
        pieces = text.split(",")
    properties: dict[str, Any] = {}
    for piece in filter(None, (p.strip() for p in pieces)):
        name, prop = _concise_field(piece)
        if name in properties:
            raise SchemaProblem(f"the field {name!r} is given twice")
        properties[name] = prop
    if not properties:
        raise SchemaProblem("no fields: give at least one, as in 'name, age int'")
    return {"type": "object", "properties": properties, "required": list(properties)}


def _line_fields(line: str) -> list[str]:
    head, colon, description = line.partition(":")
    fields = head.split(",")
    if colon:
        fields[-1] += colon + description.strip().removesuffix(",")
    return fields


def _concise_field(piece: str) -> tuple[str, dict[str, Any]]:
    head, colon, description = piece.partition(":")
    words = head.split()
    if not words or len(words) > 2:
        raise SchemaProblem(f"{piece!r} is not a field (NAME [TYPE] [: description])")
    if not FIELD_NAME.fullmatch(words[0]):
        raise SchemaProblem(f"{words[0]!r} is not a field name (letters, digits, _ and -)")
    kind = words[1] if len(words) == 2 else "str"
    if kind not in CONCISE_TYPES:
        raise SchemaProblem(f"{words[0]}: unknown type {kind!r} (str, int, float, bool)")
    prop: dict[str, Any] = {"type": CONCISE_TYPES[kind]}
    if colon and description.strip():
        prop["description"] = description.strip()
    return words[0], prop


# ---------------------------------------------------------------------------------------------
# Preparing: --schema-multi, the Draft 2020-12 check, the strict form.


def prepare(loaded: Loaded, *, strict: bool = True, multi: bool = False) -> AnswerSchema:
    """The schema to send, refused (as `loaded.error`) unless it is a valid Draft 2020-12
    schema and, with `strict`, one that strict mode can express. Loads the validator."""
    given = wrap_multi(loaded.schema) if multi else loaded.schema
    try:
        compile_schema(given)
        sent = strictify(given) if strict else given
        compile_schema(sent)
    except SchemaProblem as exc:
        hint = STRICT_HINT if isinstance(exc, StrictProblem) else None
        raise loaded.error(f"{loaded.where}: {exc}", hint=hint) from None
    except RecursionError:
        raise loaded.error(f"{loaded.where}: the schema is nested too deeply") from None
    return AnswerSchema(loaded.name, given, sent, strict)


def wrap_multi(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`--schema-multi`: an object whose `items` is an array of the schema.

    `$schema`, `$defs` and `definitions` move up to the new root, and local references that
    pointed at the old root are rewritten to its new place (`#` becomes
    `#/properties/items/items`), so every reference means what it did. A schema with its own
    `$id` is a resource of its own: its references need no rewriting, and it moves as it is.
    """
    inner = dict(schema)
    hoisted: dict[str, Any] = {}
    if "$id" not in inner:
        inner = _rebase_refs(inner, "#/properties/items/items")
        hoisted = {key: inner.pop(key) for key in ("$schema", "$defs", "definitions") if key in inner}
    items = {"type": "array", "items": inner}
    return {"type": "object", "properties": {"items": items}, "required": ["items"], **hoisted}


# Keywords whose values are data, not schemas: a "$ref" inside them is just text.
DATA_KEYWORDS = ("const", "enum", "default", "examples")
NAME_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _rebase_refs(value: Any, base: str) -> Any:
    if isinstance(value, list):
        return [_rebase_refs(item, base) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: _rebase_refs_in(key, sub, base) for key, sub in value.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and _points_at_root(ref):
        out["$ref"] = base + ref[1:]
    return out


def _rebase_refs_in(key: str, value: Any, base: str) -> Any:
    if key in DATA_KEYWORDS:
        return value
    if key in NAME_MAPS and isinstance(value, dict):
        # Keys here are property or definition names, never keywords.
        return {name: _rebase_refs(sub, base) for name, sub in value.items()}
    return _rebase_refs(value, base)


def _points_at_root(ref: str) -> bool:
    # Pointers into $defs stay as they are: the definitions move up with the root.
    return (ref == "#" or ref.startswith("#/")) and not ref.startswith(("#/$defs/", "#/definitions/"))


# Keywords whose values are subschemas that shape the answer: strictify recurses through them.
# The others are left as they are: `not`, `if` and `propertyNames` are tests, not shapes (made
# strict, they would mean something else); `then`, `else` and `dependentSchemas` usually add a few
# properties to the enclosing object, and closed on their own they would refuse all the others.
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions")
SCHEMA_LISTS = ("prefixItems", "anyOf", "oneOf", "allOf")
SCHEMA_ONE = ("items", "contains", "unevaluatedItems")
# Keywords that constrain every type: with one of them, `type` gaining "null" does not let null in.
TYPE_FREE = {"const", "$ref", "$dynamicRef", "anyOf", "oneOf", "allOf", "not", "if", "then", "else"}


def strictify(schema: Any, path: tuple[str | int, ...] = ()) -> Any:
    """The strict form: every object closed (`additionalProperties: false`) with every property
    required, and each property that was optional made nullable. Raises SchemaProblem where
    strict mode cannot say what the schema says (an open object, allOf of objects)."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key, value in schema.items():
        where = (*path, key)
        if key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: strictify(sub, (*where, name)) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            out[key] = [strictify(sub, (*where, i)) for i, sub in enumerate(value)]
        elif key in SCHEMA_ONE:
            out[key] = strictify(value, where)
    # Each part of a combined object would be closed on its own and refuse the other parts.
    if any(is_object(branch) for branch in out.get("allOf") or []):
        raise StrictProblem(f"strict mode cannot combine objects with allOf at {json_path(path)}")
    if is_object(out) and "$ref" in out:
        raise StrictProblem(f"strict mode cannot extend a $ref with properties at {json_path(path)}")
    if is_object(out):
        _close(out, path)
    return out


def is_object(schema: Any) -> bool:
    """Whether a schema describes an object: `type` says so, or it lists `properties`."""
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in schema


def _close(out: dict[str, Any], path: tuple[str | int, ...]) -> None:
    extra = out.get("additionalProperties", None if "properties" not in out else False)
    if extra is not False:
        what = "lists no properties" if extra is None else "allows other properties"
        raise StrictProblem(f"strict mode needs every object closed; the object at {json_path(path)} {what}")
    properties = out.get("properties") or {}
    required = out.get("required") or []
    for name in required:
        if name not in properties:
            raise StrictProblem(f"strict mode: {json_path(path)} requires {name!r}, not in its properties")
    out["properties"] = {
        name: sub if name in required else nullable(sub) for name, sub in properties.items()
    }
    out["required"] = list(properties)
    out["additionalProperties"] = False


def nullable(schema: Any) -> Any:
    """The schema that also accepts null: its `type` gains "null" and its `enum` null when
    that is enough, else `anyOf: [schema, {"type": "null"}]`."""
    null = {"type": "null"}
    if not isinstance(schema, dict):
        return schema if schema is True else null
    kind, enum = schema.get("type"), schema.get("enum")
    if (kind is None and not isinstance(enum, list)) or TYPE_FREE & schema.keys():
        return {"anyOf": [schema, null]}
    out = dict(schema)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        out["type"] = kinds if "null" in kinds else [*kinds, "null"]
    if isinstance(enum, list) and None not in enum:
        out["enum"] = [*enum, None]
    return out


