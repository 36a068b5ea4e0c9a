"""Start-up stays light: the CLI module loads neither requests nor yaml."""

from __future__ import annotations

import subprocess
import sys

from evocli import __version__
from tests.conftest import REPO, child_env


def test_importing_cli_loads_neither_requests_nor_yaml() -> None:
    """Nor the modules of single commands: each command imports its own when it runs."""
    code = (
        "import sys, evocli.cli\n"
        "heavy = sorted(m for m in ('requests', 'yaml', 'urllib3', 'evocli.batch', 'evocli.batchrun',\n"
        "                           'evocli.conversation', 'evocli.convstore', 'evocli.yamlappend',\n"
        "                           'evocli.safefile', 'evocli.transport', 'evocli.sse', 'evocli.ledger',\n"
        "                           'evocli.credits', 'evocli.report') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env(), check=True
    )
    assert out.stdout == "\n"


def test_version_and_help_load_neither() -> None:
    code = (
        "import sys\n"
        "from evocli.cli import app\n"
        "for argv in (['--version'], ['--help'], ['ask', '--help']):\n"
        "    try:\n"
        "        app(argv, prog_name='evocli')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "sys.stderr.write(','.join(m for m in ('requests', 'yaml') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env(), check=True
    )
    assert out.stderr == ""
    assert out.stdout.startswith(f"evocli {__version__}\n")


HEAVY = ("requests", "yaml", "rich", "pygments", "markdown_it", "pydantic")


def loaded_after(argv: list[str], env: dict[str, str]) -> list[str]:
    """The heavy packages loaded by one run of the app (help, a usage error or a TAB)."""
    code = (
        "import sys\n"
        "from evocli.cli import app\n"
        "try:\n"
        f"    app({argv!r}, prog_name='evocli')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"sys.stderr.write('\\nLOADED:' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=child_env(env), check=True
    )
    marker = out.stderr.rsplit("LOADED:", 1)[1]
    return [m for m in marker.split(",") if m]


def test_help_errors_and_completion_never_load_rich_or_the_network_stack() -> None:
    fish = {"_EVOCLI_COMPLETE": "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args"}
    cases: list[tuple[list[str], dict[str, str]]] = [
        (["--help"], {}),
        (["ask", "--help"], {}),
        (["ask", "--bogus"], {}),
        (["nope"], {}),
        ([], {"_EVOCLI_COMPLETE": "complete_bash", "COMP_WORDS": "evocli ask --", "COMP_CWORD": "2"}),
        ([], {"_EVOCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "evocli ask --"}),
        ([], {**fish, "_TYPER_COMPLETE_ARGS": "evocli ask --"}),
        ([], {**fish, "_TYPER_COMPLETE_ARGS": "evocli "}),
    ]
    for argv, env in cases:
        assert loaded_after(argv, env) == [], (argv, env)
