"""Ctrl-C and SIGTERM: clean up like any interruption, then die by the signal, so callers stop too.

Both signals raise KeyboardInterrupt in the main thread, so every cleanup path (partial text
ended, ledger record written, finished batch lines kept, temporary files removed) serves both.
Once the run is over, the process ends by the signal itself (the default handler restored and
the signal sent again): a calling shell loop or xargs sees a death by SIGINT or SIGTERM and stops,
as it does for curl. Work that is already complete (a conversation saved) is never undone: a
signal that arrives after it ends the run as a success.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)

# The signal that interrupted this run, if one did; and whether the run's work was complete then.
caught: int | None = None
committed = False
_deferring = False  # inside `deferred()`: a signal is only recorded


def _interrupt(signum: int, frame: FrameType | None) -> None:
    global caught
    if caught is None:
        caught = signum
    if not _deferring:
        raise KeyboardInterrupt


def reset() -> None:
    """A run starts: nothing caught, nothing complete (commands may run many times in a test)."""
    global caught, committed, _deferring
    caught, committed, _deferring = None, False, False


def install() -> None:
    """Route SIGINT and SIGTERM through KeyboardInterrupt (main thread only, as Python requires)."""
    for signum in HANDLED:
        signal.signal(signum, _interrupt)


def exit_code() -> int:
    """The exit status a shell reports for the interruption: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + (caught or signal.SIGINT)


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while work must complete whole (a file being replaced); once
    it has, the run counts as done, and a signal that came meanwhile ends it as a success.

    The handler only records the signal here (it may be delivered to any thread, so masking it
    would not do); it is acted on when the block ends.
    """
    global committed, _deferring
    _deferring = True
    try:
        yield
        committed = True
    finally:
        _deferring = False
    if caught is not None:
        raise KeyboardInterrupt


def die_if_caught() -> None:
    """End the process by the signal that interrupted it (no return), unless none did or the
    run's work was complete."""
    if caught is None or committed:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    signal.signal(caught, signal.SIG_DFL)
    os.kill(os.getpid(), caught)


class TimeUp(BaseException):
    """--max-time has passed (raised in the main thread, wherever the call is)."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TimeUp in the main thread once `seconds` have passed, whatever it is waiting on (a
    connection, a slow stream, a retry's back-off); no limit for None."""
    if seconds is None:
        yield
        return

    def ring(signum: int, frame: FrameType | None) -> None:
        raise TimeUp

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
