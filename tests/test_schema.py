"""Answer schemas: loading (inline, files, concise form), the Draft 2020-12 check, --schema-multi, validation."""

from __future__ import annotations

import copy
import datetime
from typing import Any

import pytest

from evocli.errors import EvocliError, ExitCode, InputError, UsageError
from evocli.schema import (
    AnswerSchema,
    Loaded,
    concise,
    from_option,
    from_value,
    prepare,
    schema_name,
    wrap_multi,
)
from evocli.validation import SchemaProblem, check_document, json_path

FILES = {
    "ticket.schema.json": b'{"type": "object", "properties": {"severity": {"enum": ["low", "high"]}}}',
    "dir/triage.yaml": b"type: object\nproperties:\n  severity: {type: string}\nrequired: [severity]\n",
    "broken.json": b'{\n  "type": "object",\n  "properties": {,\n}',
    "list.yml": b"- a\n- b\n",
    "latin1.yaml": "type: caf\xe9".encode("latin-1"),
    "bad.yml": b"type: nope\n",
}


def read(path: str) -> bytes:
    try:
        return FILES[path]
    except KeyError:
        raise FileNotFoundError(2, "No such file or directory", path) from None


def failure(exc: pytest.ExceptionInfo[EvocliError]) -> tuple[int, str, str | None]:
    return int(exc.value.code), exc.value.message, exc.value.hint


# ---------------------------------------------------------------------------------------------
# The concise form


def test_concise_types_descriptions_and_order() -> None:
    assert concise("name, age int, score float, ok bool, tags: a comma-separated list") == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "string", "description": "a comma-separated list"},
        },
        "required": ["name", "age", "score", "ok", "tags"],
    }


def test_concise_lines_allow_commas_in_descriptions_and_drop_a_final_comma() -> None:
    text = "\n  severity str: one of low, medium, high,\n\ncount int:how many,\nsummary:\n"
    assert concise(text) == {
        "type": "object",
        "properties": {
            "severity": {"type": "string", "description": "one of low, medium, high"},
            "count": {"type": "integer", "description": "how many"},
            "summary": {"type": "string"},
        },
        "required": ["severity", "count", "summary"],
    }


def test_concise_lines_may_hold_several_fields() -> None:
    assert concise("name, age int\nscore float: 0 to 1, inclusive\n, ok bool,") == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "score": {"type": "number", "description": "0 to 1, inclusive"},
            "ok": {"type": "boolean"},
        },
        "required": ["name", "age", "score", "ok"],
    }


def test_concise_names_may_hold_letters_digits_underscore_and_dash() -> None:
    assert list(concise("first_name, é2, x-y int, 2fa bool,")["properties"]) == ["first_name", "é2", "x-y", "2fa"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("full name str", "'full name str' is not a field (NAME [TYPE] [: description])"),
        (": what", "': what' is not a field (NAME [TYPE] [: description])"),
        ("age integer", "age: unknown type 'integer' (str, int, float, bool)"),
        ("a, b int, a", "the field 'a' is given twice"),
        (" , ,", "no fields: give at least one, as in 'name, age int'"),
        ("schema.txt", "'schema.txt' is not a field name (letters, digits, _ and -)"),
    ],
)
def test_concise_problems(text: str, problem: str) -> None:
    with pytest.raises(SchemaProblem) as exc:
        concise(text)
    assert str(exc.value) == problem


# ---------------------------------------------------------------------------------------------
# --schema values, conversation and batch values


CONCISE_HINT = "a field is NAME [str|int|float|bool] [: description]; a schema file ends in .json or .yaml"


def test_option_forms() -> None:
    assert from_option(' {"type": "string"} ', read) == Loaded({"type": "string"}, "answer", "--schema", UsageError)
    assert from_option("ticket.schema.json", read) == Loaded(
        {"type": "object", "properties": {"severity": {"enum": ["low", "high"]}}},
        "ticket_schema",
        "ticket.schema.json",
        InputError,
    )
    assert from_option("dir/triage.yaml", read) == Loaded(
        {"type": "object", "properties": {"severity": {"type": "string"}}, "required": ["severity"]},
        "triage",
        "dir/triage.yaml",
        InputError,
    )
    assert from_option("name", read) == Loaded(concise("name"), "answer", "--schema", UsageError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"type": ', (2, "--schema: not valid JSON: Expecting value (line 1, column 10)", None)),
        ('{"maximum": NaN}', (2, "--schema: not valid JSON: NaN is not a JSON number", None)),
        ("age integer", (2, "--schema: age: unknown type 'integer' (str, int, float, bool)", CONCISE_HINT)),
        ("missing.JSON", (66, "cannot read the schema file missing.JSON: No such file or directory", None)),
        (
            "broken.json",
            (65, "broken.json: not valid JSON: Expecting property name enclosed in double quotes (line 3, column 18)", None),
        ),
        ("list.yml", (65, "list.yml: a schema file holds one JSON Schema object", None)),
        ("latin1.yaml", (65, "latin1.yaml: the schema file is not UTF-8 text", None)),
    ],
)
def test_option_problems(value: str, expected: tuple[int, str, str | None]) -> None:
    with pytest.raises(EvocliError) as exc:
        from_option(value, read)
    assert failure(exc) == expected


def test_values_from_files_are_input_errors() -> None:
    where = "review.yaml: schema"
    assert from_value({"type": "integer"}, read, where) == Loaded({"type": "integer"}, "answer", where, InputError)
    assert from_value("n int", read, where) == Loaded(concise("n int"), "answer", where, InputError)
    assert from_value("dir/triage.yaml", read, where).name == "triage"
    with pytest.raises(EvocliError) as exc:
        from_value("n integer", read, where)
    assert failure(exc) == (65, "review.yaml: schema: n: unknown type 'integer' (str, int, float, bool)", CONCISE_HINT)
    with pytest.raises(EvocliError) as exc:
        from_value(["a"], read, "jobs.jsonl:3: schema")
    assert failure(exc) == (65, "jobs.jsonl:3: schema: a schema is a JSON object, a file name or the concise form", None)
    with pytest.raises(EvocliError) as exc:
        from_value({"const": datetime.date(2026, 1, 2)}, read, where)
    assert failure(exc) == (
        65,
        "review.yaml: schema: the schema cannot be sent: a date is not a JSON value (quote it to send it as text)",
        None,
    )


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("ticket.json", "ticket"),
        ("../schemas/ticket.schema.yml", "ticket_schema"),
        ("café au lait.yaml", "caf__au_lait"),
        (".json", "_json"),
        ("...yaml", "__"),
        ("x" * 70 + ".json", "x" * 64),
    ],
)
def test_schema_names_are_what_the_api_accepts(path: str, name: str) -> None:
    assert schema_name(path) == name


# ---------------------------------------------------------------------------------------------
# prepare: the Draft 2020-12 check, strict or not, multi


def test_prepare_concise_sends_the_strict_form() -> None:
    prepared = prepare(from_option("name, age int: in years", read))
    assert prepared.response_format() == {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "description": "in years"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
        },
    }


def test_prepare_without_strict_sends_the_schema_as_given() -> None:
    given = {"type": "object", "properties": {"a": {"type": "string"}}}
    prepared = prepare(Loaded(given, "x"), strict=False)
    assert prepared == AnswerSchema("x", given, given, False)
    assert prepared.response_format()["json_schema"] == {"name": "x", "strict": False, "schema": given}
    assert prepared.check('{"b": 1}').ok


def test_prepare_multi_wraps_then_makes_strict() -> None:
    prepared = prepare(from_option("name", read), multi=True)
    assert prepared.given == {
        "type": "object",
        "properties": {"items": {"type": "array", "items": concise("name")}},
        "required": ["items"],
    }
    assert prepared.sent == {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }


def test_multi_moves_definitions_up_and_rewrites_references_to_the_old_root() -> None:
    node = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "kids": {"type": "array", "items": {"$ref": "#"}},
            "leaf": {"$ref": "#/$defs/leaf"},
            "name": {"$ref": "#/properties/label"},
            "label": {"type": "string", "default": {"$ref": "#"}},
        },
        "$defs": {"leaf": {"type": "object", "properties": {"up": {"$ref": "#"}}}},
    }
    assert wrap_multi(node) == {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kids": {"type": "array", "items": {"$ref": "#/properties/items/items"}},
                        "leaf": {"$ref": "#/$defs/leaf"},
                        "name": {"$ref": "#/properties/items/items/properties/label"},
                        "label": {"type": "string", "default": {"$ref": "#"}},
                    },
                },
            }
        },
        "required": ["items"],
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"leaf": {"type": "object", "properties": {"up": {"$ref": "#/properties/items/items"}}}},
    }
    checked = prepare(Loaded(node), multi=True)
    answer = '{"items": [{"kids": [{"kids": "x", "leaf": null, "name": null, "label": null}], "leaf": {"up": null}, "name": "a", "label": 7}]}'
    assert checked.check(answer).issues == (
        '$.items[0].kids[0].kids: "x" is not of types "null", "array"',
        '$.items[0].label: 7 is not of types "null", "string"',
    )


def test_multi_leaves_a_schema_with_its_own_id_whole() -> None:
    schema = {"$id": "urn:x", "$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"}
    assert wrap_multi(schema)["properties"]["items"]["items"] == schema
    assert prepare(Loaded(schema), multi=True).check('{"items": ["a", 1]}').issues == ('$.items[1]: 1 is not of type "string"',)


@pytest.mark.parametrize(
    ("schema", "message", "hint"),
    [
        (
            {"type": "nope"},
            "--schema: not a valid JSON Schema (Draft 2020-12): $.type: \"nope\" is not valid under any of the schemas listed in the 'anyOf' keyword",
            None,
        ),
        ({"items": [{"type": "string"}]}, '--schema: not a valid JSON Schema (Draft 2020-12): $.items: [{"type":"string"}] is not of types "boolean", "object"', None),
        ({"type": "string", "pattern": "("}, '--schema: not a valid JSON Schema (Draft 2020-12): $.pattern: "(" is not a "regex"', None),
        (
            {"$ref": "https://example.com/s.json"},
            "--schema: not a valid JSON Schema (Draft 2020-12): $: Resource 'https://example.com/s.json' is not present in a registry and retrieving it failed: Retrieval is disabled, cannot fetch https://example.com/s.json",
            None,
        ),
        ({"type": "object"}, "--schema: strict mode needs every object closed; the object at $ lists no properties", "strict"),
        (
            {"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}},
            "--schema: strict mode needs every object closed; the object at $.properties.m allows other properties",
            "strict",
        ),
        (
            {"properties": {"a": {}}, "required": ["a", "b"]},
            "--schema: strict mode: $ requires 'b', not in its properties",
            "strict",
        ),
        (
            {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]},
            "--schema: strict mode cannot combine objects with allOf at $",
            "strict",
        ),
        (
            {"$defs": {"b": {"type": "object", "properties": {}}}, "$ref": "#/$defs/b", "properties": {"a": {}}},
            "--schema: strict mode cannot extend a $ref with properties at $",
            "strict",
        ),
    ],
)
def test_prepare_refuses_before_any_request(schema: dict[str, Any], message: str, hint: str | None) -> None:
    with pytest.raises(UsageError) as exc:
        prepare(Loaded(schema))
    expected_hint = "fix the schema, or send it as it is with --no-strict" if hint else None
    assert failure(exc) == (ExitCode.USAGE, message, expected_hint)


def test_prepare_problems_take_the_code_of_their_source() -> None:
    with pytest.raises(EvocliError) as exc:
        prepare(from_option("bad.yml", read))
    assert failure(exc)[:2] == (
        65,
        "bad.yml: not a valid JSON Schema (Draft 2020-12): $.type: \"nope\" is not valid under any of the schemas listed in the 'anyOf' keyword",
    )
    assert prepare(Loaded({"type": "object"}), strict=False).sent == {"type": "object"}


# ---------------------------------------------------------------------------------------------
# Validation of an answer


STRICT = prepare(
    Loaded(
        {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"age": {"type": "integer", "minimum": 0}, "odd key": {"enum": ["a", "b"]}},
                        "required": ["age"],
                    },
                },
                "note": {"type": "string", "maxLength": 3},
            },
            "required": ["items"],
        }
    )
)


def test_a_valid_answer_gives_its_document() -> None:
    check = STRICT.check(' {"items": [{"age": 3, "odd key": null}], "note": null}\n')
    assert check.ok
    assert check.document == {"items": [{"age": 3, "odd key": None}], "note": None}


def test_every_issue_with_its_path_in_the_validators_order() -> None:
    content = '{"items": [{"age": 1}, {"age": -1, "odd key": "c", "x": 1}], "note": "long"}'
    assert STRICT.check(content).issues == (
        '$.items[0]: "odd key" is a required property',
        "$.items[1].age: -1 is less than the minimum of 0",
        '$.items[1]["odd key"]: "c" is not one of "a", "b" or null',
        "$.items[1]: Additional properties are not allowed ('x' was unexpected)",
        '$.note: "long" is longer than 3 characters',
    )


@pytest.mark.parametrize(
    ("schema", "content", "issues"),
    [
        # A nullable property's error is about its value, not about [S, null].
        (STRICT.sent, '{"items": [], "note": 5}', ('$.note: 5 is not of types "null", "string"',)),
        ({"anyOf": [{"type": "string", "minLength": 3}, {"type": "integer"}]}, '"ab"', ('$: "ab" is shorter than 3 characters',)),
        (
            {"anyOf": [{"$ref": "#/$defs/p"}, {"type": "null"}], "$defs": {"p": {"type": "object", "required": ["x"]}}},
            "{}",
            ('$: "x" is a required property',),
        ),
        # When several branches fit the type, none is chosen.
        (
            {"anyOf": [{"type": "string", "minLength": 3}, {"type": "string", "maxLength": 1}]},
            '"ab"',
            ("$: \"ab\" is not valid under any of the schemas listed in the 'anyOf' keyword",),
        ),
        (
            {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 5}]},
            "2.5",
            ("$: 2.5 is less than the minimum of 5",),
        ),
    ],
)
def test_an_anyof_error_names_the_branch_that_fits(schema: dict[str, Any], content: str, issues: tuple[str, ...]) -> None:
    assert check_document(schema, content).issues == issues


@pytest.mark.parametrize(
    ("content", "issue"),
    [
        ("", "$: not valid JSON: the answer is empty"),
        ("  \n", "$: not valid JSON: the answer is empty"),
        ('{"items": []', "$: not valid JSON: Expecting ',' delimiter (line 1, column 13)"),
        ('```json\n{"items": []}\n```', "$: not valid JSON: Expecting value (line 1, column 1)"),
        ('{"items": [], "note": NaN}', "$: not valid JSON: NaN is not a JSON number"),
        ('{"items": [], "note": -Infinity}', "$: not valid JSON: -Infinity is not a JSON number"),
        ('{"items": [], "note": 1e999}', "$: not valid JSON: 1e999 is out of range for a number"),
        ("[" * 100_000 + "]" * 100_000, "$: not valid JSON: nested too deeply"),
    ],
)
def test_an_answer_that_is_not_json(content: str, issue: str) -> None:
    assert STRICT.check(content) == check_document(STRICT.sent, content)
    assert STRICT.check(content).issues == (issue,)
    assert not STRICT.check(content).ok


def test_long_messages_are_cut_to_one_line() -> None:
    issues = check_document({"type": "integer"}, '"' + "x" * 400 + '"').issues
    assert issues == ('$: "' + "x" * 298 + "…",)


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        ([], "$"),
        (["items", 0, "age"], "$.items[0].age"),
        (["odd key", "$defs", "_x9", "9a", 'q"é'], '$["odd key"].$defs._x9["9a"]["q\\"é"]'),
    ],
)
def test_json_paths(parts: list[str | int], path: str) -> None:
    assert json_path(parts) == path


def test_loading_and_preparing_do_not_change_the_given_schema() -> None:
    given = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"enum": [1]}}}}}
    before = copy.deepcopy(given)
    prepare(Loaded(given), multi=True)
    assert given == before
