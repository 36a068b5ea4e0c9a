"""The SSE parser and stream assembly, as pure functions of bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evocli.client import StreamAssembler
from evocli.errors import ProtocolError
from evocli.sse import Event, SSEDecoder


def parse(*chunks: bytes) -> list[Event]:
    d = SSEDecoder()
    events: list[Event] = []
    for c in chunks:
        events += d.feed(c)
    return events + d.close()


def test_simple_events() -> None:
    assert parse(b"data: one\n\ndata: two\n\n") == [Event("one"), Event("two")]


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending(eol: bytes) -> None:
    stream = b"data: a" + eol + b"data: b" + eol + eol + b"event: x" + eol + b"data: c" + eol + eol
    assert parse(stream) == [Event("a\nb"), Event("c", "x")]


def test_crlf_split_across_reads_is_one_line_end() -> None:
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [Event("a\nb")]


def test_comments_and_keepalives_are_ignored() -> None:
    assert parse(b": keep-alive\n\n:\ndata: x\n: inside\n\n") == [Event("x")]


def test_field_forms() -> None:
    stream = b"data:no-space\n\ndata:  two spaces\n\ndata\n\nid: 7\nretry: 100\nweird: y\ndata: z\n\n"
    assert parse(stream) == [Event("no-space"), Event(" two spaces"), Event(""), Event("z", id="7")]


def test_empty_data_lines_join() -> None:
    assert parse(b"data:\ndata:\n\n") == [Event("\n")]


def test_blank_line_without_data_dispatches_nothing() -> None:
    assert parse(b"\n\n\nevent: ping\n\n") == []


def test_last_event_without_blank_line_is_dropped() -> None:
    assert parse(b"data: a\n\ndata: partial") == [Event("a")]
    assert parse(b"data: a\n\ndata: partial\n") == [Event("a")]


def test_utf8_split_across_reads() -> None:
    raw = "data: naïve ☃ 🎉\n\n".encode()
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    assert parse(*pieces) == [Event("naïve ☃ 🎉")]


def test_bom_at_start_is_dropped() -> None:
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [Event("x")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: a\xffb\n\n") == [Event("a\ufffdb")]


EVENT_TEXT = st.text(alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=20)


@st.composite
def sse_streams(draw: st.DrawFn) -> bytes:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        eol = draw(st.sampled_from(["\n", "\r", "\r\n"]))
        if draw(st.booleans()):
            parts.append(":" + draw(EVENT_TEXT) + eol)
        if draw(st.booleans()):
            parts.append("event: " + draw(EVENT_TEXT) + eol)
        for _ in range(draw(st.integers(1, 3))):
            parts.append("data: " + draw(EVENT_TEXT) + eol)
        parts.append(eol)
    return "".join(parts).encode()


@settings(max_examples=300, deadline=None)
@given(stream=sse_streams(), cuts=st.lists(st.integers(0, 400), max_size=12))
def test_any_chunking_parses_the_same(stream: bytes, cuts: list[int]) -> None:
    whole = parse(stream)
    points = sorted({c for c in cuts if 0 < c < len(stream)})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert parse(*chunks) == whole


def chunk(content: str | None = None, finish: str | None = None, **extra: object) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"id": "c1", "model": "gpt-5.2", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


def test_assembler_complete_with_done() -> None:
    a = StreamAssembler()
    assert [a.add(chunk("Hel")), a.add(chunk("lo")), a.add(chunk(finish="stop"))] == ["Hel", "lo", ""]
    a.add(json.dumps({"id": "c1", "choices": [], "usage": {"total_tokens": 5}}))
    a.add("[DONE]")
    c = a.result()
    assert (c.content, c.finish_reason, c.usage, c.id, c.model) == ("Hello", "stop", {"total_tokens": 5}, "c1", "gpt-5.2")


def test_assembler_finish_reason_without_done_is_complete() -> None:
    a = StreamAssembler()
    a.add(chunk("x", finish="length"))
    assert a.result().finish_reason == "length"


def test_assembler_without_finish_or_done_is_broken() -> None:
    a = StreamAssembler()
    a.add(chunk("partial"))
    with pytest.raises(ProtocolError) as info:
        a.result()
    assert info.value.code == 76


@pytest.mark.parametrize(
    ("data", "event", "message"),
    [
        ('{"error": {"message": "upstream overloaded"}}', "message", 'the stream reported an error: "upstream overloaded"'),
        ('{"message": "bad things"}', "error", 'the stream reported an error: "bad things"'),
        ("not json", "message", "the stream sent a chunk that is not JSON: 'not json'"),
        ("[1]", "message", "the stream sent a chunk that is not a JSON object"),
    ],
)
def test_assembler_errors(data: str, event: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        StreamAssembler().add(data, event)
    assert info.value.message == message
