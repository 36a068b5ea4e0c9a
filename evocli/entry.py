"""The `evocli` console script: a fast `--version`, then the Typer app, then an exit without teardown."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import NoReturn

from evocli import signals, version_line
from evocli.errors import ExitCode

# Raised from the default 700: start-up creates tens of thousands of long-lived objects (modules,
# classes, functions) and the collector would scan them over and over, about 5 ms per run for
# nothing. Collection still happens, so a long `batch` run keeps a bounded heap.
GC_THRESHOLD = 50_000

COMPLETE_VAR = "_EVOCLI_COMPLETE"


def is_plain_version(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True when the command line is exactly `evocli --version` and no shell completion is asked.

    Only then is the answer known without building the app: any other argument could be an
    error or change the outcome, and Click parses the whole line before running eager callbacks.
    """
    return list(argv) == ["--version"] and COMPLETE_VAR not in environ


def main() -> NoReturn:
    """The `evocli` console script (and `python -m evocli`)."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    code: object = 0
    try:
        if is_plain_version(sys.argv[1:], os.environ) and sys.stdout is not None:
            code = print_version()
        else:
            from evocli.cli import main as run_app

            run_app()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:  # Ctrl-C while the app is still loading
        signals.caught = signals.caught or signal.SIGINT
        code = int(ExitCode.INTERRUPTED)
    signals.die_if_caught()
    fast_exit(code)


def print_version() -> int:
    """Print the version line; a closed stdout ends with 1 and no message, as Click does, and a
    stdout that cannot take it (a full disk) with 73 and one line, as for any output."""
    try:
        sys.stdout.write(version_line())
        sys.stdout.flush()
    except OSError as exc:
        # Pointing the stream at /dev/null keeps the final flush from failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        if isinstance(exc, BrokenPipeError):
            return 1
        with contextlib.suppress(OSError):
            sys.stderr.write(f"evocli: error: cannot write to stdout: {exc.strerror or exc}\n")
            sys.stderr.flush()
        return int(ExitCode.CANTCREAT)
    return 0


def fast_exit(code: object) -> NoReturn:
    """End the process now, skipping the interpreter's teardown (about 10 ms with requests loaded).

    Safe because every command has finished its work: the answer and messages are flushed here,
    the ledger is written with os.write, and files are closed by the commands that open them.
    Anything unusual takes the ordinary exit so nothing is lost: a non-integer code (Python prints
    it), a thread still running (its work must finish), or a flush that fails (a closed pipe is
    reported as Python always reports it).
    """
    if code is None:
        code = 0
    if not isinstance(code, int) or threading.active_count() > 1:
        raise SystemExit(code)
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    os._exit(code & 0xFF)
