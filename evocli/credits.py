"""The account's credits: ask the API (SPEC §1), read its answer, show it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

from evocli.client import build_credits_request, parse_json_object
from evocli.config import Settings
from evocli.errors import EvocliError, ProtocolError
from evocli.redact import redact


@dataclass(frozen=True)
class Balance:
    """Remaining and used credits; `remaining` may be None for an unlimited key."""

    remaining: float | None
    used: float
    unlimited: bool = False


@dataclass(frozen=True)
class Credits:
    """The key's own balance and the whole account's."""

    key: Balance
    account: Balance


def parse_credits(raw: bytes) -> Credits:
    """Read the credits answer; anything malformed is a protocol error (exit 76)."""
    data = parse_json_object(raw)
    if data.get("success") is False:
        message = data.get("message")
        detail = ""
        if isinstance(message, str) and message.strip():
            detail = f": {json.dumps(redact(message), ensure_ascii=False)}"
        raise ProtocolError(f"the credits query failed{detail}")
    body = data.get("data")
    if not isinstance(body, dict):
        raise ProtocolError("the credits answer has no data object")
    return Credits(key=_balance(body, "token"), account=_balance(body, "user"))


def _balance(body: dict[str, Any], name: str) -> Balance:
    part = body.get(name)
    if not isinstance(part, dict):
        raise ProtocolError(f"the credits answer has no data.{name} object")
    unlimited = part.get("unlimited_credits") is True
    remaining = part.get("remaining_credits")
    used = part.get("used_credits")
    if not _is_number(remaining) and not (unlimited and remaining is None):
        raise ProtocolError(f"the credits answer has no number in data.{name}.remaining_credits")
    if not _is_number(used):
        raise ProtocolError(f"the credits answer has no number in data.{name}.used_credits")
    return Balance(remaining, used, unlimited)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def credits_json(credits: Credits) -> str:
    """The credits as one JSON document, with the API's own field names."""
    doc = {
        "key": {
            "remaining_credits": credits.key.remaining,
            "used_credits": credits.key.used,
            "unlimited_credits": credits.key.unlimited,
        },
        "account": {
            "remaining_credits": credits.account.remaining,
            "used_credits": credits.account.used,
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def credits_text(credits: Credits) -> str:
    """A few aligned lines: `key remaining:  99416.4429` …"""
    items = [
        ("key remaining:", "unlimited" if credits.key.unlimited else _number(credits.key.remaining)),
        ("key used:", _number(credits.key.used)),
        ("account remaining:", _number(credits.account.remaining)),
        ("account used:", _number(credits.account.used)),
    ]
    label_width = max(len(label) for label, _ in items)
    value_width = max(len(value) for _, value in items)
    return "".join(f"{label.ljust(label_width)}  {value.rjust(value_width)}\n" for label, value in items)


def _number(value: float | None) -> str:
    """The number as the API sent it, never in exponent form."""
    if value is None:
        return "-"
    text = repr(value)
    return format(Decimal(text), "f") if "e" in text else text


def fetch_credits(settings: Settings, notify: Callable[[str], None] | None = None) -> Credits:
    """GET the credits URL with the key; HTTP and network failures raise the usual errors.

    Temporary failures are retried like a call's; `notify` gets one line per retry (SPEC §5).
    """
    from evocli import transport

    link = transport.Link(max_response_bytes=settings.max_response_bytes)
    if notify is not None:
        link.notify = notify
    try:
        reply = transport.perform(settings, build_credits_request(settings), link)
    except EvocliError as err:
        if err.http_status == 404:
            called = (err.hint or "").rpartition("; ")[2]  # "called <url>"
            err.hint = ("check the credits URL (EVOLINK_CREDITS_URL or credits_url in the config file); "
                        + called)
        raise
    return parse_credits(reply.body)
