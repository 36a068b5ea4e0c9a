"""HTTP with requests: send a Request, translate requests' failures into evocli errors.

Imported only when a call is made, so `--help` and completion never load requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
import requests.auth

from evocli.client import Completion, Request, error_for_status, parse_completion
from evocli.config import Settings
from evocli.errors import ConfigError, EvocliError, ProtocolError, TemporaryError


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


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


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


def perform(settings: Settings, request: Request) -> Reply:
    """Send one request and return its successful response; raise an EvocliError otherwise."""
    attempts = 1
    try:
        with requests.Session() as session:
            response = session.request(
                request.method,
                request.url,
                data=request.encoded_body(),
                headers=dict(request.headers),
                auth=BearerAuth(settings.api_key) if settings.api_key else None,
                timeout=(settings.connect_timeout, settings.timeout),
                allow_redirects=False,
            )
    except requests.exceptions.SSLError as exc:
        raise ConfigError(
            f"TLS failure talking to {_host(request.url)}: {_reason(exc)}",
            hint="check the base URL, or point REQUESTS_CA_BUNDLE at your CA bundle",
        ) from None
    except requests.exceptions.ConnectTimeout:
        raise TemporaryError(
            f"could not connect to {_host(request.url)} within {settings.connect_timeout:g} s"
        ) from None
    except requests.exceptions.ReadTimeout:
        raise TemporaryError(
            f"no answer from {_host(request.url)} within {settings.timeout:g} s",
            hint="raise --timeout for slow models",
        ) from None
    except requests.exceptions.ChunkedEncodingError:
        raise ProtocolError(f"the answer from {_host(request.url)} was cut off") from None
    except requests.exceptions.InvalidURL as exc:
        raise ConfigError(f"invalid URL {request.url!r}: {exc}") from None
    except requests.exceptions.ConnectionError as exc:
        if "Read timed out" in str(exc):
            raise TemporaryError(
                f"no answer from {_host(request.url)} within {settings.timeout:g} s",
                hint="raise --timeout for slow models",
            ) from None
        raise TemporaryError(f"cannot connect to {_host(request.url)}: {_reason(exc)}") from None
    status = response.status_code
    if not 200 <= status < 300:
        err: EvocliError = error_for_status(status, response.content)
        raise err
    return Reply(status, response.content, attempts)


def complete(settings: Settings, request: Request) -> tuple[Completion, Reply]:
    """A non-streamed chat completion."""
    reply = perform(settings, request)
    try:
        return parse_completion(reply.body), reply
    except EvocliError as err:
        err.http_status, err.attempts = reply.status, reply.attempts
        raise
