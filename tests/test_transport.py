"""The HTTP layer with `responses`: credentials, redirects, failures, retries and the fallback host."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from evocli import client, retry, transport
from evocli.config import ConfigFile, Overrides, Settings, resolve
from evocli.errors import EvocliError, ExitCode
from tests.server import completion_body

KEY = "sk-http-0123456789abcdefLMNO"
PRIMARY = "https://direct.evolink.ai/v1/chat/completions"
FALLBACK = "https://api.evolink.ai/v1/chat/completions"
CUSTOM = "https://llm.example/v1/chat/completions"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the waits between attempts instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(transport, "_sleep", waits.append)
    return waits


def setup(tmp_path: Path, base: str | None = None, **flags: Any) -> tuple[Settings, client.Request]:
    env = {"EVOLINK_API_KEY": KEY}
    if base:
        env["EVOLINK_BASE_URL"] = base
    s = resolve(Overrides(**flags), env, ConfigFile(tmp_path / "c"))
    return s, client.build_request(s, [{"role": "user", "content": "hi"}], stream=False)


def notices() -> tuple[list[str], transport.Link]:
    seen: list[str] = []
    return seen, transport.Link(notify=seen.append)


@responses.activate
def test_bearer_key_sent_and_netrc_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "home" / ".netrc"
    netrc.write_text("machine direct.evolink.ai login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    responses.post(PRIMARY, json=completion_body("hey"))
    s, req = setup(tmp_path)
    completion, reply = transport.complete(s, req)
    assert completion.content == "hey"
    assert (reply.status, reply.attempts, reply.url) == (200, 1, PRIMARY)
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.body) == {"model": "gpt-5.2", "messages": [{"role": "user", "content": "hi"}]}


@responses.activate
def test_redirect_is_not_followed(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(PRIMARY, status=307, headers={"Location": "https://evil.example/steal"})
    s, req = setup(tmp_path)
    with pytest.raises(EvocliError) as info:
        transport.complete(s, req)
    assert info.value.code == ExitCode.PROTOCOL
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (requests.exceptions.ConnectTimeout("x"), 75, "could not connect to llm.example within 10 s"),
        (requests.exceptions.ReadTimeout("x"), 75, "no answer from llm.example within 600 s"),
        (requests.exceptions.ConnectionError("[Errno -2] Name or service not known"), 75,
         "cannot connect to llm.example: Name or service not known"),
        (requests.exceptions.SSLError("certificate verify failed"), 78,
         "TLS failure talking to llm.example: connection failed"),
    ],
)
@responses.activate
def test_failures_translate(tmp_path: Path, exc: Exception, code: int, message: str) -> None:
    responses.post(CUSTOM, body=exc)
    s, req = setup(tmp_path, "https://llm.example/v1", retries=0)
    with pytest.raises(EvocliError) as info:
        transport.complete(s, req)
    assert (info.value.code, info.value.message, info.value.attempts) == (code, message, 1)


@responses.activate
def test_retry_obeys_fractional_retry_after(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, status=429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "1.5"})
    responses.post(CUSTOM, json=completion_body("ok"))
    s, req = setup(tmp_path, "https://llm.example/v1")
    seen, notify = notices()
    completion, reply = transport.complete(s, req, notify)
    assert (completion.content, reply.attempts) == ("ok", 2)
    assert sleeps == [1.5]
    assert seen == ["HTTP 429, retrying in 1.5 s (attempt 2 of 3)"]


@responses.activate
def test_retry_after_ms_wins_and_http_date_works(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, status=503, headers={"retry-after-ms": "250", "Retry-After": "9"})
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    responses.post(CUSTOM, status=503, headers={"Retry-After": when})
    responses.post(CUSTOM, json=completion_body())
    s, req = setup(tmp_path, "https://llm.example/v1")
    transport.complete(s, req)
    assert sleeps[0] == 0.25
    assert 28 <= sleeps[1] <= 30


@responses.activate
def test_retry_after_beyond_window_fails_at_once(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, status=429, json={"error": {"message": "Rate limit exceeded"}}, headers={"Retry-After": "300"})
    s, req = setup(tmp_path, "https://llm.example/v1")
    with pytest.raises(EvocliError) as info:
        transport.complete(s, req)
    assert info.value.code == 75
    assert info.value.message.startswith(
        'HTTP 429 Too Many Requests: "Rate limit exceeded" (the server asks to wait 300.0 s, more than the 1')
    assert info.value.message.endswith(" s left of --retry-max-time)")
    assert sleeps == []
    assert len(responses.calls) == 1


@responses.activate
def test_backoff_with_jitter_then_give_up(tmp_path: Path, sleeps: list[float]) -> None:
    for _ in range(4):
        responses.post(CUSTOM, status=500, json={"error": {"message": "boom"}})
    s, req = setup(tmp_path, "https://llm.example/v1", retries=3)
    seen, notify = notices()
    with pytest.raises(EvocliError) as info:
        transport.complete(s, req, notify)
    assert (info.value.code, info.value.attempts, info.value.http_status) == (75, 4, 500)
    assert len(responses.calls) == 4
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0 and 1.5 <= sleeps[2] <= 2.0
    assert [n.split(" retrying")[0] for n in seen] == ["HTTP 500,"] * 3
    assert seen[-1].endswith("(attempt 4 of 4)")


def test_backoff_caps_at_eight_seconds() -> None:
    assert retry.backoff_delay(0, 0.0) == 0.5
    assert retry.backoff_delay(3, 0.0) == 4.0
    assert retry.backoff_delay(10, 0.0) == 8.0
    assert retry.backoff_delay(10, 0.999) == pytest.approx(8 * 0.75025, rel=1e-3)


@responses.activate
def test_retry_window_stops_backoff(tmp_path: Path, sleeps: list[float]) -> None:
    for _ in range(3):
        responses.post(CUSTOM, status=502)
    s, req = setup(tmp_path, "https://llm.example/v1", retry_max_time=0.3)
    with pytest.raises(EvocliError) as info:
        transport.complete(s, req)
    assert info.value.attempts == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 413, 422])
@responses.activate
def test_client_errors_are_never_retried(tmp_path: Path, sleeps: list[float], status: int) -> None:
    responses.post(CUSTOM, status=status, headers={"Retry-After": "1"})
    s, req = setup(tmp_path, "https://llm.example/v1")
    with pytest.raises(EvocliError):
        transport.complete(s, req)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
@responses.activate
def test_temporary_statuses_are_retried(tmp_path: Path, sleeps: list[float], status: int) -> None:
    responses.post(CUSTOM, status=status)
    responses.post(CUSTOM, json=completion_body())
    s, req = setup(tmp_path, "https://llm.example/v1")
    assert transport.complete(s, req)[1].attempts == 2


@responses.activate
def test_x_should_retry_overrides_status(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, status=500, headers={"x-should-retry": "false"})
    s, req = setup(tmp_path, "https://llm.example/v1")
    with pytest.raises(EvocliError):
        transport.complete(s, req)
    assert len(responses.calls) == 1
    responses.post(CUSTOM, status=400, headers={"x-should-retry": "true"})
    responses.post(CUSTOM, json=completion_body())
    assert transport.complete(s, req)[1].attempts == 2


@responses.activate
def test_connection_errors_are_retried(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, body=requests.exceptions.ConnectionError("[Errno 111] Connection refused"))
    responses.post(CUSTOM, json=completion_body())
    s, req = setup(tmp_path, "https://llm.example/v1")
    seen, notify = notices()
    assert transport.complete(s, req, notify)[1].attempts == 2
    assert seen == [f"cannot connect to llm.example: Connection refused, retrying in {sleeps[0]:.1f} s (attempt 2 of 3)"]


@responses.activate
def test_fallback_after_503s_on_the_default_host(tmp_path: Path, sleeps: list[float]) -> None:
    for _ in range(3):
        responses.post(PRIMARY, status=503, json={"error": {"message": "busy"}})
    responses.post(FALLBACK, json=completion_body("from fallback"))
    s, req = setup(tmp_path)
    seen, notify = notices()
    completion, reply = transport.complete(s, req, notify)
    assert (completion.content, reply.attempts, reply.url) == ("from fallback", 4, FALLBACK)
    assert seen[-1] == "direct.evolink.ai failed (HTTP 503); trying api.evolink.ai"
    assert responses.calls[3].request.headers["Authorization"] == f"Bearer {KEY}"


@responses.activate
def test_fallback_after_connection_errors(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(PRIMARY, body=requests.exceptions.ConnectionError("[Errno 111] Connection refused"))
    responses.post(FALLBACK, json=completion_body("ok"))
    s, req = setup(tmp_path, retries=0)
    assert transport.complete(s, req)[1].url == FALLBACK


@pytest.mark.parametrize("status", [500, 429, 401])
@responses.activate
def test_no_fallback_for_other_failures(tmp_path: Path, sleeps: list[float], status: int) -> None:
    responses.post(PRIMARY, status=status)
    s, req = setup(tmp_path, retries=0)
    with pytest.raises(EvocliError):
        transport.complete(s, req)
    assert [c.request.url for c in responses.calls] == [PRIMARY]


@responses.activate
def test_no_fallback_for_custom_base_url(tmp_path: Path, sleeps: list[float]) -> None:
    responses.post(CUSTOM, status=503)
    s, req = setup(tmp_path, "https://llm.example/v1", retries=0)
    with pytest.raises(EvocliError):
        transport.complete(s, req)
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": "-3"}, None),  # nonsense: ignored, the usual back-off applies
        ({"retry-after-ms": "-500"}, None),
        ({"retry-after-ms": "-500", "Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "nan", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "1_0"}, None),
        ({"Retry-After": " 4 "}, 4.0),
        ({"retry-after-ms": "1e308"}, 1e305),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
    ],
)
def test_server_wait(headers: dict[str, str], wait: float | None) -> None:
    from requests.structures import CaseInsensitiveDict

    assert retry.server_wait(CaseInsensitiveDict(headers), now=1_700_000_000.0) == wait


def test_server_wait_http_date() -> None:
    from requests.structures import CaseInsensitiveDict

    now = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
    h = CaseInsensitiveDict({"Retry-After": "Thu, 26 Nov 2026 12:00:07 GMT"})
    assert retry.server_wait(h, now.timestamp()) == 7.0
