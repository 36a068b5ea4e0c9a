"""A conversation file on disk: read it, hold its lock for a run, save new turns into it atomically."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress

from evocli import signals
from evocli.errors import EvocliError, InputError, NoInputError
from evocli.messages import Message


def read_text(path: str, shown: str) -> str:
    """A file's text as UTF-8; a missing or unreadable file is exit 66, bad UTF-8 exit 65."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise unreadable(shown, exc) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{shown}: not valid UTF-8 text (byte {exc.start})") from None


def unreadable(shown: str, exc: OSError) -> NoInputError:
    reason = "it is a folder" if isinstance(exc, IsADirectoryError) else (exc.strerror or str(exc))
    return NoInputError(f"cannot read {shown}: {reason}")


@contextmanager
def locked(file: str, on_wait: Callable[[], None], *, create: bool = False) -> Iterator[str]:
    """Hold FILE's lock for the whole run, so a concurrent save continues after this one.

    Yields the real path (symlinks resolved). A file that could not be saved later is refused
    now, before any request is sent. With `create`, a missing FILE is created empty, and
    removed again if the run ends with it still empty.
    """
    from evocli import safefile

    if not file:
        raise NoInputError("a conversation file needs a name")
    try:
        if not stat.S_ISREG(os.stat(file).st_mode):
            # A FIFO or a device cannot be replaced by a new version (and opening a FIFO waits).
            raise NoInputError(f"cannot append to {file}: it is not a regular file")
    except FileNotFoundError:
        pass
    created = create and not os.path.lexists(file)
    with ExitStack() as stack:
        try:
            real = stack.enter_context(safefile.locked(file, on_wait=on_wait, create=create))
        except OSError as exc:
            raise unreadable(file, exc) from None
        try:
            safefile.check_writable(real)
        except PermissionError as exc:
            raise NoInputError(f"cannot append to {file}: {exc.strerror}") from None
        if created:
            stack.callback(_remove_if_empty, real)
        yield real


def _remove_if_empty(path: str) -> None:
    with suppress(OSError):
        if os.path.getsize(path) == 0:
            os.unlink(path)


def save_turns(path: str, shown: str, turns: Sequence[Message], *, system: str | None = None) -> bool:
    """Append the turns to the file as it is now, atomically; False when its layout did not
    allow appending in place and the file was rewritten without its comments.

    The file is read again first: only evocli honours the lock, and edits saved meanwhile by
    hand must not be lost.
    """
    from evocli import safefile, yamlappend
    from evocli.redact import scrub_value

    turns = scrub_value(list(turns))  # an answer that echoes the key is saved with it masked
    try:
        current = read_text(path, shown)
        if current.strip():
            text, kept = yamlappend.append_turns(current, shown, turns)
        else:  # a conversation started by this run
            text, kept = yamlappend.new_text(shown, system, turns), True
    except EvocliError as err:  # the file was changed meanwhile (bad YAML now), or cannot be read
        raise NoInputError(
            f"cannot save the answer to {shown}: {err.message}",
            hint=f"the answer above was not saved to {shown}",
        ) from None
    try:
        with signals.deferred():  # once replaced, the file is saved: a signal cannot undo that
            safefile.replace(path, text.encode("utf-8"))
    except OSError as exc:
        raise NoInputError(
            f"cannot save the answer to {shown}: {exc.strerror or exc}", hint=f"{shown} was left as it was"
        ) from None
    return kept
