"""A run that names its command builds only that command: same help, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evocli.cli import COMMANDS
from tests.conftest import REPO, child_env

WHOLE_APP = (
    "import sys\n"
    "from evocli.cli import app\n"
    "app(sys.argv[1:], prog_name='evocli')\n"
)


def run(argv: list[str], whole: bool) -> tuple[int, str, str]:
    cmd = [sys.executable, "-c", WHOLE_APP, *argv] if whole else [sys.executable, "-m", "evocli", *argv]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=child_env(), timeout=60,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "--help"], ["ask", "-h"], ["chat-file", "--help"], ["batch", "--help"], ["usage", "--help"],
        ["ask", "--bogus"], ["ask", "-o", "xml", "x"], ["ask", "--max-tokens", "0", "x"], ["chat-file"],
        ["batch"], ["usage", "--by", "nope"], ["batch", "x", "-c", "0"],
    ],
)
def test_single_command_run_matches_the_whole_app(argv: list[str]) -> None:
    assert run(argv, whole=False) == run(argv, whole=True)


def test_unknown_names_use_the_whole_app() -> None:
    assert "nope" not in COMMANDS
    assert "--version" not in COMMANDS
    code, out, err = run(["nope"], whole=False)
    assert (code, out) == (2, "")
    assert err == "evocli: error: no such command 'nope'\nhint: 'evocli -h' lists the options\n"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COMP_WORDS": "evocli ask --", "COMP_CWORD": "2"}, "ask"),
        ({"COMP_WORDS": "evocli as", "COMP_CWORD": "1"}, None),
        ({"COMP_WORDS": "evocli nope --", "COMP_CWORD": "2"}, None),
        ({"COMP_WORDS": "evocli", "COMP_CWORD": "x"}, None),
        ({"_TYPER_COMPLETE_ARGS": "evocli batch --"}, "batch"),
        ({"_TYPER_COMPLETE_ARGS": "evocli usage "}, "usage"),
        ({"_TYPER_COMPLETE_ARGS": "evocli usage"}, None),
        ({"_TYPER_COMPLETE_ARGS": "evocli "}, None),
    ],
)
def test_completion_within_a_command_builds_only_that_command(env: dict[str, str], expected: str | None) -> None:
    from evocli.cli import completing_in

    assert completing_in(env) == expected


@pytest.mark.parametrize("words", ["evocli ask --", "evocli ask -o ", "evocli chat-file --", "evocli usage --by "])
def test_completion_in_one_command_matches_the_whole_app(words: str) -> None:
    env = child_env({"_EVOCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words})
    fast = subprocess.run([sys.executable, "-m", "evocli"], capture_output=True, text=True, cwd=REPO, env=env)
    whole = subprocess.run([sys.executable, "-c", WHOLE_APP], capture_output=True, text=True, cwd=REPO, env=env)
    assert fast.stdout == whole.stdout and fast.stdout
