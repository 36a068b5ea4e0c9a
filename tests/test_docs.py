"""Drift checks: every command, option and exit code is in the README."""

from __future__ import annotations

import re

import typer.main

from evocli.cli import app
from evocli.errors import ExitCode
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_every_exit_code_is_in_the_table() -> None:
    rows = set(re.findall(r"^\| (\d+) \|", README, flags=re.MULTILINE))
    assert rows == {str(int(code)) for code in ExitCode}


def test_every_command_and_option_is_documented() -> None:
    group = typer.main.get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"evocli {name}" in README, name
        for param in command.params:
            for opt in [*param.opts, *getattr(param, "secondary_opts", [])]:
                if opt.startswith("-"):
                    assert f"`{opt}" in README or f", {opt}" in README or f"/ {opt}" in README, f"{name} {opt}"
