"""The command line: the command table, the app built from it, and the `evocli` entry point.

A new command is one module in this package plus one line in COMMANDS.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping
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


def completing_in(env: Mapping[str, str]) -> str | None:
    """The command a TAB completes within (`evocli ask --<TAB>`), or None when the command name
    itself is being completed: only that command is then built, as for a run that names it."""
    if "COMP_WORDS" in env:  # bash: the words, and the index of the one being completed
        words = env["COMP_WORDS"].split()
        try:
            inside = int(env.get("COMP_CWORD", "")) >= 2
        except ValueError:
            return None
    else:  # zsh, fish: the line so far; a trailing space starts a new word
        line = env.get("_TYPER_COMPLETE_ARGS", "")
        words = line.split()
        inside = len(words) >= 3 or (len(words) == 2 and line.endswith(" "))
    return words[1] if inside and len(words) >= 2 and words[1] in COMMANDS else None


def main() -> None:
    """The `evocli` console script.

    A run that names its command builds only that command (each one built costs start-up
    time); its help, errors and exit codes are those of the whole app. TAB completion and
    everything else get the whole app.
    """
    signals.install()
    argv = sys.argv[1:]
    if "_EVOCLI_COMPLETE" in os.environ:
        named = completing_in(os.environ)
        names = None if named is None else [named]
    else:
        names = [argv[0]] if argv and argv[0] in COMMANDS else None
    try:
        build_app(names)(argv, prog_name="evocli")
    except KeyboardInterrupt:  # outside a command: while parsing, or in completion
        sys.exit(signals.exit_code())
