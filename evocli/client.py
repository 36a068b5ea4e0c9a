"""The chat completions protocol as plain data: build requests, parse answers and errors (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from evocli import __version__
from evocli.config import Settings
from evocli.errors import (
    AuthError,
    CreditsError,
    EvocliError,
    InputError,
    ProtocolError,
    TemporaryError,
)
from evocli.jsonsafe import UnusableJSON, load_json
from evocli.jsonsafe import json_problem as json_problem  # callers know it as client.json_problem
from evocli.redact import mask, redact, redact_url
from evocli.retry import is_retryable_status

USER_AGENT = f"evocli/{__version__}"


@dataclass(frozen=True)
class Request:
    """One HTTP request, without its credentials (those are added by the transport)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any] | None = None
    stream: bool = False

    def encoded_body(self) -> bytes | None:
        if self.body is None:
            return None
        from evocli import payload

        try:
            # Python's json writes NaN and infinities as bare NaN/Infinity, which is not JSON.
            # payload's encoder gives the same bytes without holding a large body three times.
            return payload.encode_body(self.body)
        except (ValueError, RecursionError):
            problem = json_problem(self.body) or "it is not JSON"
            raise InputError(f"the request body cannot be sent: {problem}") from None


@dataclass
class Completion:
    """A finished answer, from a plain response or assembled from a stream."""

    content: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    id: str | None
    model: str | None
    raw: bytes | None = None  # the response body exactly as received (non-streamed only)
    data: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None  # message.refusal: the model declined, saying why
    tool_calls: bool = False  # the message carried tool or function calls (its content may be null)


def build_request(settings: Settings, messages: Sequence[Mapping[str, Any]], *, stream: bool) -> Request:
    """The chat completions request for these messages."""
    body: dict[str, Any] = {"model": settings.model, "messages": list(messages)}
    body.update(settings.params)
    problem = json_problem(body)
    if problem:
        raise InputError(f"the request body cannot be sent: {problem}")
    if stream:
        body["stream"] = True
        body.setdefault("stream_options", {"include_usage": True})
    else:
        body.pop("stream", None)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "User-Agent": USER_AGENT,
    }
    if stream:
        # A compressor in the path would hold pieces back until it has a block to send.
        headers["Accept-Encoding"] = "identity"
    return Request("POST", f"{settings.base_url}/chat/completions", headers, body, stream)


def build_credits_request(settings: Settings) -> Request:
    """The account credits query."""
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    return Request("GET", settings.credits_url, headers)


def describe_request(request: Request, api_key: str | None, key_source: str = "none") -> dict[str, Any]:
    """The request as `--dry-run` shows it, the key masked (or where it would come from)."""
    headers = dict(request.headers)
    if api_key is None and key_source == "api_key_command":
        headers["Authorization"] = "Bearer <the output of api_key_command, not run by --dry-run>"
    else:
        headers["Authorization"] = f"Bearer {mask(api_key)}"
    # The URL's own credentials (https://user:pw@host) are hidden like the key.
    url = redact_url(request.url)
    return {"method": request.method, "url": url, "headers": headers, "body": request.body}


def parse_completion(raw: bytes) -> Completion:
    """Read a non-streamed chat completion body; anything malformed is a protocol error."""
    data = parse_json_object(raw)
    if "choices" not in data and ("error" in data or "message" in data):
        message, _ = api_error_details(raw)
        raise ProtocolError(f"the server answered with an error: {_quote(message)}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProtocolError("the server's answer has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProtocolError("the server's answer has no message")
    usage = data.get("usage")
    return Completion(
        content=content_text(message.get("content")),
        finish_reason=_str_or_none(choices[0].get("finish_reason")),
        usage=usage if isinstance(usage, dict) else None,
        id=_str_or_none(data.get("id")),
        model=_str_or_none(data.get("model")),
        raw=raw,
        data=data,
        refusal=_str_or_none(message.get("refusal")) or None,
        tool_calls=_has_tool_calls(message),
    )


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A response body that must be a JSON object."""
    try:
        data = load_json(raw)
    except UnusableJSON as exc:
        raise ProtocolError(f"the server's answer {exc}") from None
    except ValueError:
        snippet = _snippet(raw)
        detail = f" (it starts {snippet!r})" if snippet else " (it is empty)"
        raise ProtocolError(f"the server's answer is not valid JSON{detail}") from None
    if not isinstance(data, dict):
        raise ProtocolError("the server's answer is not a JSON object")
    return data


def content_text(content: Any) -> str:
    """Message content as text: a string, null (a tool call), or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [part for part in content if isinstance(part, dict) and part.get("type") == "text"]
        texts = [part.get("text", "") for part in parts]
        if not all(isinstance(text, str) for text in texts):
            raise ProtocolError("the answer's content has a text part whose text is not a string")
        return "".join(texts)
    raise ProtocolError("the answer's content is neither text nor a list of parts")


def api_error_details(raw: bytes) -> tuple[str | None, str | None]:
    """The API's own error message and suggestion, from either error body shape."""
    try:
        data = load_json(raw)
    except ValueError:
        return (_snippet(raw) or None), None
    if not isinstance(data, dict):
        return None, None
    err = data.get("error", data)
    if isinstance(err, str):
        return _one_line(err), None
    if not isinstance(err, dict):
        return None, None
    message = err.get("message")
    suggestion = err.get("fallback_suggestion")
    return (
        _one_line(message) if isinstance(message, str) and message.strip() else None,
        _one_line(suggestion) if isinstance(suggestion, str) and suggestion.strip() else None,
    )


_DEFAULT_HINTS = {
    401: "check EVOLINK_API_KEY (keys start with sk-; manage them at https://evolink.ai/dashboard/keys)",
    402: "top up credits at https://evolink.ai/dashboard/billing",
    403: "this key may not use this model or endpoint",
    404: "check the model name (-m) and the base URL",
    413: "the request is too large: shorten the prompt or shrink images",
    429: "rate limited: try again later, or raise --retries / --retry-max-time",
}


def error_for_status(status: int, raw: bytes, url: str | None = None) -> EvocliError:
    """The evocli error for an HTTP error status, quoting the API's own message; the hint names
    the URL that was called (without credentials or query), so a wrong base URL shows."""
    message, suggestion = api_error_details(raw)
    text = f"HTTP {status} {_reason(status)}"
    if message:
        text += f": {_quote(message)}"
    hint = suggestion or _DEFAULT_HINTS.get(status)
    if status == 404 and url is not None and "/v1/" not in urlsplit(url).path + "/":
        hint = "check the base URL: Evolink's ends in /v1 (https://direct.evolink.ai/v1)"
    cls: type[EvocliError]
    if status in (401, 403):
        cls = AuthError
    elif status == 402:
        cls = CreditsError
    elif is_retryable_status(status):
        cls = TemporaryError
        if status >= 500 and hint is None:
            hint = "the service is having trouble: try again later"
    elif 300 <= status < 400:
        cls = ProtocolError
        text = f"HTTP {status} {_reason(status)}: unexpected redirect (evocli does not follow them)"
    else:
        cls = InputError
    if url is not None:
        called = f"called {_called(url)}"
        hint = f"{hint}; {called}" if hint else called
    return cls(text, hint=hint, http_status=status)


def _called(url: str) -> str:
    """A URL as a hint shows it: scheme, host and path; no credentials, query or fragment."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _quote(message: str | None) -> str:
    return json.dumps(redact(message or "unknown error"), ensure_ascii=False)


def _one_line(text: str) -> str:
    return redact(" ".join(text.split()))


def _snippet(raw: bytes, limit: int = 120) -> str:
    text = _one_line(raw.decode("utf-8", "replace"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _has_tool_calls(message: Mapping[str, Any]) -> bool:
    # function_call is the older single-call form some servers still send.
    return bool(message.get("tool_calls") or message.get("function_call"))


# The token counts evocli reports, in the order every report shows them: one list for the output
# modes, the ledger and the usage report.
TOKEN_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "image_tokens",
    "total_tokens",
)


def usage_counts(usage: dict[str, Any] | None) -> dict[str, int]:
    """The token counts evocli reports, flattened from the API's usage object."""
    usage = usage or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}

    def num(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return {
        "prompt_tokens": num(usage.get("prompt_tokens")),
        "completion_tokens": num(usage.get("completion_tokens")),
        "reasoning_tokens": num(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0,
        "cached_tokens": num(prompt_details.get("cached_tokens"))
        if isinstance(prompt_details, dict)
        else 0,
        "image_tokens": num(prompt_details.get("image_tokens"))
        if isinstance(prompt_details, dict)
        else 0,
        "total_tokens": num(usage.get("total_tokens")),
    }


# ---------------------------------------------------------------------------------------------
# Streams: chunks of a streamed answer, assembled into a Completion.


class StreamAssembler:
    """Collects the chunks of a streamed answer and knows whether it ended properly.

    `add` takes one SSE event and returns the text it adds to the answer ("" for none).
    A stream is complete when `[DONE]` arrived, or when it closed cleanly after a chunk that
    carried a finish_reason; anything else is a broken stream.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.id: str | None = None
        self.model: str | None = None
        self.done = False
        self.refusal_parts: list[str] = []
        self.tool_calls = False

    def add(self, data: str, event: str = "message") -> str:
        if self.done or not data.strip():
            # An event without data is a keep-alive (some proxies send `data:` and a blank line).
            return ""
        if data.strip() == "[DONE]":
            self.done = True
            return ""
        if event == "error":
            message, _ = api_error_details(data.encode())
            raise ProtocolError(f"the stream reported an error: {_quote(message or data)}")
        try:
            chunk = load_json(data)
        except UnusableJSON as exc:
            raise ProtocolError(f"the stream sent a chunk that {exc}") from None
        except ValueError:
            snippet = _snippet(data.encode())
            raise ProtocolError(f"the stream sent a chunk that is not JSON: {snippet!r}") from None
        if not isinstance(chunk, dict):
            raise ProtocolError("the stream sent a chunk that is not a JSON object")
        if "error" in chunk and "choices" not in chunk:
            message, _ = api_error_details(data.encode())
            raise ProtocolError(f"the stream reported an error: {_quote(message)}")
        self.id = self.id or _str_or_none(chunk.get("id"))
        self.model = self.model or _str_or_none(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if isinstance(choice.get("finish_reason"), str):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return ""
        if isinstance(delta.get("refusal"), str):
            self.refusal_parts.append(delta["refusal"])
        self.tool_calls = self.tool_calls or _has_tool_calls(delta)
        text = content_text(delta.get("content"))
        if text:
            self.parts.append(text)
        return text

    @property
    def complete(self) -> bool:
        return self.done or self.finish_reason is not None

    def result(self) -> Completion:
        """The assembled answer; a stream that did not end properly is a protocol error."""
        if not self.complete:
            raise ProtocolError("the stream ended before the answer was complete")
        return Completion(
            content="".join(self.parts),
            finish_reason=self.finish_reason,
            usage=self.usage,
            id=self.id,
            model=self.model,
            refusal="".join(self.refusal_parts) or None,
            tool_calls=self.tool_calls,
        )
