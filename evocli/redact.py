"""Keep the API key out of everything evocli prints: masking and redaction of text."""

from __future__ import annotations

import re

# Anything shaped like an Evolink/OpenAI secret key, even one evocli was never given.
_KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_\-]{12,}")

_secrets: list[str] = []


def add_secret(secret: str | None) -> None:
    """Remember a secret so that `redact` removes it from any later text."""
    if secret and secret not in _secrets:
        _secrets.append(secret)


def mask(secret: str | None) -> str:
    """How a key may be shown: its `sk-` prefix if it has one, `…`, and at most its last four
    characters (none for a short key)."""
    if not secret:
        return "<none>"
    prefix = "sk-" if secret.startswith("sk-") else ""
    return f"{prefix}…{secret[-4:]}" if len(secret) >= 16 else f"{prefix}…"


def scrub(data: bytes) -> bytes:
    """Mask the known secrets in bytes that go to stdout (a server echoing the key back)."""
    for secret in _secrets:
        data = data.replace(secret.encode(), mask(secret).encode())
    return data


class SecretFilter:
    """Masks the known secrets in text that arrives in pieces (a streamed answer).

    A piece that ends with what could be the start of a secret is held back until the next
    piece shows whether it is one.
    """

    def __init__(self) -> None:
        self._secrets = list(_secrets)
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._secrets:
            return text
        text = self._held + text
        for secret in self._secrets:
            text = text.replace(secret, mask(secret))
        keep = 0
        for secret in self._secrets:
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
    """Replace every known secret, and every key-shaped string, by its mask."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return _KEY_SHAPE.sub(lambda m: mask(m.group(0)), text)
