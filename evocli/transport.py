"""HTTP with requests: retries that respect the server, the fallback host, streamed reads.

Imported only when a call is made, so `--help` and completion never load requests.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import requests
import requests.auth
import urllib3.exceptions

from evocli import client, retry
from evocli.client import Completion, Request, StreamAssembler
from evocli.config import Settings
from evocli.errors import ConfigError, EvocliError, ProtocolError, TemporaryError
from evocli.redact import add_url_secrets, redact, redact_url
from evocli.sse import SSEDecoder

if TYPE_CHECKING:
    from evocli.trace import Trace

Notify = Callable[[str], None]
READ_SIZE = 65536
# The largest answer evocli reads, decoded (an endless body, a gzip bomb): past it, exit 76.
DEFAULT_MAX_RESPONSE_BYTES = 64 << 20
# An error response only needs its message: the rest of a huge one is not read.
MAX_ERROR_BODY = 1 << 20


class BearerAuth(requests.auth.AuthBase):
    """Adds the key as a Bearer token. An auth object also keeps ~/.netrc from replacing it."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._key}"
        return r


@dataclass
class Reply:
    """A response that arrived with a success status."""

    status: int
    body: bytes
    attempts: int
    url: str


def _host(url: str) -> str:
    """The host (and port) a message names: never the credentials a URL may carry."""
    return urlsplit(url).netloc.rpartition("@")[2] or redact_url(url)


def _not_http(exc: BaseException) -> str | None:
    """What was wrong with a reply that is not HTTP at all (a garbage status line, an SSH banner,
    an endless header), or None: a server that closed without a word is another failure."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, http.client.RemoteDisconnected):
            return None
        if isinstance(item, http.client.BadStatusLine):
            line = " ".join(str(item.args[0] if item.args else "").split())
            return f"it starts {redact(line if len(line) <= 60 else line[:59] + '…')!r}"
        if isinstance(item, http.client.HTTPException):
            return redact(str(item))
        stack.extend(arg for arg in item.args if isinstance(arg, BaseException))
        stack.extend(linked for linked in (item.__cause__, item.__context__) if linked is not None)
    return None


def _reason(exc: BaseException) -> str:
    """A short cause from requests' nested connection errors ("Connection refused")."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return str(found[-1]).strip()
    for marker in ("RemoteDisconnected", "Connection aborted", "Connection reset"):
        if marker in text:
            return "the server closed the connection without answering"
    return "connection failed"


def _no_notice(message: str) -> None:
    pass


def _attempt(
    link: Link, s: Settings, request: Request, url: str
) -> tuple[requests.Response | None, EvocliError | None, bool, float | None]:
    """Send one request: (response, error, retryable, server_wait), exactly one of the first two
    set; with -v, each step is traced."""
    response, err, retryable, wait = _send(link.session, s, request, url)
    if link.trace is not None:
        if response is not None:
            link.trace.response(response)
        elif err is not None:
            link.trace.failed(err.message, err.headers)
    return response, err, retryable, wait


def _send(
    session: requests.Session, s: Settings, request: Request, url: str
) -> tuple[requests.Response | None, EvocliError | None, bool, float | None]:
    host = _host(url)
    try:
        response = session.request(
            request.method,
            url,
            data=request.encoded_body(),
            headers=dict(request.headers),
            auth=BearerAuth(s.api_key) if s.api_key else None,
            timeout=(s.connect_timeout, s.timeout),
            allow_redirects=False,
            stream=True,
        )
    except requests.exceptions.SSLError as exc:
        return None, ConfigError(
            f"TLS failure talking to {host}: {_reason(exc)}",
            hint="check the base URL, or point REQUESTS_CA_BUNDLE at your CA bundle",
        ), False, None
    except requests.exceptions.ConnectTimeout:
        return None, TemporaryError(
            f"could not connect to {host} within {s.connect_timeout:g} s"
        ), True, None
    except requests.exceptions.ReadTimeout:
        return None, _read_timeout(host, s.timeout), True, None
    except requests.exceptions.InvalidURL as exc:
        return None, ConfigError(f"invalid URL {redact_url(url)!r}: {redact(str(exc))}"), False, None
    except requests.exceptions.ConnectionError as exc:
        if "Read timed out" in str(exc):
            return None, _read_timeout(host, s.timeout), True, None
        detail = _not_http(exc)
        if detail is not None:
            # Not a server having a bad moment: another service, or something broken in between.
            return None, ProtocolError(f"the reply from {host} is not HTTP: {detail}"), False, None
        return None, TemporaryError(f"cannot connect to {host}: {_reason(exc)}"), True, None
    if not 100 <= response.status_code <= 599:
        response.close()
        return None, ProtocolError(
            f"the reply from {host} is not HTTP: status {response.status_code}"
        ), False, None
    if 200 <= response.status_code < 300:
        return response, None, False, None
    try:
        body = _read_body(response, MAX_ERROR_BODY, truncate=True)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
        body = b""
    finally:
        response.close()
    err = client.error_for_status(response.status_code, body, url)
    err.headers = response.headers
    retryable = retry.should_retry(response.status_code, response.headers)
    wait = retry.server_wait(response.headers, time.time()) if retryable else None
    return None, err, retryable, wait


def _read_timeout(host: str, timeout: float) -> TemporaryError:
    return TemporaryError(
        f"no answer from {host} within {timeout:g} s", hint="raise --timeout for slow models"
    )


def _label(err: EvocliError) -> str:
    """How a retry notice names the failure: `HTTP 429`, or the connection problem."""
    if err.http_status is not None:
        return f"HTTP {err.http_status}"
    return err.message


def _sleep(seconds: float) -> None:
    """The wait between attempts (a seam for tests)."""
    time.sleep(seconds)


class Gate:
    """A pause shared by concurrent calls: when the server asks one of them to wait, all wait."""

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                remaining = self._until - time.monotonic()
            if remaining <= 0:
                return
            _sleep(remaining)


@dataclass
class Link:
    """How calls go out: one HTTP session (kept alive across calls), retry notices, a shared gate."""

    notify: Notify = _no_notice
    gate: Gate | None = None
    session: requests.Session = field(default_factory=requests.Session)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # decoded; past it, exit 76
    trace: Trace | None = None  # -v
    # --max-time: when the whole call must be over (time.monotonic()); no wait may reach past it.
    deadline: float | None = None


def _round(link: Link, settings: Settings, request: Request, url: str) -> tuple[requests.Response, int]:
    """Attempts on one URL until success, a final error, or the retry budget is spent."""
    deadline = time.monotonic() + settings.retry_max_time
    total = settings.retries + 1
    attempt = 0
    while True:
        attempt += 1
        if link.gate is not None:
            link.gate.wait()
        if link.trace is not None:
            link.trace.request(request.method, url, attempt, total)
        response, err, retryable, wait = _attempt(link, settings, request, url)
        if response is not None:
            return response, attempt
        assert err is not None
        err.attempts = attempt
        if not retryable or attempt >= total:
            raise err
        remaining = deadline - time.monotonic()
        if wait is not None and wait > remaining:
            err.message += (
                f" (the server asks to wait {retry.describe_wait(wait)}, more than the"
                f" {max(remaining, 0):.1f} s left of --retry-max-time)"
            )
            raise err
        delay = wait if wait is not None else retry.backoff_delay(attempt - 1, random.random())
        if delay > remaining:
            raise err
        if link.deadline is not None and time.monotonic() + delay >= link.deadline:
            err.message += " (no time is left of --max-time for another attempt)"
            raise err
        if wait is not None and link.gate is not None:
            link.gate.hold(wait)
        link.notify(f"{_label(err)}, retrying in {delay:.1f} s (attempt {attempt + 1} of {total})")
        _sleep(delay)


def _open(link: Link, settings: Settings, request: Request) -> tuple[requests.Response, int, str]:
    """Send with retries, then one more round on the fallback host when the primary is down."""
    for url in (request.url, settings.fallback_base_url):
        add_url_secrets(url)
    try:
        response, attempts = _round(link, settings, request, request.url)
        return response, attempts, request.url
    except EvocliError as err:
        fallback = _fallback_url(settings, request, err)
        if fallback is None:
            raise
        link.notify(f"{_host(request.url)} failed ({_label(err)}); trying {_host(fallback)}")
        try:
            response, more = _round(link, settings, request, fallback)
        except EvocliError as err2:
            err2.attempts += err.attempts
            raise
        return response, err.attempts + more, fallback


def _fallback_url(settings: Settings, request: Request, err: EvocliError) -> str | None:
    """The same request on the fallback base URL, if the failure is one the fallback may cure."""
    if settings.fallback_base_url is None or not request.url.startswith(settings.base_url + "/"):
        return None
    if not (err.http_status in (502, 503) or (err.http_status is None and isinstance(err, TemporaryError))):
        return None
    return settings.fallback_base_url + request.url[len(settings.base_url) :]


def perform(settings: Settings, request: Request, link: Link | None = None) -> Reply:
    """Send a request (with retries) and read its whole successful response."""
    link = link or Link()
    response, attempts, url = _open(link, settings, request)
    with response:
        try:
            body = _read_body(response, link.max_response_bytes)
        except _TooLarge:
            raise _too_large(url, link.max_response_bytes, response.status_code, attempts) from None
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            broken = _broken(exc, url, settings, "answer")
            broken.http_status, broken.attempts = response.status_code, attempts
            raise broken from None
    if link.trace is not None:
        link.trace.done(len(body))
    return Reply(response.status_code, body, attempts, url)


class _TooLarge(Exception):
    """The body grew past its limit."""


def _read_body(response: requests.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The decoded body, read piece by piece so that no more than `limit` bytes are ever held.

    Past the limit: _TooLarge, or with `truncate` the first `limit` bytes.
    """
    parts: list[bytes] = []
    size = 0
    # requests' own reading: read errors translated, and a body read to its end is marked
    # consumed, so the connection goes back to the pool; stopping early closes it instead.
    for data in response.iter_content(READ_SIZE):
        size += len(data)
        if size > limit:
            if truncate:
                parts.append(data[: len(data) - (size - limit)])
                break
            raise _TooLarge
        parts.append(data)
    return b"".join(parts)


def _too_large(url: str, limit: int, status: int, attempts: int) -> ProtocolError:
    err = ProtocolError(
        f"the answer from {_host(url)} is larger than {_size(limit)}",
        hint="raise max_response_bytes in the config file if answers this large are expected",
        http_status=status,
    )
    err.attempts = attempts
    return err


def _size(count: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift} {unit}"
    return f"{count} bytes"


def _broken(exc: BaseException, url: str, settings: Settings, what: str) -> ProtocolError:
    if "timed out" in str(exc).lower() or isinstance(
        exc, requests.exceptions.Timeout | urllib3.exceptions.ReadTimeoutError
    ):
        return ProtocolError(
            f"the {what} from {_host(url)} stalled: nothing for {settings.timeout:g} s",
            hint="raise --timeout for slow models",
        )
    return ProtocolError(f"the {what} from {_host(url)} was cut off before it was complete")


def complete(settings: Settings, request: Request, link: Link | None = None) -> tuple[Completion, Reply]:
    """A non-streamed chat completion."""
    reply = perform(settings, request, link)
    try:
        return client.parse_completion(reply.body), reply
    except EvocliError as err:
        err.http_status, err.attempts = reply.status, reply.attempts
        raise


def stream(
    settings: Settings,
    request: Request,
    on_delta: Callable[[str], None],
    link: Link | None = None,
) -> tuple[Completion, Reply]:
    """A streamed chat completion: each piece of text goes to `on_delta` as soon as it arrives.

    Failures before the response are retried like any call; once the stream has begun nothing
    is retried, and a stream that breaks or ends early is a protocol error.
    """
    link = link or Link()
    response, attempts, url = _open(link, settings, request)
    reply = Reply(response.status_code, b"", attempts, url)
    with response:
        try:
            content_type = response.headers.get("Content-Type", "")
            if "text/event-stream" not in content_type:
                # The server ignored "stream": true and answered in one piece.
                reply.body = _read_body(response, link.max_response_bytes)
                completion = client.parse_completion(reply.body)
                if completion.content:
                    on_delta(completion.content)
                return completion, reply
            completion = _read_stream(response, on_delta, url, link.max_response_bytes)
            if link.trace is not None:
                link.trace.done(response.raw.tell())
            return completion, reply
        except _TooLarge:
            raise _too_large(url, link.max_response_bytes, reply.status, attempts) from None
        except EvocliError as err:
            err.http_status, err.attempts = reply.status, attempts
            raise
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            broken = _broken(exc, url, settings, "stream")
            broken.http_status, broken.attempts = reply.status, attempts
            raise broken from None


def _read_stream(
    response: requests.Response, on_delta: Callable[[str], None], url: str, limit: int
) -> Completion:
    decoder = SSEDecoder()
    assembler = StreamAssembler()
    raw = response.raw
    size = 0
    while not assembler.done:
        # read1 returns as soon as some bytes arrive, whatever the framing (chunked or not).
        data = raw.read1(READ_SIZE, decode_content=True)  # a server may compress anyway
        if not data:
            decoder.close()
            break
        size += len(data)
        if size > limit:
            raise _TooLarge
        for event in decoder.feed(data):
            text = assembler.add(event.data, event.event)
            if text:
                on_delta(text)
    if not assembler.complete:
        raise ProtocolError(
            f"the stream from {_host(url)} ended before the answer was complete"
        )
    return assembler.result()
