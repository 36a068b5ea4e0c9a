"""The protocol as data: requests, answers, errors, redaction (no sockets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evocli import client, redact
from evocli.config import ConfigFile, Overrides, resolve
from evocli.errors import ExitCode, InputError, ProtocolError
from tests.server import completion_body

KEY = "sk-unit-0123456789abcdefQRST"


def settings(tmp_path: Path, **flags: object):  # type: ignore[no-untyped-def]
    return resolve(Overrides(**flags), {"EVOLINK_API_KEY": KEY}, ConfigFile(tmp_path / "c"))  # type: ignore[arg-type]


def test_build_request(tmp_path: Path) -> None:
    s = settings(tmp_path, model="m1", params={"temperature": 0.2, "seed": 7})
    req = client.build_request(s, [{"role": "user", "content": "hi"}], stream=False)
    assert req.method == "POST"
    assert req.url == "https://direct.evolink.ai/v1/chat/completions"
    assert dict(req.headers) == {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": f"evocli/{client.__version__}",
    }
    assert req.body == {"model": "m1", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "seed": 7}
    assert json.loads(req.encoded_body() or b"") == req.body


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (float("nan"), "NaN is not a JSON number"),
        ([1.0, float("inf")], "Infinity is not a JSON number"),
        ({"a": {"b": -float("inf")}}, "-Infinity is not a JSON number"),
        ({1: "x"}, "mapping keys must be text"),
        ({"when": __import__("datetime").date(2026, 1, 1)}, "a date is not a JSON value (quote it to send it as text)"),
        ({"a": [None, True, 1, 1.5, "x", {"b": []}]}, None),
    ],
)
def test_json_problem(value: object, problem: str | None) -> None:
    assert client.json_problem(value) == problem


def test_non_finite_numbers_are_never_sent(tmp_path: Path) -> None:
    """The body is checked when the request is built, and the encoder refuses NaN and infinities."""
    with pytest.raises(InputError) as info:
        client.build_request(settings(tmp_path, params={"temperature": float("nan")}), [], stream=False)
    assert (info.value.code, info.value.message) == (65, "the request body cannot be sent: NaN is not a JSON number")
    req = client.Request("POST", "https://x.example/v1", {}, {"temperature": float("inf")})
    with pytest.raises(InputError) as info:
        req.encoded_body()
    assert (info.value.code, info.value.message) == (
        65, "the request body cannot be sent: Infinity is not a JSON number")


def test_build_streamed_request(tmp_path: Path) -> None:
    req = client.build_request(settings(tmp_path), [{"role": "user", "content": "hi"}], stream=True)
    assert req.body is not None
    assert req.body["stream"] is True
    assert req.body["stream_options"] == {"include_usage": True}
    assert req.headers["Accept"] == "text/event-stream"


def test_describe_request_masks_key(tmp_path: Path) -> None:
    req = client.build_request(settings(tmp_path), [{"role": "user", "content": "hi"}], stream=False)
    doc = client.describe_request(req, KEY)
    assert doc["headers"]["Authorization"] == "Bearer sk-…QRST"
    assert KEY not in json.dumps(doc)
    assert client.describe_request(req, None)["headers"]["Authorization"] == "Bearer <none>"


def test_parse_completion() -> None:
    raw = json.dumps(completion_body("Hi there", finish_reason="length")).encode()
    c = client.parse_completion(raw)
    assert (c.content, c.finish_reason, c.id, c.model) == ("Hi there", "length", "chatcmpl-test-1", "gpt-5.2")
    assert c.raw == raw
    assert c.usage is not None and c.usage["total_tokens"] == 19


def test_parse_completion_null_and_parts_content() -> None:
    assert client.parse_completion(json.dumps(completion_body(None)).encode()).content == ""
    parts = [{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "u"}}, {"type": "text", "text": "b"}]
    assert client.parse_completion(json.dumps(completion_body(parts)).encode()).content == "ab"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "the server's answer is not valid JSON (it is empty)"),
        (b"<html>Bad gateway</html>", "the server's answer is not valid JSON (it starts '<html>Bad gateway</html>')"),
        (b"[1, 2]", "the server's answer is not a JSON object"),
        (b'{"id": "x"}', "the server's answer has no choices"),
        (b'{"choices": []}', "the server's answer has no choices"),
        (b'{"choices": [{"index": 0}]}', "the server's answer has no message"),
        (b'{"choices": [{"message": {"content": 5}}]}', "the answer's content is neither text nor a list of parts"),
        (b'{"error": {"message": "upstream exploded"}}', 'the server answered with an error: "upstream exploded"'),
    ],
)
def test_malformed_bodies_are_protocol_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        client.parse_completion(raw)
    assert info.value.code == ExitCode.PROTOCOL == 76
    assert info.value.message == message


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, 65), (404, 65), (413, 65), (422, 65), (401, 77), (403, 77), (402, 69),
        (408, 75), (409, 75), (429, 75), (500, 75), (502, 75), (503, 75), (301, 76),
    ],
)
def test_status_to_exit_code(status: int, code: int) -> None:
    assert client.error_for_status(status, b"").code == code


def test_error_wrapped_shape_quotes_message_and_suggestion() -> None:
    raw = json.dumps({"error": {"code": 402, "message": "Insufficient quota", "type": "insufficient_quota_error",
                                "fallback_suggestion": "https://evolink.ai/dashboard/billing"}}).encode()
    err = client.error_for_status(402, raw)
    assert err.message == 'HTTP 402 Payment Required: "Insufficient quota"'
    assert err.hint == "https://evolink.ai/dashboard/billing"
    assert err.http_status == 402


def test_error_bare_shape() -> None:
    raw = b'{"code":"model_not_found","message":"Model \'x\' is not available\\nfor this key"}'
    err = client.error_for_status(404, raw)
    assert err.message == "HTTP 404 Not Found: \"Model 'x' is not available for this key\""
    assert err.hint == "check the model name (-m) and the base URL"


def test_error_text_body() -> None:
    err = client.error_for_status(502, b"<html>\n<h1>502 Bad Gateway</h1>\n</html>")
    assert err.message == 'HTTP 502 Bad Gateway: "<html> <h1>502 Bad Gateway</h1> </html>"'


def test_error_echoing_the_key_is_redacted() -> None:
    redact.add_secret(KEY)
    raw = json.dumps({"error": {"message": f"Invalid key {KEY}"}}).encode()
    err = client.error_for_status(401, raw)
    assert KEY not in err.message
    assert err.message == 'HTTP 401 Unauthorized: "Invalid key sk-…QRST"'


def test_mask_and_redact() -> None:
    assert redact.mask("sk-abc") == "sk-…"
    assert redact.mask("sk-0123456789abcdef") == "sk-…cdef"
    assert redact.redact("key sk-ZZZZZZZZZZZZZZZZ9999 end") == "key sk-…9999 end"


def test_usage_counts() -> None:
    assert client.usage_counts(None) == dict.fromkeys(
        ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens", "image_tokens", "total_tokens"), 0)
    assert client.usage_counts(completion_body()["usage"]) == {
        "prompt_tokens": 12, "completion_tokens": 7, "reasoning_tokens": 3, "cached_tokens": 2, "image_tokens": 0,
        "total_tokens": 19}
    with_images = {"prompt_tokens": 900, "completion_tokens": 10, "total_tokens": 910,
                   "prompt_tokens_details": {"cached_tokens": 0, "image_tokens": 765}}
    assert client.usage_counts(with_images)["image_tokens"] == 765
    # Anything but a count is no count: never a crash, never a wrong number.
    for details in ({"image_tokens": True}, {"image_tokens": "765"}, {"image_tokens": None}, [765], "x"):
        assert client.usage_counts({"prompt_tokens_details": details})["image_tokens"] == 0
