"""Drift checks: every command, option and exit code is in the README."""

from __future__ import annotations

import re

import typer.main

from evocli import config
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


def _config_row(key: config.Key) -> str:
    """A key's row in the README's configuration table."""
    default = key.default
    if default is None or default == {}:
        shown = ""
    elif isinstance(default, bool):
        shown = f"`{str(default).lower()}`"
    elif isinstance(default, float) and default.is_integer():
        shown = f"`{int(default)}`"
    else:
        shown = f"`{default}`"
    env = f"`{key.env}`" if key.env else ""
    flag = f"`{key.flag}`" if key.flag else ""
    return f"| `{key.name}` | {env} | {flag} | {shown} | {key.doc} |"


def test_the_config_table_is_the_declared_keys() -> None:
    table = README.split("| key | environment | flag | default | meaning |\n|---|---|---|---|---|\n", 1)[1]
    rows = table.split("\n\n", 1)[0].splitlines()
    assert rows == [_config_row(key) for key in config.KEYS]
