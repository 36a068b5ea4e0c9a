"""The strict form of a schema: exact outputs, and a property test that it accepts what the original does."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evocli.schema import nullable, strictify
from evocli.validation import check_document


def obj(properties: dict[str, Any], required: list[str] | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required is not None:
        out["required"] = required
    return {**out, **more}


def closed(properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **more, "required": list(properties), "additionalProperties": False}


def test_nested_objects_in_arrays_are_closed_and_optional_properties_nullable() -> None:
    given_schema = obj(
        {
            "title": {"type": "string"},
            "rows": {"type": "array", "items": obj({"n": {"type": "integer"}, "why": {"type": "string"}}, ["n"])},
        },
        ["title"],
    )
    assert strictify(given_schema) == closed(
        {
            "title": {"type": "string"},
            "rows": {
                "type": ["array", "null"],
                "items": closed({"n": {"type": "integer"}, "why": {"type": ["string", "null"]}}),
            },
        }
    )


@pytest.mark.parametrize(
    ("optional", "strict"),
    [
        ({"type": "string", "description": "d"}, {"type": ["string", "null"], "description": "d"}),
        ({"type": ["string", "integer"]}, {"type": ["string", "integer", "null"]}),
        ({"type": ["null", "string"]}, {"type": ["null", "string"]}),
        ({"type": "string", "enum": ["a", "b"]}, {"type": ["string", "null"], "enum": ["a", "b", None]}),
        ({"enum": ["a", 1]}, {"enum": ["a", 1, None]}),
        ({"enum": ["a", None]}, {"enum": ["a", None]}),
        ({"type": "string", "const": "k"}, {"anyOf": [{"type": "string", "const": "k"}, {"type": "null"}]}),
        ({"$ref": "#/$defs/x"}, {"anyOf": [{"$ref": "#/$defs/x"}, {"type": "null"}]}),
        ({}, {"anyOf": [{}, {"type": "null"}]}),
        ({"description": "anything"}, {"anyOf": [{"description": "anything"}, {"type": "null"}]}),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            {"anyOf": [{"anyOf": [{"type": "string"}, {"type": "integer"}]}, {"type": "null"}]},
        ),
        ({"type": "integer", "not": {"const": 3}}, {"anyOf": [{"type": "integer", "not": {"const": 3}}, {"type": "null"}]}),
        (True, True),
        (False, {"type": "null"}),
    ],
)
def test_an_optional_property_becomes_nullable(optional: Any, strict: Any) -> None:
    assert nullable(optional) == strict
    assert strictify(obj({"p": optional})) == closed({"p": strict})
    assert strictify(obj({"p": optional}, ["p"])) == closed({"p": optional})


def test_anyof_oneof_prefixitems_defs_and_pattern_properties_are_made_strict() -> None:
    inner = obj({"a": {"type": "string"}})
    strict_inner = closed({"a": {"type": ["string", "null"]}})
    given_schema = {
        "$defs": {"d": inner},
        "definitions": {"e": inner},
        "type": "array",
        "prefixItems": [inner, {"type": "integer"}],
        "items": {"anyOf": [inner, {"oneOf": [inner, {"type": "null"}]}]},
        "contains": inner,
    }
    assert strictify(given_schema) == {
        "$defs": {"d": strict_inner},
        "definitions": {"e": strict_inner},
        "type": "array",
        "prefixItems": [strict_inner, {"type": "integer"}],
        "items": {"anyOf": [strict_inner, {"oneOf": [strict_inner, {"type": "null"}]}]},
        "contains": strict_inner,
    }
    patterned = obj({}, patternProperties={"^x": inner}, additionalProperties=False)
    assert strictify(patterned) == closed({}, patternProperties={"^x": strict_inner})


def test_conditions_and_partial_objects_are_left_as_they_are() -> None:
    tests = {
        "not": obj({"a": {}}),
        "if": obj({"a": {"const": 1}}),
        "then": obj({"b": {}}, ["b"]),
        "else": {"required": ["c"]},
        "dependentSchemas": {"a": obj({"c": {}})},
        "propertyNames": {"maxLength": 3},
    }
    given_schema = obj({"a": {"type": "integer"}}, ["a"], **tests)
    assert strictify(given_schema) == closed({"a": {"type": "integer"}}, **tests)


def test_an_allof_of_non_objects_is_made_strict_inside() -> None:
    given_schema = {"allOf": [{"minimum": 1}, {"type": "array", "items": obj({"a": {}}, ["a"])}]}
    assert strictify(given_schema) == {"allOf": [{"minimum": 1}, {"type": "array", "items": closed({"a": {}})}]}


def test_an_explicitly_empty_closed_object_stays_empty() -> None:
    assert strictify({"type": "object", "additionalProperties": False}) == closed({})


# ---------------------------------------------------------------------------------------------
# Property: the strict form accepts every instance the original accepts, once the optional
# properties the instance left out are filled with null.

# A node is (schema, strategy of (instance, the same instance with absent optionals as null)).
Node = tuple[Any, Any]

NAMES = st.sampled_from(["a", "b", "id", "odd key", "$x", "é"])
TEXT = st.text(max_size=4)
NUMBER = st.floats(allow_nan=False, allow_infinity=False, width=32)
ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.lists(st.integers(), max_size=2))
LEAVES: list[tuple[Any, Any]] = [
    ({"type": "string"}, TEXT),
    ({"type": "string", "maxLength": 3, "description": "short"}, st.text(max_size=3)),
    ({"type": "integer", "minimum": 0}, st.integers(min_value=0)),
    ({"type": "number"}, NUMBER),
    ({"type": "boolean"}, st.booleans()),
    ({"type": ["string", "integer"]}, st.one_of(TEXT, st.integers())),
    ({"type": ["string", "null"]}, st.one_of(TEXT, st.none())),
    ({"type": "string", "enum": ["x", "y"]}, st.sampled_from(["x", "y"])),
    ({"enum": ["x", 1, True]}, st.sampled_from(["x", 1, True])),
    ({"const": "k"}, st.just("k")),
    ({"type": "integer", "not": {"const": 3}}, st.integers().filter(lambda n: n != 3)),
    ({}, ANY_JSON),
    (True, ANY_JSON),
]


def same(values: Any) -> Any:
    return values.map(lambda v: (v, v))


def leaf() -> st.SearchStrategy[Node]:
    return st.sampled_from(LEAVES).map(lambda pair: (pair[0], same(pair[1])))


@st.composite
def object_node(draw: st.DrawFn, children: st.SearchStrategy[Node]) -> Node:
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    props = {name: draw(children) for name in names}
    required = [name for name in names if draw(st.booleans())]
    schema = obj({name: sub for name, (sub, _) in props.items()}, required)

    @st.composite
    def instances(draw: st.DrawFn) -> tuple[Any, Any]:
        instance, filled = {}, {}
        for name, (_, values) in props.items():
            if name in required or draw(st.booleans()):
                instance[name], filled[name] = draw(values)
            else:
                filled[name] = None
        return instance, filled

    return schema, instances()


def array_node(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(child: Node) -> Node:
        values = st.lists(child[1], max_size=3).map(lambda pairs: ([p[0] for p in pairs], [p[1] for p in pairs]))
        return {"type": "array", "items": child[0]}, values

    return children.map(build)


def anyof_node(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(pair: tuple[Node, Node]) -> Node:
        (first, first_values), (second, second_values) = pair
        return {"anyOf": [first, second]}, st.one_of(first_values, second_values)

    return st.tuples(children, children).map(build)


NODES = st.recursive(
    leaf(),
    lambda children: st.one_of(object_node(children), array_node(children), anyof_node(children)),
    max_leaves=8,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[Any, Any, Any]:
    """A schema (an object with a $ref to a definition), an instance of it, and the filled one."""
    (main, main_values), (definition, def_values) = draw(NODES), draw(NODES)
    ref_required = draw(st.booleans())
    schema = obj(
        {"main": main, "ref": {"$ref": "#/$defs/d"}},
        ["main", "ref"] if ref_required else ["main"],
        **{"$defs": {"d": definition}},
    )
    instance, filled = {}, {}
    instance["main"], filled["main"] = draw(main_values)
    if ref_required or draw(st.booleans()):
        instance["ref"], filled["ref"] = draw(def_values)
    else:
        filled["ref"] = None
    return schema, instance, filled


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_strict_form_accepts_what_the_original_accepts_with_nulls_filled_in(case: tuple[Any, Any, Any]) -> None:
    schema, instance, filled = case
    original = jsonschema_rs.Draft202012Validator(schema, offline=True)
    assert original.is_valid(instance), [e.message for e in original.iter_errors(instance)]
    strict = strictify(schema)
    assert check_document(strict, json.dumps(filled)).issues == ()


@settings(max_examples=100, deadline=None)
@given(documents())
def test_the_strict_form_refuses_an_absent_property(case: tuple[Any, Any, Any]) -> None:
    """And it is strict: every property must be there (`main` and `ref` always are at the top)."""
    schema, _, filled = case
    del filled["ref"]
    assert check_document(strictify(schema), json.dumps(filled)).issues == ('$: "ref" is a required property',)
