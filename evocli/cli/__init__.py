"""The command line: the command table, the app built from it, and the `evocli` entry point.

A new command is one module in this package plus one line in COMMANDS.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from functools import cache
from typing import Any

from evocli import signals
from evocli.cli.base import EvocliTyper, new_app

# Command name -> the module that defines it (a function named like the module), in help order.
COMMANDS = {
    "ask": "evocli.cli.ask",
    "chat-file": "evocli.cli.chat_file",
    "batch": "evocli.cli.batch",
    "usage": "evocli.cli.usage",
    "config": "evocli.cli.config",
}


def build_app(names: Iterable[str] | None = None) -> EvocliTyper:
    """The app with the named commands (all of them by default), in the table's order."""
    wanted = set(COMMANDS if names is None else names)
    app = new_app()
    for name, module_name in COMMANDS.items():
        if name in wanted:
            module = importlib.import_module(module_name)
            app.command(name)(getattr(module, module_name.rsplit(".", 1)[1]))
    return app


@cache
def _whole_app() -> EvocliTyper:
    return build_app()


def __getattr__(name: str) -> Any:
    """`evocli.cli.app` is the whole app, built on first use."""
    if name == "app":
        return _whole_app()
    raise AttributeError(name)


def main() -> None:
    """The `evocli` console script.

    A run that names its command builds only that command (each one built costs start-up
    time); its help, errors and exit codes are those of the whole app. TAB completion and
    everything else get the whole app.
    """
    signals.install()
    argv = sys.argv[1:]
    completing = "_EVOCLI_COMPLETE" in os.environ
    names = [argv[0]] if argv and argv[0] in COMMANDS and not completing else None
    try:
        build_app(names)(argv, prog_name="evocli")
    except KeyboardInterrupt:  # outside a command: while parsing, or in completion
        sys.exit(signals.exit_code())
