"""Large request bodies: encoded size and bytes without whole-body copies; dry-run shortening."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

BODY_LIMIT = 50_000_000  # the largest request body evocli sends (50 MB), attachments included
SHORTEN_OVER = 64  # dry runs keep base64 payloads up to this many characters
_SLICE = 1 << 20  # long strings are JSON-encoded a slice of this many characters at a time
_B64 = r"[A-Za-z0-9+/]*={0,2}"  # compiled by `re` on first use


def encoded_size(body: Any) -> int:
    """The length in bytes of `encode_body(body)`, counted without building it."""
    return sum(len(piece) for piece in _pieces(body))


def encode_body(body: Any) -> bytes:
    """Exactly the bytes of `json.dumps(body, ensure_ascii=False, allow_nan=False)` in UTF-8,
    but a long string (a data URL) is escaped and encoded a slice at a time into one growing
    buffer, so the peak is the body plus the result (json.dumps then .encode holds the string,
    its escaped copy and the joined text, then the text and the bytes: 3 copies at once).
    A value json.dumps refuses raises as it does (ValueError for NaN, TypeError otherwise)."""
    if not _has_long_text(body):  # the usual body: json.dumps is several times faster
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    out = io.BytesIO()
    for piece in _pieces(body):
        out.write(piece)
    # getvalue hands over the buffer itself when nothing else shares it: no copy.
    return out.getvalue()


def _has_long_text(value: Any) -> bool:
    """Whether a string somewhere in the value is long enough to be worth encoding by slices."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > _SLICE:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _pieces(value: Any) -> Iterator[bytes]:
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        yield b"{"
        for index, (key, item) in enumerate(value.items()):
            yield (", " if index else "").encode() + json.dumps(key, ensure_ascii=False).encode() + b": "
            yield from _pieces(item)
        yield b"}"
    elif isinstance(value, list | tuple):
        yield b"["
        for index, item in enumerate(value):
            if index:
                yield b", "
            yield from _pieces(item)
        yield b"]"
    elif isinstance(value, str) and len(value) > _SLICE:
        yield b'"'
        for start in range(0, len(value), _SLICE):
            # json escapes code point by code point, so a slice boundary changes nothing.
            yield json.dumps(value[start : start + _SLICE], ensure_ascii=False)[1:-1].encode()
        yield b'"'
    else:
        yield json.dumps(value, ensure_ascii=False, allow_nan=False).encode()


def shorten_payloads(value: Any) -> Any:
    """A copy of a JSON value (a request body) in which each string that is a data URL with a
    base64 payload over 64 characters keeps its `data:<mime>;base64,` prefix and has the payload
    replaced by `<base64: N bytes>`, N the size of the bytes it encodes. Anything else is kept
    exactly, including payloads that are not canonical base64."""
    if isinstance(value, dict):
        return {key: shorten_payloads(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten_payloads(item) for item in value]
    if isinstance(value, str) and value.startswith("data:"):
        return _shorten_url(value)
    return value


def _shorten_url(url: str) -> str:
    head, sep, payload = url.partition(";base64,")
    if not sep or "," in head or len(payload) <= SHORTEN_OVER or len(payload) % 4:
        return url
    if not re.fullmatch(_B64, payload):
        return url
    size = len(payload) // 4 * 3 - (len(payload) - len(payload.rstrip("=")))
    return f"{head}{sep}<base64: {size} bytes>"
