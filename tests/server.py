"""A real HTTP server on 127.0.0.1 for tests and benchmarks: scripted replies, recorded requests.

Each request takes the next scripted `Reply` (or the default answer when the script is empty)
and is recorded, so tests can assert the exact JSON and headers that arrived.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_CONTENT = "Hello from the test server."
DEFAULT_USAGE: dict[str, Any] = {
    "prompt_tokens": 12,
    "completion_tokens": 7,
    "total_tokens": 19,
    "prompt_tokens_details": {"cached_tokens": 2},
    "completion_tokens_details": {"reasoning_tokens": 3},
}
CREDITS_BODY: dict[str, Any] = {
    "success": True,
    "message": "",
    "data": {
        "token": {"remaining_credits": 99416.4429, "used_credits": 583.5571, "unlimited_credits": False},
        "user": {"remaining_credits": 1095.3996, "used_credits": 135.9048},
    },
}


def completion_body(
    content: str | None = DEFAULT_CONTENT,
    *,
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    model: str = "gpt-5.2",
    id: str = "chatcmpl-test-1",
) -> dict[str, Any]:
    """A chat completion response body as the API documents it."""
    return {
        "id": id,
        "model": model,
        "object": "chat.completion",
        "created": 1760032810,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": DEFAULT_USAGE if usage is None else usage,
    }


def sse_event(data: Any, *, sep: bytes = b"\n") -> bytes:
    """One `data:` event; dicts are JSON-encoded."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return b"data: " + text.encode() + sep + sep


def chunk(
    content: str | None = None,
    *,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    model: str = "gpt-5.2",
    id: str = "chatcmpl-test-1",
) -> dict[str, Any]:
    """A streamed chat completion chunk."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": 1760032810,
        "model": model,
        "choices": [] if usage is not None and content is None and finish_reason is None
        else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def sse_stream(
    pieces: Sequence[str],
    *,
    finish_reason: str | None = "stop",
    usage: dict[str, Any] | None = None,
    done: bool = True,
    model: str = "gpt-5.2",
) -> list[bytes]:
    """The SSE events of a streamed answer: deltas, a finish chunk, a usage chunk, [DONE]."""
    events = [sse_event(chunk(p, model=model)) for p in pieces]
    if finish_reason is not None:
        events.append(sse_event(chunk(finish_reason=finish_reason, model=model)))
    events.append(sse_event(chunk(usage=DEFAULT_USAGE if usage is None else usage, model=model)))
    if done:
        events.append(sse_event("[DONE]"))
    return events


@dataclass
class Reply:
    """How the server answers one request.

    - `body` (bytes, str, or a JSON-able value) is sent with a Content-Length;
    - `chunks` are sent one by one with chunked transfer encoding, `chunk_delay` apart;
    - `drop` closes the connection without finishing the response (after the chunks, if any,
      or right after the request when there are neither chunks nor body);
    - `delay` waits before the status line (a server thinking, or hanging past a timeout);
    - `raw` is written as it is instead of an HTTP response (something that is not HTTP), then
      the connection is closed.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    delay: float = 0.0
    drop: bool = False
    content_type: str | None = None
    raw: bytes | None = None
    sent: list[float] = field(default_factory=list)  # when each chunk was flushed (monotonic)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer:
    """Start with `with FakeServer() as srv:`; `srv.base_url` ends in /v1."""

    def __init__(self, default: Callable[[Recorded], Reply] | None = None) -> None:
        self.requests: list[Recorded] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.default = default or default_reply
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                with server._lock:
                    server.requests.append(rec)
                    reply = server._script.popleft() if server._script else None
                server._answer(self, reply or server.default(rec))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def bodies(self) -> list[Any]:
        return [r.json for r in self.requests]

    def _answer(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        if reply.raw is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                h.wfile.write(reply.raw)
            _hard_close(h)
            return
        if reply.drop and reply.chunks is None and reply.body is None:
            _hard_close(h)
            return
        h.send_response(reply.status)
        if reply.chunks is not None:
            h.send_header("Content-Type", reply.content_type or "text/event-stream")
            h.send_header("Transfer-Encoding", "chunked")
            for name, value in reply.headers.items():
                h.send_header(name, value)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.flush()
            try:
                for i, piece in enumerate(reply.chunks):
                    if i and reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    h.wfile.flush()
                    reply.sent.append(time.monotonic())
                if reply.drop:
                    _hard_close(h)
                    return
                h.wfile.write(b"0\r\n\r\n")
                h.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            h.close_connection = True
            return
        payload = _encode(reply.body)
        content_type = reply.content_type or (
            "application/json" if not isinstance(reply.body, bytes | str) else "text/plain"
        )
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            h.send_header(name, value)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            if reply.drop:
                h.wfile.write(payload[: len(payload) // 2])
                h.wfile.flush()
                _hard_close(h)
                return
            h.wfile.write(payload)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True


def _encode(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _hard_close(h: BaseHTTPRequestHandler) -> None:
    """Close the socket at once, as a crashed server or a cut network would."""
    h.close_connection = True
    try:
        h.wfile.flush()
        h.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def default_reply(rec: Recorded) -> Reply:
    """The answer when nothing is scripted: a completion (streamed if asked), or the credits."""
    if rec.method == "GET" and rec.path.endswith("/credits"):
        return Reply(body=CREDITS_BODY)
    try:
        body = json.loads(rec.body) if rec.body else {}
    except ValueError:
        body = {}
    model = body.get("model", "gpt-5.2") if isinstance(body, dict) else "gpt-5.2"
    if isinstance(body, dict) and body.get("stream"):
        return Reply(chunks=sse_stream(["Hello from ", "the test server."], model=model))
    return Reply(body=completion_body(model=model))


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for refused connections)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_reply(pieces: Iterable[str], **kwargs: Any) -> Reply:
    """A scripted streamed answer."""
    return Reply(chunks=sse_stream(list(pieces), **kwargs))
