"""--max-time, -v and the URL in error hints, as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY
from tests.server import FakeServer, Reply, completion_body, sse_stream


def test_max_time_during_a_slow_stream_keeps_what_arrived(cli: Any, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(chunks=sse_stream(["first ", "second ", "third"]), chunk_delay=0.6))
    r = cli(["ask", "--stream", "--max-time", "1", "--no-stdin", "x"])
    assert (r.exit_code, r.stdout) == (75, "first second \n")
    assert r.stderr == ("evocli: error: the call did not finish within --max-time 1 s\n"
                        "hint: raise --max-time, or ask for less (--max-tokens, --effort)\n")
    [record] = [json.loads(line) for p in (isolated / "ledger").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert (record["ok"], record["exit_code"], record["http_status"]) == (False, 75, 200)


def test_max_time_covers_a_server_that_never_answers(cli: Any, api_env: FakeServer) -> None:
    api_env.script(Reply(delay=5, body=completion_body("late")))
    r = cli(["ask", "--max-time", "0.5", "--no-stdin", "x"])
    assert (r.exit_code, r.stdout) == (75, "")
    assert r.stderr.startswith("evocli: error: the call did not finish within --max-time 0.5 s\n")


def test_no_retry_wait_goes_past_max_time(cli: Any, api_env: FakeServer) -> None:
    api_env.script(Reply(status=503, headers={"Retry-After": "3"}), Reply(body=completion_body("never")))
    r = cli(["ask", "--max-time", "2", "--no-stdin", "x"])
    assert (r.exit_code, len(api_env.requests)) == (75, 1)
    assert r.stderr.startswith("evocli: error: HTTP 503 Service Unavailable")
    assert "(no time is left of --max-time for another attempt)" in r.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_max_time_must_be_positive(cli: Any, value: str) -> None:
    r = cli(["ask", "--max-time", value, "--dry-run", "x"])
    assert (r.exit_code, r.stderr) == (2, "evocli: error: --max-time must be a positive number of seconds\n")


def test_verbose_traces_each_attempt_without_the_key(cli: Any, api_env: FakeServer) -> None:
    api_env.script(
        Reply(status=429, headers={"Retry-After": "0.1", "x-request-id": "req-1",
                                   "x-ratelimit-remaining-requests": "0"}),
        Reply(body=completion_body("hi"), headers={"x-request-id": "req-2"}),
    )
    r = cli(["ask", "-v", "--no-stdin", "x"])
    assert (r.exit_code, r.stdout) == (0, "hi\n")
    lines = r.stderr.splitlines()
    url = api_env.base_url + "/chat/completions"
    assert lines[0] == f"evocli: > POST {url} (attempt 1 of 3)"
    assert lines[1].startswith("evocli: < HTTP 429 Too Many Requests, retry-after: 0.1, x-request-id: req-1, "
                               "x-ratelimit-remaining-requests: 0; connect ")
    assert lines[2] == "evocli: HTTP 429, retrying in 0.1 s (attempt 2 of 3)"
    assert lines[3] == f"evocli: > POST {url} (attempt 2 of 3)"
    assert lines[4].startswith("evocli: < HTTP 200 OK, x-request-id: req-2; ")
    assert " first byte " in lines[4]
    assert lines[5].startswith("evocli: < ") and ", total " in lines[5]
    assert len(lines) == 6
    assert KEY not in r.stderr and "Authorization" not in r.stderr


def test_a_404_from_a_base_url_without_v1_says_so(cli: Any, server: FakeServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", server.url)  # no /v1
    server.script(Reply(status=404, body={"error": {"message": "Not Found"}}))
    r = cli(["ask", "--no-stdin", "x"])
    assert (r.exit_code, r.stderr) == (
        65, 'evocli: error: HTTP 404 Not Found: "Not Found"\n'
            f"hint: check the base URL: Evolink's ends in /v1 (https://direct.evolink.ai/v1); "
            f"called {server.url}/chat/completions\n")
