"""The HTTP layer with `responses`: credentials, redirects and requests' failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from evocli import client, transport
from evocli.config import ConfigFile, Overrides, resolve
from evocli.errors import ExitCode
from tests.server import completion_body

KEY = "sk-http-0123456789abcdefLMNO"
URL = "https://direct.evolink.ai/v1/chat/completions"


def request_for(tmp_path: Path) -> tuple[object, client.Request]:
    s = resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, ConfigFile(tmp_path / "c"))
    return s, client.build_request(s, [{"role": "user", "content": "hi"}], stream=False)


@responses.activate
def test_bearer_key_sent_and_netrc_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "home" / ".netrc"
    netrc.write_text("machine direct.evolink.ai login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    responses.post(URL, json=completion_body("hey"))
    s, req = request_for(tmp_path)
    completion, reply = transport.complete(s, req)  # type: ignore[arg-type]
    assert completion.content == "hey"
    assert (reply.status, reply.attempts) == (200, 1)
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.body) == {"model": "gpt-5.2", "messages": [{"role": "user", "content": "hi"}]}


@responses.activate
def test_redirect_is_not_followed(tmp_path: Path) -> None:
    responses.post(URL, status=307, headers={"Location": "https://evil.example/steal"})
    s, req = request_for(tmp_path)
    with pytest.raises(Exception) as info:
        transport.complete(s, req)  # type: ignore[arg-type]
    assert getattr(info.value, "code", None) == ExitCode.PROTOCOL
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (requests.exceptions.ConnectTimeout("x"), 75, "could not connect to direct.evolink.ai within 10 s"),
        (requests.exceptions.ReadTimeout("x"), 75, "no answer from direct.evolink.ai within 600 s"),
        (requests.exceptions.ConnectionError("[Errno -2] Name or service not known"), 75,
         "cannot connect to direct.evolink.ai: Name or service not known"),
        (requests.exceptions.SSLError("certificate verify failed"), 78,
         "TLS failure talking to direct.evolink.ai: connection failed"),
        (requests.exceptions.ChunkedEncodingError("x"), 76, "the answer from direct.evolink.ai was cut off"),
    ],
)
@responses.activate
def test_failures_translate(tmp_path: Path, exc: Exception, code: int, message: str) -> None:
    responses.post(URL, body=exc)
    s, req = request_for(tmp_path)
    with pytest.raises(Exception) as info:
        transport.complete(s, req)  # type: ignore[arg-type]
    assert getattr(info.value, "code", None) == code
    assert getattr(info.value, "message", None) == message
