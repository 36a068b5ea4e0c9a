"""Start-up stays light: the CLI module loads neither requests nor yaml."""

from __future__ import annotations

import subprocess
import sys

from evocli import __version__
from tests.conftest import REPO, child_env


def test_importing_cli_loads_neither_requests_nor_yaml() -> None:
    code = (
        "import sys, evocli.cli\n"
        "heavy = sorted(m for m in ('requests', 'yaml', 'urllib3') if m in sys.modules)\n"
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
