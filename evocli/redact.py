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
    """How a key may be shown: `sk-…` plus at most its last four characters."""
    if not secret:
        return "<none>"
    if len(secret) >= 16:
        return f"sk-…{secret[-4:]}"
    return "sk-…"


def redact(text: str) -> str:
    """Replace every known secret, and every key-shaped string, by its mask."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return _KEY_SHAPE.sub(lambda m: mask(m.group(0)), text)
