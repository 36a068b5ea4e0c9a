"""Streamed answers against the local server: text, jsonl, broken streams, odd but valid framing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.server import FakeServer, Reply, chunk, completion_body, sse_event, sse_stream

Cli = Any
PIECES = ["Hel", "lo, ", "world", "!"]


def ledger_lines(isolated: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted((isolated / "ledger").glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_stream_text(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(chunks=sse_stream(PIECES)))
    r = cli(["ask", "--stream", "hi"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello, world!\n", "")
    assert api_env.bodies == [{
        "model": "gpt-5.2", "messages": [{"role": "user", "content": "hi"}],
        "stream": True, "stream_options": {"include_usage": True}}]
    assert api_env.requests[0].headers["Accept"] == "text/event-stream"
    [rec] = ledger_lines(isolated)
    assert (rec["stream"], rec["ok"], rec["total_tokens"], rec["finish_reason"]) == (True, True, 19, "stop")


def test_stream_text_trailing_newlines_collapse(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=sse_stream(["a\n", "\n", "b\n\n", "\n"])))
    assert cli(["ask", "--stream", "x"]).stdout == "a\n\nb\n"


def test_jsonl(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=sse_stream(["Hi", " there"])))
    r = cli(["ask", "-o", "jsonl", "x"])
    assert r.exit_code == 0
    assert [json.loads(line) for line in r.stdout.splitlines()] == [
        {"type": "delta", "content": "Hi"},
        {"type": "delta", "content": " there"},
        {"type": "done", "id": "chatcmpl-test-1", "model": "gpt-5.2", "finish_reason": "stop",
         "usage": completion_body()["usage"]},
    ]
    assert api_env.bodies[0]["stream"] is True


def test_stream_usage_and_show_usage(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "--stream", "-o", "usage", "x"])
    assert json.loads(r.stdout) == completion_body()["usage"]
    r = cli(["ask", "--stream", "-u", "x"])
    assert r.stdout == "Hello from the test server.\n"
    assert r.stderr == "usage: prompt_tokens=12 completion_tokens=7 reasoning_tokens=3 cached_tokens=2 image_tokens=0 total_tokens=19\n"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["-o", "jsonl", "--no-stream"], "evocli: error: -o jsonl always streams; drop --no-stream\n"),
        (["-o", "json", "--stream"], "evocli: error: -o json prints the response body as received, which a "
                                     "stream does not have\nhint: use -o jsonl for streamed JSON\n"),
    ],
)
def test_contradictory_stream_flags(cli: Cli, api_env: FakeServer, args: list[str], stderr: str) -> None:
    r = cli(["ask", *args, "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)


def test_stream_cut_mid_answer_is_76_after_partial_text(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    events = sse_stream(PIECES)[:2]
    api_env.script(Reply(chunks=events, drop=True))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout) == (76, "Hello, \n")
    assert r.stderr == f"evocli: error: the stream from 127.0.0.1:{api_env.port} was cut off before it was complete\n"
    [rec] = ledger_lines(isolated)
    assert (rec["ok"], rec["exit_code"], rec["http_status"], rec["stream"]) == (False, 76, 200, True)
    assert len(api_env.requests) == 1  # never retried once text was written


def test_stream_ending_without_finish_or_done_is_76(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=sse_stream(PIECES, finish_reason=None, done=False)))
    r = cli(["ask", "--stream", "-o", "jsonl", "x"])
    assert r.exit_code == 76
    assert r.stdout.count('"type":"delta"') == 4 and '"done"' not in r.stdout
    assert r.stderr == f"evocli: error: the stream from 127.0.0.1:{api_env.port} ended before the answer was complete\n"


def test_clean_close_after_finish_reason_is_complete(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=sse_stream(PIECES, done=False)))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello, world!\n", "")


def test_error_event_mid_stream_is_76(cli: Cli, api_env: FakeServer) -> None:
    events = [sse_event(chunk("Partial ")), sse_event({"error": {"message": "upstream overloaded", "type": "upstream_error"}})]
    api_env.script(Reply(chunks=events))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        76, "Partial \n", 'evocli: error: the stream reported an error: "upstream overloaded"\n')


def test_named_error_event(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=[b'event: error\ndata: {"message": "quota gone"}\n\n']))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (76, "", 'evocli: error: the stream reported an error: "quota gone"\n')


def test_crlf_comments_and_multiline_data(cli: Cli, api_env: FakeServer) -> None:
    first = json.dumps(chunk("Multi"), indent=1).replace("\n", "\r\ndata: ")
    events = [
        b": keep-alive\r\n\r\n",
        b"data: " + first.encode() + b"\r\n\r\n",
        b":ping\r\n",
        sse_event(chunk("-line"), sep=b"\r\n"),
        sse_event(chunk(finish_reason="stop"), sep=b"\r"),
        b"data: [DONE]\r\n\r\n",
    ]
    api_env.script(Reply(chunks=events))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Multi-line\n", "")


def test_multibyte_character_split_across_writes(cli: Cli, api_env: FakeServer) -> None:
    raw = b"".join(sse_stream(["naïve ☃ 🎉"]))
    cut = raw.index("🎉".encode()) + 2
    api_env.script(Reply(chunks=[raw[:cut], raw[cut:]], chunk_delay=0.05))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout) == (0, "naïve ☃ 🎉\n")


def test_every_byte_in_its_own_write(cli: Cli, api_env: FakeServer) -> None:
    raw = b"".join(sse_stream(["byte ", "by ", "byte"]))
    api_env.script(Reply(chunks=[raw[i : i + 1] for i in range(len(raw))]))
    assert cli(["ask", "--stream", "x"]).stdout == "byte by byte\n"


def test_idle_stream_past_timeout_is_76(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=sse_stream(["first", " second"]), chunk_delay=1.0))
    r = cli(["ask", "--stream", "--timeout", "0.3", "x"])
    assert (r.exit_code, r.stdout) == (76, "first\n")
    assert r.stderr == (f"evocli: error: the stream from 127.0.0.1:{api_env.port} stalled: nothing for 0.3 s\n"
                        "hint: raise --timeout for slow models\n")


def test_server_answering_json_to_a_stream_request(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=completion_body("whole answer")))
    r = cli(["ask", "-o", "jsonl", "x"])
    assert [json.loads(line)["type"] for line in r.stdout.splitlines()] == ["delta", "done"]
    assert json.loads(r.stdout.splitlines()[0])["content"] == "whole answer"


def test_retry_before_stream_starts(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(status=429, headers={"Retry-After": "0.2"}), Reply(chunks=sse_stream(["ok"])))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout) == (0, "ok\n")
    assert r.stderr == "evocli: HTTP 429, retrying in 0.2 s (attempt 2 of 3)\n"
    first, second = api_env.requests
    assert second.time - first.time >= 0.2


def test_quiet_hides_retry_notices(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(status=503, headers={"retry-after-ms": "10"}))
    r = cli(["ask", "-q", "x"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert len(api_env.requests) == 2


def test_dropped_connection_before_any_byte_is_retried(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(drop=True))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout) == (0, "Hello from the test server.\n")
    assert r.stderr.startswith(
        f"evocli: cannot connect to 127.0.0.1:{api_env.port}: the server closed the connection without answering, retrying in ")
    assert len(api_env.requests) == 2


def test_hang_past_read_timeout_before_headers_is_retried_then_75(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(delay=1.0), Reply(delay=1.0))
    r = cli(["ask", "--timeout", "0.2", "--retries", "1", "x"])
    assert (r.exit_code, r.stdout) == (75, "")
    assert r.stderr.endswith(f"evocli: error: no answer from 127.0.0.1:{api_env.port} within 0.2 s\n"
                             "hint: raise --timeout for slow models\n")
    assert len(api_env.requests) == 2


def test_5xx_sequence_spacing(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(status=500), Reply(status=502), Reply(status=503))
    r = cli(["ask", "--retries", "2", "x"])
    assert r.exit_code == 75
    assert len(api_env.requests) == 3
    t = [q.time for q in api_env.requests]
    assert 0.37 <= t[1] - t[0] <= 1.0   # 0.5 s shortened by jitter up to a quarter
    assert 0.74 <= t[2] - t[1] <= 1.5   # 1.0 s, likewise
    assert r.stderr.count("retrying in") == 2
    assert r.stderr.splitlines()[-2] == 'evocli: error: HTTP 503 Service Unavailable'


def test_retry_after_longer_than_window_fails_at_once(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(status=429, headers={"Retry-After": "30"}, body={"error": {"message": "Rate limit exceeded"}}))
    r = cli(["ask", "--retry-max-time", "5", "x"])
    assert r.exit_code == 75
    assert len(api_env.requests) == 1
    assert r.stderr.startswith('evocli: error: HTTP 429 Too Many Requests: "Rate limit exceeded" '
                               "(the server asks to wait 30.0 s, more than the ")


def test_streams_ask_for_no_compression_and_survive_it(cli: Cli, api_env: FakeServer) -> None:
    import gzip

    body = gzip.compress(b"".join(sse_stream(["squeezed ", "text"])))
    api_env.script(Reply(chunks=[body[:10], body[10:]], headers={"Content-Encoding": "gzip"}))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "squeezed text\n", "")
    assert api_env.requests[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("keepalive", [b"data:\n\n", b"data: \n\n", b"data:\ndata:\n\n", b"data:  \r\n\r\n",
                                       b"event: ping\ndata:\n\n"])
def test_event_with_empty_data_is_a_keepalive_not_a_broken_stream(
    cli: Cli, api_env: FakeServer, keepalive: bytes
) -> None:
    events = sse_stream(["Still ", "here."])
    api_env.script(Reply(chunks=[keepalive, events[0], keepalive, *events[1:3], keepalive, *events[3:]]))
    r = cli(["ask", "-o", "jsonl", "x"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines()[:2] == ['{"type":"delta","content":"Still "}', '{"type":"delta","content":"here."}']


@pytest.mark.parametrize("headers", [{"Retry-After": "-5"}, {"retry-after-ms": "-2000"},
                                     {"Retry-After": "-0.5", "retry-after-ms": "-1"}])
def test_negative_retry_after_is_ignored_for_the_usual_back_off(
    cli: Cli, api_env: FakeServer, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str]
) -> None:
    from evocli import transport

    waits: list[float] = []
    monkeypatch.setattr(transport, "_sleep", waits.append)
    monkeypatch.setattr(transport.random, "random", lambda: 0.0)
    api_env.script(*[Reply(status=429, headers=headers, body={"error": {"message": "slow down"}})] * 2)
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout) == (0, "Hello from the test server.\n")
    assert waits == [0.5, 1.0]
    assert r.stderr == ("evocli: HTTP 429, retrying in 0.5 s (attempt 2 of 3)\n"
                        "evocli: HTTP 429, retrying in 1.0 s (attempt 3 of 3)\n")


@pytest.mark.parametrize("headers", [{"retry-after-ms": "1e308"}, {"Retry-After": "9" * 300},
                                     {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}])
def test_absurd_retry_after_fails_at_once_without_a_huge_number(
    cli: Cli, api_env: FakeServer, headers: dict[str, str]
) -> None:
    api_env.script(Reply(status=429, headers=headers, body={"error": {"message": "Rate limit exceeded"}}))
    r = cli(["ask", "--retry-max-time", "5", "x"])
    assert (r.exit_code, r.stdout, len(api_env.requests)) == (75, "", 1)
    assert r.stderr == ('evocli: error: HTTP 429 Too Many Requests: "Rate limit exceeded" (the server asks to '
                        "wait more than a week, more than the 5.0 s left of --retry-max-time)\n"
                        "hint: rate limited: try again later, or raise --retries / --retry-max-time; "
                        f"called {api_env.base_url}/chat/completions\n")
