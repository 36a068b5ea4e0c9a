"""JSON evocli can hold: server JSON read safely, values checked before they are sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evocli import client
from evocli.errors import InputError, ProtocolError
from evocli.jsonsafe import MAX_DEPTH, UnusableJSON, json_problem, load_json, safe_text


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def test_lone_surrogates_become_replacement_characters_everywhere() -> None:
    raw = b'{"a\\ud800":["x\\udfffy",{"k":"\\ud83d"}],"ok":"\\ud83d\\ude00"}'
    assert load_json(raw) == {"a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "ok": "\U0001f600"}
    assert load_json('"\\ud800"') == "\ufffd"
    # Surrogates encoded as UTF-8 bytes (CESU-8), which json reads with surrogatepass.
    assert load_json(b'"\xed\xa0\xbd!"') == "\ufffd!"


def test_depth_up_to_the_limit_is_held_one_more_is_refused() -> None:
    assert load_json(json.dumps(nested(MAX_DEPTH))) == nested(MAX_DEPTH)
    with pytest.raises(UnusableJSON) as info:
        load_json(json.dumps(nested(MAX_DEPTH + 1)))
    assert str(info.value) == "is nested more than 200 levels deep"


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_depth_beyond_the_parser_is_refused_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(UnusableJSON) as info:
        load_json("[" * depth + "]" * depth)
    assert str(info.value) == "is nested more than 200 levels deep"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("[NaN]", "holds NaN, which is not a JSON number"),
        ('{"a": Infinity}', "holds Infinity, which is not a JSON number"),
        ("-Infinity", "holds -Infinity, which is not a JSON number"),
        ("[1e999]", "holds a number out of range (1e999)"),
        ("-1" + "0" * 400 + ".5", "holds a number out of range (-1" + "0" * 37 + "…)"),
    ],
)
def test_non_finite_numbers_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(UnusableJSON) as info:
        load_json(raw)
    assert str(info.value) == reason


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b"1" * 5000])
def test_not_json_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        load_json(raw)


def test_safe_text() -> None:
    assert safe_text("plain") == "plain"
    assert safe_text("é\ud800\udc00") == "é\ufffd\ufffd"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, "x", None, True, 2.5]}, None),
        (nested(MAX_DEPTH), None),
        (nested(MAX_DEPTH + 1), "it is nested more than 200 levels deep"),
        ({"p": "A\ud800B"}, "text holds '\\ud800', a lone surrogate that is not valid UTF-8"),
        ({"k\udcff": 1}, "text holds '\\udcff', a lone surrogate that is not valid UTF-8"),
        ([float("nan")], "NaN is not a JSON number"),
    ],
)
def test_json_problem(value: Any, problem: str | None) -> None:
    assert json_problem(value) == problem


def test_json_problem_is_iterative_however_deep() -> None:
    assert json_problem(nested(50_000)) == "it is nested more than 200 levels deep"


def test_a_body_with_a_lone_surrogate_is_refused_with_the_reason() -> None:
    req = client.Request("POST", "https://x.example/v1", {}, {"messages": [{"content": "\udcff"}]})
    with pytest.raises(InputError) as info:
        req.encoded_body()
    assert info.value.message == (
        "the request body cannot be sent: text holds '\\udcff', a lone surrogate that is not valid UTF-8")


def test_parse_completion_replaces_lone_surrogates() -> None:
    done = client.parse_completion(
        b'{"id":"\\ud800","model":"m\\udc00","choices":[{"message":{"content":"A\\ud800B"},'
        b'"finish_reason":"stop\\ud800"}],"usage":{"x":"\\ud800"}}')
    assert (done.content, done.id, done.model, done.finish_reason, done.usage) == (
        "A\ufffdB", "\ufffd", "m\ufffd", "stop\ufffd", {"x": "\ufffd"})


def test_stream_assembler_refuses_unusable_chunks() -> None:
    assembler = client.StreamAssembler()
    with pytest.raises(ProtocolError) as info:
        assembler.add('{"choices":[{"delta":{"content":NaN}}]}')
    assert info.value.message == "the stream sent a chunk that holds NaN, which is not a JSON number"
