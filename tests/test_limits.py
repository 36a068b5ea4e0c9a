"""Limits on what a server may send: the decoded size of an answer, and replies that are not HTTP."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from evocli import client, transport
from evocli.config import ConfigFile, Overrides, Settings, resolve
from evocli.errors import EvocliError
from tests.conftest import KEY, run_evocli
from tests.server import FakeServer, Reply, completion_body, sse_stream

MIB = 1 << 20


def settings(tmp_path: Path, server: FakeServer) -> Settings:
    env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url}
    return resolve(Overrides(retry_max_time=5.0), env, ConfigFile(tmp_path / "c"))


def padded_body(size: int) -> bytes:
    """A completion body of exactly `size` bytes."""
    base = json.dumps(completion_body("")).encode()
    return json.dumps(completion_body("x" * (size - len(base)))).encode()


def send(tmp_path: Path, server: FakeServer, limit: int, *, stream: bool = False) -> tuple[Any, list[str]]:
    s = settings(tmp_path, server)
    request = client.build_request(s, [{"role": "user", "content": "hi"}], stream=stream)
    link = transport.Link(max_response_bytes=limit)
    if stream:
        seen: list[str] = []
        return transport.stream(s, request, seen.append, link), seen
    return transport.complete(s, request, link), []


def test_answer_exactly_at_the_limit_is_read(tmp_path: Path, server: FakeServer) -> None:
    server.script(Reply(body=padded_body(5000)))
    (completion, reply), _ = send(tmp_path, server, 5000)
    assert (len(reply.body), completion.content) == (5000, "x" * (5000 - len(padded_body(0))))


@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_answer_past_the_limit_is_76_and_not_retried(tmp_path: Path, server: FakeServer, encoding: str | None) -> None:
    body = padded_body(5001)
    headers = {}
    if encoding:  # the limit is on the decoded size: 5001 bytes arrive as far fewer
        body, headers = gzip.compress(body), {"Content-Encoding": "gzip"}
    server.script(Reply(body=body, headers=headers))
    with pytest.raises(EvocliError) as info:
        send(tmp_path, server, 5000)
    err = info.value
    assert (err.code, err.message, err.http_status, err.attempts) == (
        76, f"the answer from 127.0.0.1:{server.port} is larger than 5000 bytes", 200, 1)
    assert err.hint == "raise max_response_bytes in the config file if answers this large are expected"
    assert len(server.requests) == 1


def test_stream_past_the_limit_is_76_after_what_arrived(tmp_path: Path, server: FakeServer) -> None:
    events = sse_stream(["a" * 100] * 30)
    server.script(Reply(chunks=events, chunk_delay=0.001))
    with pytest.raises(EvocliError) as info:
        send(tmp_path, server, 2048, stream=True)
    assert (info.value.code, info.value.message) == (
        76, f"the answer from 127.0.0.1:{server.port} is larger than 2 KiB")
    assert len(server.requests) == 1


def test_stream_answered_in_one_piece_is_capped_too(tmp_path: Path, server: FakeServer) -> None:
    server.script(Reply(body=padded_body(3000)))
    with pytest.raises(EvocliError) as info:
        send(tmp_path, server, 2999, stream=True)
    assert info.value.code == 76


def test_error_body_is_read_only_up_to_its_own_limit(tmp_path: Path, server: FakeServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_ERROR_BODY", 30)
    server.script(Reply(status=400, body='{"error": {"message": "bad"}, "pad": "' + "x" * 100 + '"}'))
    with pytest.raises(EvocliError) as info:
        send(tmp_path, server, 5000)
    # Only the first 30 bytes were read: not JSON any more, so they are quoted as they are.
    assert (info.value.code, info.value.message) == (
        65, 'HTTP 400 Bad Request: "{\\"error\\": {\\"message\\": \\"bad\\"},"')


def test_default_limit_is_64_mib() -> None:
    assert transport.Link().max_response_bytes == 64 * MIB


# The default limit, end to end: an endless body and a gzip bomb stop at 64 MiB.

@pytest.fixture
def evo(api_env: FakeServer) -> Any:
    def run(args: list[str], reply: Reply) -> Any:
        api_env.script(reply)
        return run_evocli(args)

    return run


def test_endless_answer_stops_at_64_mib_with_76(evo: Any, api_env: FakeServer) -> None:
    endless = Reply(chunks=[b"a" * MIB] * 65, content_type="application/json")
    r = evo(["ask", "--no-stream", "x"], endless)
    assert (r.returncode, r.stdout, len(api_env.requests)) == (76, "", 1)
    assert r.stderr == (f"evocli: error: the answer from 127.0.0.1:{api_env.port} is larger than 64 MiB\n"
                        "hint: raise max_response_bytes in the config file if answers this large are expected\n")


def test_endless_streamed_answer_stops_at_64_mib_with_76(evo: Any, api_env: FakeServer) -> None:
    endless = Reply(chunks=[b"data: ", *[b"a" * MIB] * 65])
    r = evo(["ask", "--stream", "x"], endless)
    assert (r.returncode, r.stdout, len(api_env.requests)) == (76, "", 1)
    assert r.stderr.startswith(f"evocli: error: the answer from 127.0.0.1:{api_env.port} is larger than 64 MiB\n")


def test_gzip_bomb_stops_at_64_mib_with_76(evo: Any, api_env: FakeServer) -> None:
    bomb = gzip.compress(b'{"choices": "' + b" " * (65 * MIB), compresslevel=1)
    assert len(bomb) < MIB
    r = evo(["ask", "-o", "json", "x"], Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    assert (r.returncode, r.stdout, len(api_env.requests)) == (76, "", 1)
    assert r.stderr.startswith(f"evocli: error: the answer from 127.0.0.1:{api_env.port} is larger than 64 MiB\n")


# Replies that are not HTTP.

@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n", "it starts 'SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13'"),
        (b"HELLO THERE\r\n\r\n", "it starts 'HELLO THERE'"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n", "it starts '\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01ü'"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
         "got more than 65536 bytes when reading header line"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", "got more than 100 headers"),
        (b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", "status 999"),
        (b"HTTP/1.1 42 Odd\r\nContent-Length: 0\r\n\r\n", "it starts 'HTTP/1.1 42 Odd'"),
    ],
)
def test_reply_that_is_not_http_is_76_and_not_retried(evo: Any, api_env: FakeServer, raw: bytes, detail: str) -> None:
    r = evo(["ask", "x"], Reply(raw=raw))
    assert (r.returncode, r.stdout, len(api_env.requests)) == (76, "", 1)
    assert r.stderr == f"evocli: error: the reply from 127.0.0.1:{api_env.port} is not HTTP: {detail}\n"


def test_server_closing_without_answering_is_still_retried_as_75(evo: Any, api_env: FakeServer) -> None:
    api_env.script(Reply(raw=b""))
    r = evo(["ask", "--retries", "1", "x"], Reply(raw=b""))
    assert (r.returncode, r.stdout, len(api_env.requests)) == (75, "", 2)
    assert r.stderr.endswith(f"evocli: error: cannot connect to 127.0.0.1:{api_env.port}: "
                             "the server closed the connection without answering\n")


def test_answers_read_under_the_limit_keep_the_connection_alive(tmp_path: Path) -> None:
    """Reading piece by piece must not cost batch its kept-alive connection."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    peers: list[int] = []
    body = json.dumps(completion_body()).encode()

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            peers.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": f"http://127.0.0.1:{httpd.server_address[1]}/v1"}
        s = resolve(Overrides(), env, ConfigFile(tmp_path / "c"))
        link = transport.Link(max_response_bytes=len(body))
        for _ in range(3):
            transport.complete(s, client.build_request(s, [{"role": "user", "content": "hi"}], stream=False), link)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(peers) == 3 and len(set(peers)) == 1
