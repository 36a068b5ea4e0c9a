"""The usage ledger: one JSON line per call, appended to a monthly file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evocli.client import usage_counts
from evocli.redact import redact

# The order of a ledger line's fields. It is the on-disk layout that the fast reader expects, so it
# is spelled out here rather than taken from client.TOKEN_FIELDS: fields added later go at the end
# (image_tokens), and lines written before them keep a layout the reader still knows.
RECORD_FIELDS = (
    "ts",
    "command",
    "model",
    "id",
    "ok",
    "http_status",
    "exit_code",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "latency_ms",
    "attempts",
    "stream",
    "tag",
    "image_tokens",
)


@dataclass(frozen=True)
class CallRecord:
    """What the ledger keeps of one call: no prompt, no answer, no key."""

    command: str
    model: str
    ok: bool
    exit_code: int
    latency_ms: int
    attempts: int
    stream: bool
    tag: str | None = None
    id: str | None = None
    http_status: int | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def to_json(record: CallRecord, now: datetime) -> dict[str, Any]:
    """The record as the ledger line's fields, in their documented order."""
    counts = usage_counts(record.usage)
    values: dict[str, Any] = {
        "ts": now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "command": record.command,
        "model": record.model,
        "id": record.id,
        "ok": record.ok,
        "http_status": record.http_status,
        "exit_code": record.exit_code,
        "finish_reason": record.finish_reason,
        **counts,
        "latency_ms": record.latency_ms,
        "attempts": record.attempts,
        "stream": record.stream,
        "tag": record.tag,
    }
    # Whatever the server sent back (an id, a model name) may echo the key: never store it.
    return {name: redact(v) if isinstance(v := values[name], str) else v for name in RECORD_FIELDS}


def encode_line(record: CallRecord, now: datetime) -> bytes:
    """The record as one ledger line: compact JSON and a newline."""
    return (json.dumps(to_json(record, now), ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def month_file(ledger_dir: Path, now: datetime) -> Path:
    return ledger_dir / f"{now.astimezone(UTC):%Y-%m}.jsonl"


def append(ledger_dir: Path, record: CallRecord, now: datetime | None = None) -> None:
    """Append one record with a single O_APPEND write, so concurrent writers never interleave.

    Raises OSError when the ledger cannot be written; the caller turns that into a warning.
    """
    now = now or datetime.now(UTC)
    line = encode_line(record, now)
    ledger_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(month_file(ledger_dir, now), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to the ledger ({written} of {len(line)} bytes)")
    finally:
        os.close(fd)
