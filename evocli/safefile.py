"""Rewriting a user's file safely: one writer at a time across processes, atomic replacement."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress


@contextmanager
def locked(path: str, on_wait: Callable[[], None] | None = None, *, create: bool = False) -> Iterator[str]:
    """Hold an exclusive lock on the file at `path` (symlinks resolved); yields the real path.
    With `create`, a missing file is created empty (so that there is something to lock).

    The lock is a flock on the file itself, so no lock file is left beside it. Closing the
    descriptor, or the process dying, releases the lock. `on_wait` is called once if another
    process holds it (then this one waits its turn).
    """
    real = os.path.realpath(path)
    flags = os.O_RDONLY | (os.O_CREAT if create else 0)
    fd = _lock_current(real, flags, 0o666, on_wait=on_wait or _no_wait)
    try:
        yield real
    finally:
        os.close(fd)


def _no_wait() -> None:
    pass


def _lock_current(path: str, flags: int, mode: int, on_wait: Callable[[], None] | None) -> int:
    """Open `path` and lock it (waiting if `on_wait` is given, else BlockingIOError when it is
    held): the descriptor of the file the path names now.

    A writer replaces the file (a new inode), so a lock won on the old inode guards nothing: the
    path is opened again until the lock held is the lock of the file the path names.
    """
    import fcntl

    warned = False
    while True:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), mode)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is None:
                    raise
                if not warned:
                    on_wait()
                    warned = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            held = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)


def check_writable(path: str) -> None:
    """Raise PermissionError now, before any work, if `path` could not be replaced later."""
    folder = os.path.dirname(path) or "."
    if not os.access(path, os.W_OK):
        raise PermissionError(13, "the file is not writable", path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "its folder is not writable", folder)


def replace(path: str, data: bytes | Iterable[bytes], *, hold: bool = False) -> int | None:
    """Write `data` (bytes, or pieces of it) to a temporary file beside `path`, fsync it, and
    rename it over `path`.

    Readers see the old file or the new one, never a part; the file's mode (and, where
    permitted, its owner) is kept. On any failure the temporary file is removed and `path` is
    untouched. With `hold`, the new file is locked (flock) before it takes the path's place, and
    its descriptor, open for appending, is returned: no other writer can claim it in between.
    """
    before = os.stat(path)
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        for piece in [data] if isinstance(data, bytes) else data:
            _write_all(fd, piece)
        os.fchmod(fd, stat.S_IMODE(before.st_mode))
        with suppress(OSError):
            os.fchown(fd, before.st_uid, before.st_gid)
        os.fsync(fd)
        if hold:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX)
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_APPEND)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        os.close(fd)
        raise
    _sync_folder(folder)
    if hold:
        return fd
    os.close(fd)
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def claim(path: str) -> int:
    """Open `path` for appending (creating it) and lock it for this process alone.

    Raises BlockingIOError when another process holds it.
    """
    return _lock_current(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644, on_wait=None)


def _sync_folder(folder: str) -> None:
    """Make the rename itself durable; not every system allows opening a folder, so best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
