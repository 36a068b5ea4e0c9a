"""`-v`: a trace of each attempt on stderr (request line, status, request id, rate limits, timings).

Imported only with -v. Connect times come from urllib3 connection classes that time their own
`connect()`, installed through a requests adapter of evocli's own (nothing of either library is
patched). The key is never part of a trace: headers are not printed, only the few named below.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import requests.adapters
import urllib3
import urllib3.connection
import urllib3.poolmanager

from evocli.redact import redact_url

# Response headers worth seeing when a call is slow or refused.
_ID_HEADERS = ("x-request-id", "request-id", "x-trace-id")
_LIMIT_PREFIXES = ("x-ratelimit-", "ratelimit", "retry-after")

_connects = threading.local()  # the last connect's duration in this thread, for the trace


def _timed(connect: Callable[[Any], None], conn: Any) -> None:
    started = time.monotonic()
    connect(conn)
    _connects.seconds = time.monotonic() - started


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        _timed(urllib3.connection.HTTPConnection.connect, self)


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        _timed(urllib3.connection.HTTPSConnection.connect, self)


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _TimedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with pools whose connections time their connect (TCP and TLS)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        self.poolmanager = _PoolManager(num_pools=connections, maxsize=maxsize, block=block, **kwargs)


class _PoolManager(urllib3.poolmanager.PoolManager):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def session() -> requests.Session:
    """A session whose connections report how long they took to connect."""
    s = requests.Session()
    adapter = _TimedAdapter()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class Trace:
    """Writes the trace of one call's attempts through `write` (one line each)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.started = 0.0

    def request(self, method: str, url: str, attempt: int, total: int) -> None:
        _connects.seconds = None
        self.started = time.monotonic()
        self.write(f"> {method} {redact_url(url)} (attempt {attempt} of {total})")

    def response(self, response: requests.Response) -> None:
        first_byte = (time.monotonic() - self.started) * 1000
        parts = [f"< HTTP {response.status_code} {response.reason or ''}".rstrip()]
        parts += [f"{name}: {value}" for name, value in _named_headers(response.headers)]
        self.write(", ".join(parts) + f"; {self._connect()}, first byte {first_byte:.0f} ms")

    def failed(self, message: str, headers: Any = None) -> None:
        elapsed = (time.monotonic() - self.started) * 1000
        parts = [f"< {message}", *(f"{name}: {value}" for name, value in _named_headers(headers or {}))]
        self.write(", ".join(parts) + f"; {self._connect()}, after {elapsed:.0f} ms")

    def done(self, size: int) -> None:
        total = (time.monotonic() - self.started) * 1000
        self.write(f"< {size:,} bytes, total {total:.0f} ms")

    @staticmethod
    def _connect() -> str:
        seconds = getattr(_connects, "seconds", None)
        return "connection reused" if seconds is None else f"connect {seconds * 1000:.0f} ms"


def _named_headers(headers: Any) -> list[tuple[str, str]]:
    found = []
    for name, value in headers.items():
        low = name.lower()
        if low in _ID_HEADERS or low.startswith(_LIMIT_PREFIXES):
            found.append((low, " ".join(str(value).split())[:200]))
    return found
