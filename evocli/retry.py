"""When to try a request again and how long to wait: the retry policy as pure functions (SPEC §5)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from evocli.config import MAX_SECONDS

# Statuses worth another attempt: the server may answer differently in a moment.
RETRYABLE_STATUSES = frozenset({408, 409, 429})

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


def backoff_delay(retries_taken: int, jitter: float) -> float:
    """min(0.5·2ⁿ, 8) seconds, shortened by up to a quarter (jitter in [0, 1))."""
    base: float = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
    return base * (1 - 0.25 * jitter)


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """The wait a server asks for: retry-after-ms, else Retry-After (seconds or HTTP date).

    `headers` must be case-insensitive (requests' are). Nonsense values (negative, NaN, infinite,
    garbage) are ignored: None, so the usual back-off applies.
    """
    from email.utils import parsedate_to_datetime

    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000
    text = headers.get("retry-after")
    if text is None:
        return None
    seconds = _seconds(text)
    if seconds is not None or _is_number(text):
        return seconds
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    # A date already past means "now": that is a real answer, not nonsense.
    return max(when.timestamp() - now, 0.0)


def _seconds(text: str | None) -> float | None:
    """A header's number of seconds (or ms), when it is one that makes sense: finite, not negative."""
    if text is None or not _is_number(text):
        return None
    value = float(text)
    return value if math.isfinite(value) and value >= 0 else None


def _is_number(text: str) -> bool:
    # float() also takes "nan", "inf" and "1_0"; a header holds plain decimal numbers.
    return re.fullmatch(r"\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*", text) is not None


def describe_wait(seconds: float) -> str:
    """A wait as an error line shows it: `2.5 s`, never a 300-digit number (no setting allows a
    wait longer than a week, so a longer one needs no figure)."""
    return f"{seconds:.1f} s" if seconds <= MAX_SECONDS else "more than a week"


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """x-should-retry (true/false) overrides the status rule: 408, 409, 429 and 5xx."""
    override = (headers.get("x-should-retry") or "").strip().lower()
    if override == "true":
        return True
    if override == "false":
        return False
    return is_retryable_status(status)
