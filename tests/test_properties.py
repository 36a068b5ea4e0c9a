"""Arbitrary JSON into the answer parsers and the batch line reader: every input ends as a result
or an EvocliError, never another exception, and every result can be written out."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evocli import batch, client
from evocli.config import ConfigFile, Overrides, Settings, resolve
from evocli.errors import EvocliError
from evocli.jsonsafe import json_problem

SETTINGS = dict(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
LONE = ["\ud800", "\udbff", "\udc00", "\udfff", "A\ud83dB", "\udcff"]

# Text of any code point, lone surrogates included.
texts = st.one_of(st.text(st.characters(exclude_categories=()), max_size=8), st.sampled_from(LONE))
numbers = st.one_of(
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**5), 1e308, 0.0]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, values)


# Completion bodies and stream chunks with any field replaced by any value (or any value at all).
_part = st.fixed_dictionaries({"type": maybe(st.just("text")), "text": values})
_content = st.one_of(texts, st.none(), st.lists(maybe(_part), max_size=3), values)
_message = st.fixed_dictionaries({"role": maybe(st.just("assistant")), "content": _content})
_choice = st.fixed_dictionaries({"message": maybe(_message), "finish_reason": maybe(st.just("stop"))})
completions = maybe(st.fixed_dictionaries(
    {"id": values, "model": values, "choices": maybe(st.lists(maybe(_choice), max_size=2)), "usage": values}
))
_delta = st.fixed_dictionaries({"content": maybe(texts)})
_chunk_choice = st.fixed_dictionaries({"delta": maybe(_delta), "finish_reason": maybe(st.just("stop"))})
chunks = maybe(st.fixed_dictionaries(
    {"id": values, "model": values, "choices": maybe(st.lists(maybe(_chunk_choice), max_size=2)), "usage": values}
))


def encode(value: Any, depth: int, ascii_only: bool) -> bytes:
    """The value as JSON text (NaN and Infinity as Python writes them), nested `depth` more
    levels: the text is built by hand, json.dumps cannot write such depths."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    text = "[" * depth + text + "]" * depth
    return text.encode("utf-8", "surrogatepass")  # a raw lone surrogate as bytes (CESU-8)


depths = st.one_of(st.just(0), st.integers(0, 300), st.sampled_from([1_000, 5_000, 100_000]))
# Several events per stream: mostly shallow ones, so that the run stays short.
event_depths = st.one_of(st.just(0), st.just(0), st.integers(0, 250), st.sampled_from([5_000, 100_000]))


def writable(*items: Any) -> None:
    """What evocli holds can be written as JSON and as UTF-8, with no NaN or Infinity."""
    json.dumps(items, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert json_problem(list(items)) is None


@settings(**SETTINGS)
@given(body=completions, depth=depths, ascii_only=st.booleans())
def test_parse_completion_ends_as_a_completion_or_an_evocli_error(body: Any, depth: int, ascii_only: bool) -> None:
    try:
        done = client.parse_completion(encode(body, depth, ascii_only))
    except EvocliError:
        return
    writable(done.content, done.id, done.model, done.finish_reason, done.usage, done.data)


@settings(**SETTINGS)
@given(events=st.lists(st.tuples(chunks, event_depths, st.booleans(), st.sampled_from(["message", "error", "ping"])),
                       max_size=4))
def test_stream_assembler_ends_as_a_completion_or_an_evocli_error(events: list[Any]) -> None:
    assembler = client.StreamAssembler()
    try:
        for value, depth, ascii_only, name in events:
            # As the SSE decoder hands it over: text decoded from UTF-8, errors replaced.
            data = encode(value, depth, ascii_only).decode("utf-8", "replace")
            writable(assembler.add(data, name))
        done = assembler.result()
    except EvocliError:
        return
    writable(done.content, done.id, done.model, done.finish_reason, done.usage)


_line_message = st.fixed_dictionaries(
    {"role": maybe(st.sampled_from(["user", "system", "assistant"])), "content": maybe(texts)}
)
# A batch line: any value, or an object of some of the line's fields, each with any value.
batch_lines = maybe(st.fixed_dictionaries({}, optional={
    "id": maybe(st.one_of(st.integers(), texts)),
    "prompt": maybe(texts),
    "system": maybe(texts),
    "messages": maybe(st.lists(maybe(_line_message), max_size=3)),
    "model": maybe(texts),
    "params": maybe(st.dictionaries(texts, values, max_size=3)),
    "vars": maybe(st.dictionaries(texts, maybe(texts), max_size=2)),
}))


def _settings() -> Settings:
    return resolve(Overrides(), {"EVOLINK_API_KEY": "sk-property-0123456789"}, ConfigFile(Path("/nonexistent")))


@settings(**SETTINGS)
@given(value=batch_lines, depth=depths, ascii_only=st.booleans(), index=st.integers(0, 10**6),
       system=st.sampled_from([None, "Be terse."]))
def test_batch_line_ends_as_a_job_or_that_lines_error(
    value: Any, depth: int, ascii_only: bool, index: int, system: str | None
) -> None:
    raw = encode(value, depth, ascii_only)
    try:  # as batch.read_lines hands it over: strict UTF-8, or None
        line: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        line = None
    job = batch.parse_line(index, line, system)
    assert job is not None
    writable(job.id)
    if job.error is not None:
        assert job.error.message.startswith(f"line {index + 1}: ")
        writable(batch.error_record(job, job.error))
        return
    s = _settings()
    s = replace(s, model=job.model or s.model, params={**s.params, **job.params})  # as the CLI does
    try:
        request = client.build_request(s, job.messages, stream=False)
    except EvocliError:
        return
    assert request.encoded_body() is not None
