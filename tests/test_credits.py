"""`evocli usage --credits` against the local server, and the credits answer's parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evocli.credits import Balance, Credits, credits_text, parse_credits
from evocli.errors import ProtocolError
from tests.conftest import KEY, with_called
from tests.server import CREDITS_BODY, FakeServer, Reply, free_port

Cli = Any

TEXT = (
    "key remaining:      99416.4429\n"
    "key used:             583.5571\n"
    "account remaining:   1095.3996\n"
    "account used:         135.9048\n"
)


@pytest.fixture
def credits_env(api_env: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    monkeypatch.setenv("EVOLINK_CREDITS_URL", f"{api_env.base_url}/credits")
    return api_env


def test_credits_as_text(cli: Cli, credits_env: FakeServer, isolated: Path) -> None:
    r = cli(["usage", "--credits"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, TEXT, "")
    [req] = credits_env.requests
    assert (req.method, req.path, req.body) == ("GET", "/v1/credits", b"")
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Accept"] == "application/json"
    assert not (isolated / "ledger").exists()  # not a completion: never recorded


def test_credits_as_json(cli: Cli, credits_env: FakeServer) -> None:
    r = cli(["usage", "--credits", "--json"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {
        "key": {"remaining_credits": 99416.4429, "used_credits": 583.5571, "unlimited_credits": False},
        "account": {"remaining_credits": 1095.3996, "used_credits": 135.9048},
    }


def test_credits_url_from_config(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"credits_url: {api_env.url}/v1/credits\n")
    assert cli(["usage", "--credits"]).stdout == TEXT


def _error(status: int, body: Any) -> Reply:
    return Reply(status=status, body=body)


@pytest.mark.parametrize(
    ("reply", "code", "stderr"),
    [
        (_error(401, {"error": {"code": 401, "message": f"Invalid token {KEY}", "type": "authentication_error"}}), 77,
         'evocli: error: HTTP 401 Unauthorized: "Invalid token sk-…WXYZ"\n'
         "hint: check EVOLINK_API_KEY (keys start with sk-; manage them at https://evolink.ai/dashboard/keys)\n"),
        (_error(403, {"message": "forbidden"}), 77,
         'evocli: error: HTTP 403 Forbidden: "forbidden"\nhint: this key may not use this model or endpoint\n'),
        (_error(500, {"error": {"message": "boom"}}), 75,
         'evocli: error: HTTP 500 Internal Server Error: "boom"\nhint: the service is having trouble: try again later\n'),
        (_error(503, "Service Unavailable"), 75,
         'evocli: error: HTTP 503 Service Unavailable: "Service Unavailable"\n'
         "hint: the service is having trouble: try again later\n"),
        (_error(404, {"error": {"message": "no such route"}}), 65,
         'evocli: error: HTTP 404 Not Found: "no such route"\n'
         "hint: check the credits URL (EVOLINK_CREDITS_URL or credits_url in the config file)\n"),
        (Reply(body="<html>oops</html>"), 76,
         "evocli: error: the server's answer is not valid JSON (it starts '<html>oops</html>')\n"),
        (Reply(body={"success": True, "data": {"token": {"remaining_credits": 1, "used_credits": 2}}}), 76,
         "evocli: error: the credits answer has no data.user object\n"),
        (Reply(body={"success": False, "message": "Token invalid"}), 76,
         'evocli: error: the credits query failed: "Token invalid"\n'),
    ],
)
def test_credits_errors(
    cli: Cli, credits_env: FakeServer, reply: Reply, code: int, stderr: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evocli import transport

    monkeypatch.setattr(transport, "_sleep", lambda seconds: None)
    temporary = reply.status >= 500
    credits_env.script(*[reply] * (3 if temporary else 1))
    r = cli(["usage", "--credits", "-q"])
    if reply.status >= 400:
        stderr = with_called(stderr, credits_env.url + "/v1/credits")
    assert (r.exit_code, r.stdout, r.stderr) == (code, "", stderr)
    assert KEY not in r.stderr
    assert len(credits_env.requests) == (3 if temporary else 1)  # temporary failures are retried


def test_credits_retries_print_a_notice_each(
    cli: Cli, credits_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evocli import transport

    waits: list[float] = []
    monkeypatch.setattr(transport, "_sleep", waits.append)
    busy = Reply(status=503, body={"error": {"message": "busy"}}, headers={"Retry-After": "0.5"})
    credits_env.script(busy, Reply(status=429, headers={"retry-after-ms": "1500"}))
    r = cli(["usage", "--credits"])
    assert (r.exit_code, r.stdout) == (0, TEXT)
    assert r.stderr == (
        "evocli: HTTP 503, retrying in 0.5 s (attempt 2 of 3)\n"
        "evocli: HTTP 429, retrying in 1.5 s (attempt 3 of 3)\n"
    )
    assert waits == [0.5, 1.5]
    assert len(credits_env.requests) == 3


def test_quiet_hides_credits_retry_notices(
    cli: Cli, credits_env: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from evocli import transport

    monkeypatch.setattr(transport, "_sleep", lambda seconds: None)
    credits_env.script(Reply(status=503, headers={"Retry-After": "0.5"}))
    r = cli(["usage", "--credits", "--json", "-q"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout)["key"]["used_credits"] == 583.5571
    assert len(credits_env.requests) == 2


def test_credits_without_a_key(cli: Cli, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_CREDITS_URL", f"{server.base_url}/credits")
    r = cli(["usage", "--credits"])
    assert (r.exit_code, r.stdout) == (78, "")
    assert r.stderr == (
        "evocli: error: no API key configured\n"
        "hint: set EVOLINK_API_KEY (keys start with sk-; create one at https://evolink.ai/dashboard/keys)\n"
    )
    assert server.requests == []


def test_credits_when_the_server_is_down(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from evocli import transport

    monkeypatch.setattr(transport, "_sleep", lambda seconds: None)
    monkeypatch.setattr(transport.random, "random", lambda: 0.0)  # no jitter
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    port = free_port()
    monkeypatch.setenv("EVOLINK_CREDITS_URL", f"http://127.0.0.1:{port}/v1/credits")
    r = cli(["usage", "--credits"])
    assert (r.exit_code, r.stdout) == (75, "")
    refused = f"cannot connect to 127.0.0.1:{port}: Connection refused"
    assert r.stderr == (
        f"evocli: {refused}, retrying in 0.5 s (attempt 2 of 3)\n"
        f"evocli: {refused}, retrying in 1.0 s (attempt 3 of 3)\n"
        f"evocli: error: {refused}\n"
    )


def test_credits_url_must_not_be_plain_http_elsewhere(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_CREDITS_URL", "http://api.example.com/v1/credits")
    r = cli(["usage", "--credits"])
    assert (r.exit_code, r.stdout) == (78, "")
    assert "plain http to a non-loopback host" in r.stderr


# --- the parser ----------------------------------------------------------------------------------


def test_parse_the_documented_answer() -> None:
    assert parse_credits(json.dumps(CREDITS_BODY).encode()) == Credits(
        key=Balance(99416.4429, 583.5571, False), account=Balance(1095.3996, 135.9048))


def test_unlimited_key_and_plain_numbers() -> None:
    body = {"success": True, "data": {"token": {"remaining_credits": None, "used_credits": 12, "unlimited_credits": True},
                                      "user": {"remaining_credits": 1e-05, "used_credits": 25000000.5}}}
    credits = parse_credits(json.dumps(body).encode())
    assert credits_text(credits) == (
        "key remaining:       unlimited\n"
        "key used:                   12\n"
        "account remaining:     0.00001\n"
        "account used:       25000000.5\n"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "the server's answer is not a JSON object"),
        ({"success": True}, "the credits answer has no data object"),
        ({"data": {"token": {}, "user": {}}}, "the credits answer has no number in data.token.remaining_credits"),
        ({"data": {"token": {"remaining_credits": 1, "used_credits": "2"}, "user": {}}},
         "the credits answer has no number in data.token.used_credits"),
        ({"data": {"token": {"remaining_credits": 1, "used_credits": 2},
                   "user": {"remaining_credits": True, "used_credits": 2}}},
         "the credits answer has no number in data.user.remaining_credits"),
        ({"data": {"token": {"remaining_credits": None, "used_credits": 2}, "user": {}}},
         "the credits answer has no number in data.token.remaining_credits"),
        ({"success": False}, "the credits query failed"),
    ],
)
def test_malformed_answers(body: Any, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_credits(json.dumps(body).encode())
    assert err.value.message == message
