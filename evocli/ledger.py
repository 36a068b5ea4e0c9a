"""The usage ledger: one JSON line per call, appended to a monthly file."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evocli.client import Completion, usage_counts
from evocli.jsonsafe import safe_text
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
    # Whatever the server sent back (an id, a model name) may echo the key: never store it. Text
    # from the command line may hold undecodable bytes (lone surrogates): written as U+FFFD.
    return {
        name: safe_text(redact(v)) if isinstance(v := values[name], str) else v for name in RECORD_FIELDS
    }


def encode_line(record: CallRecord, now: datetime) -> bytes:
    """The record as one ledger line: compact JSON and a newline."""
    return (json.dumps(to_json(record, now), ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def month_file(ledger_dir: Path, now: datetime) -> Path:
    return ledger_dir / f"{now.astimezone(UTC):%Y-%m}.jsonl"


def append(
    ledger_dir: Path, record: CallRecord, now: datetime | None = None, files: MonthFiles | None = None
) -> None:
    """Append one record with a single O_APPEND write, so concurrent writers never interleave.

    The record starts on a fresh line: when the file's last byte is not a line end (a write cut
    short by a full disk, a hand edit), the same single write begins with one. Writers hold an
    flock on the month file from that check to their write, because a long write becomes
    visible page by page: without it, a writer could take another's half-copied record for a
    fragment and leave a blank line.

    Raises OSError when the ledger cannot be written (also when the month file is not a regular
    file: a FIFO there must not hang the call); the caller turns that into a warning. With
    `files`, the month file stays open for the next record (a batch run writes thousands).
    """
    now = now or datetime.now(UTC)
    line = encode_line(record, now)
    path = month_file(ledger_dir, now)
    if files is not None:
        # The file was made to end in a line break when it was opened; the run's own records are
        # whole lines, one write each (atomic under O_APPEND), so no lock is needed per record:
        # each lock or extra system call makes the batch's threads queue for the interpreter.
        _write_all(files.open(path), line)
        return
    ledger_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = _open_month_file(path)
    try:
        _write_record(fd, line)
    finally:
        os.close(fd)


def _write_record(fd: int, line: bytes) -> None:
    """One record, starting on a fresh line (the check and the write under the file's flock)."""
    import fcntl

    locked = False
    with suppress(OSError):  # a file system without flock: the check is then best effort
        fcntl.flock(fd, fcntl.LOCK_EX)  # held for microseconds
        locked = True
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        _write_all(fd, line)
    finally:
        if locked:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _write_all(fd: int, line: bytes) -> None:
    written = os.write(fd, line)
    if written != len(line):
        raise OSError(f"short write to the ledger ({written} of {len(line)} bytes)")


class MonthFiles:
    """The month files of one run, each opened once and kept open (still one O_APPEND write per
    record, so other processes appending meanwhile stay safe). Close it when the run ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._open: dict[Path, int] = {}

    def open(self, path: Path) -> int:
        """The month file's descriptor, opened (and made to end in a line break) on first use."""
        with self.lock:
            fd = self._open.get(path)
            if fd is None:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = _open_month_file(path)
                try:
                    _write_record(fd, b"")  # a cut last line gets its line break now
                except OSError:
                    os.close(fd)
                    raise
                self._open[path] = fd
            return fd

    def close(self) -> None:
        with self.lock:
            for fd in self._open.values():
                os.close(fd)
            self._open.clear()


def _open_month_file(path: Path) -> int:
    """The month file, open for appending (and reading its last byte); only a regular file.

    O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader, forever.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, a socket, a device
            raise OSError(errno.ENXIO, f"{path.name} is not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
    return fd


class Recorder:
    """Records one call in the ledger when it ends; a ledger that cannot be written is a warning.

    Started when the call starts (its latency runs from there); `record` is called once, with
    what is known of the outcome.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        ledger_dir: Path,
        command: str,
        model: str,
        stream: bool,
        tag: str | None,
        warn: Callable[[str], None],
        files: MonthFiles | None = None,
    ) -> None:
        self.enabled, self.ledger_dir, self.warn, self.files = enabled, ledger_dir, warn, files
        self.command, self.model, self.stream, self.tag = command, model, stream, tag
        self.started = time.monotonic()

    def record(
        self,
        *,
        exit_code: int,
        status: int | None = None,
        attempts: int = 0,
        completion: Completion | None = None,
        ok: bool | None = None,
    ) -> None:
        if not self.enabled:
            return
        entry = CallRecord(
            command=self.command,
            model=(completion.model if completion and completion.model else self.model),
            ok=completion is not None if ok is None else ok,
            exit_code=exit_code,
            latency_ms=round((time.monotonic() - self.started) * 1000),
            attempts=max(attempts, 1),
            stream=self.stream,
            tag=self.tag,
            id=completion.id if completion else None,
            http_status=status,
            finish_reason=completion.finish_reason if completion else None,
            usage=completion.usage if completion else None,
        )
        try:
            append(self.ledger_dir, entry, files=self.files)
        except OSError as exc:
            self.warn(f"could not write the usage ledger in {self.ledger_dir}: {exc.strerror or exc}")
