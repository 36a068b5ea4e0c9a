"""Keep secrets out of everything evocli writes: masking and redaction of text, JSON and values."""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

# Anything shaped like an Evolink/OpenAI secret key, even one evocli was never given.
# Patterns as text: `re` compiles them on first use (and caches them), not at every start-up.
_KEY_SHAPE = r"sk-[A-Za-z0-9_\-]{12,}"
# A URL's credentials (`https://user:pw@host`): all between `//` and the last `@` of the authority.
_URL_USERINFO = r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s]*@"
# A JSON string literal, escapes included.
_JSON_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
# Shorter passwords are not hunted in free text: they would match ordinary words. The URL pattern
# still removes them wherever a URL is shown.
MIN_HUNTED_PASSWORD = 4
# The short JSON escapes of the characters a secret may hold.
_SHORT_ESCAPES = {"/": r"\\/", '"': r'\\"', "\\": r"\\\\"}


class _Secret(NamedTuple):
    shown: str  # what replaces it
    spellings: re.Pattern[str]  # the secret, each character plain or JSON-escaped
    everywhere: bool  # the API key: masked in the answer too, not only in diagnostics


_secrets: dict[str, _Secret] = {}


def add_secret(secret: str | None) -> None:
    """Remember the API key so that everything evocli writes masks it."""
    if secret and secret not in _secrets:
        _secrets[secret] = _Secret(mask(secret), _spellings(secret), everywhere=True)


def add_url_secrets(url: str | None) -> None:
    """Remember the password of a URL's credentials (as written and percent-decoded), so that
    diagnostics mask it even where it appears without its URL."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url or "").password
    except ValueError:
        return
    if not password or len(password) < MIN_HUNTED_PASSWORD:
        return
    for form in (password, unquote(password)):
        if form not in _secrets:
            _secrets[form] = _Secret("***", _spellings(form), everywhere=False)


def redact_url(url: str) -> str:
    """The URL with its credentials (user and password) replaced by `***`."""
    return re.sub(_URL_USERINFO, r"\1***@", url)


def mask(secret: str | None) -> str:
    """How a key may be shown: its `sk-` prefix if it has one, `…`, and at most its last four
    characters (none for a short key)."""
    if not secret:
        return "<none>"
    prefix = "sk-" if secret.startswith("sk-") else ""
    return f"{prefix}…{secret[-4:]}" if len(secret) >= 16 else f"{prefix}…"


def _spellings(secret: str) -> re.Pattern[str]:
    """A pattern for the secret however JSON may spell it: any character as `\\uXXXX` (hex in
    either case, a surrogate pair beyond U+FFFF), and `\\/`, `\\"`, `\\\\` for those three."""
    parts = []
    for ch in secret:
        forms = [re.escape(ch), _unicode_escape(ch)]
        if ch in _SHORT_ESCAPES:
            forms.append(_SHORT_ESCAPES[ch])
        parts.append(f"(?:{'|'.join(forms)})")
    return re.compile("".join(parts))


def _unicode_escape(ch: str) -> str:
    units = ch.encode("utf-16-be", "surrogatepass")
    codes = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    return "".join(
        r"\\u" + "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{code:04x}") for code in codes
    )


def _mask_known(text: str, *, keys_only: bool) -> str:
    """Replace the known secrets in decoded text, in any spelling JSON escapes allow."""
    for secret, known in _secrets.items():
        if keys_only and not known.everywhere:
            continue
        if secret in text:
            text = text.replace(secret, known.shown)
        if "\\" in text:
            text = known.spellings.sub(known.shown, text)
    return text


def scrub(data: bytes) -> bytes:
    """Mask the key in JSON text bound for stdout or a file (a server echoing it back), however
    the JSON spells it: a string that holds it in escaped form is written out again, masked."""
    keys = [(s.encode(), k.shown.encode()) for s, k in _secrets.items() if k.everywhere]
    if not keys:
        return data
    for secret, shown in keys:
        data = data.replace(secret, shown)
    return re.sub(_JSON_STRING, _scrub_string, data, flags=re.DOTALL)


def _scrub_string(match: re.Match[bytes]) -> bytes:
    token = match.group()
    if b"\\" not in token:
        return token  # no escape: the plain replacement has already seen it
    try:
        text = json.loads(token)
    except ValueError:
        return token
    masked = _mask_known(text, keys_only=True)
    if masked == text:
        return token
    try:
        return json.dumps(masked, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the string: keep it escaped
        return json.dumps(masked).encode("ascii")


def scrub_text(text: str) -> str:
    """Mask the key in decoded text that evocli writes (an answer saved to a file)."""
    return _mask_known(text, keys_only=True) if _secrets else text


def scrub_value(value: Any) -> Any:
    """A copy of a JSON-like value (a batch record, conversation turns) with the key masked in
    every string, mapping keys included."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [scrub_value(item) for item in value]
    if isinstance(value, dict):
        return {scrub_value(key): scrub_value(item) for key, item in value.items()}
    return value


class SecretFilter:
    """Masks the key in text that arrives in pieces (a streamed answer).

    A piece that ends with what could be the start of the key is held back until the next
    piece shows whether it is.
    """

    def __init__(self) -> None:
        self._secrets = [(s, k.shown) for s, k in _secrets.items() if k.everywhere]
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._secrets:
            return text
        text = self._held + text
        for secret, shown in self._secrets:
            text = text.replace(secret, shown)
        keep = 0
        for secret, _ in self._secrets:
            for size in range(min(len(secret) - 1, len(text)), keep, -1):
                if text.endswith(secret[:size]):
                    keep = size
                    break
        self._held = text[len(text) - keep :] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def redact(text: str) -> str:
    """Diagnostics made safe: every known secret in any spelling, every key-shaped string and
    every URL's credentials replaced by their masks."""
    if "sk-" not in text and "@" not in text and "\\" not in text and not any(s in text for s in _secrets):
        return text  # nothing any rule below could change (the common case, and a hot path)
    text = _mask_known(text, keys_only=False)
    text = re.sub(_URL_USERINFO, r"\1***@", text)
    return re.sub(_KEY_SHAPE, lambda m: mask(m.group(0)), text)
