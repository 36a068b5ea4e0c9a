"""The console script's shortcuts behave exactly as the Typer app does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence

import pytest

from evocli import __version__, entry
from tests.conftest import REPO, child_env, invoke

# The same command line through the plain app, as the console script ran before evocli.entry.
VIA_APP = "import sys; from evocli.cli import main; main()"


def run(
    code_or_module: Sequence[str],
    args: Sequence[str],
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, *code_or_module, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=env or child_env(),
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_only_a_lone_version_flag_takes_the_shortcut() -> None:
    assert entry.is_plain_version(["--version"], {})
    assert not entry.is_plain_version(["--version"], {"_EVOCLI_COMPLETE": "complete_bash"})
    for argv in (
        [],
        ["--version", "ask"],
        ["ask", "--version"],
        ["--version", "--bogus"],
        ["--versio"],
        ["-h"],
    ):
        assert not entry.is_plain_version(argv, {}), argv


def test_version_shortcut_prints_what_the_app_prints_without_loading_typer() -> None:
    fast = run(["-X", "importtime", "-m", "evocli"], ["--version"])
    assert (fast.returncode, fast.stdout) == (0, f"evocli {__version__}\n".encode())
    loaded = [line.rsplit("|", 1)[-1].strip() for line in fast.stderr.decode().splitlines()]
    assert "evocli.entry" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("typer", "requests", "yaml")]
    in_app = invoke(["--version"])
    assert (in_app.exit_code, in_app.stdout.encode(), in_app.stderr) == (0, fast.stdout, "")


@pytest.mark.parametrize(
    "args", [["--version"], ["--version", "ask"], ["--version", "--bogus"], ["--help"], ["nope"], ["ask"], []]
)
def test_console_script_matches_the_app(args: list[str]) -> None:
    fast, plain = run(["-m", "evocli"], args), run(["-c", VIA_APP], args)
    assert (fast.returncode, fast.stdout, fast.stderr) == (plain.returncode, plain.stdout, plain.stderr)


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("args", [["--version"], ["--help"]])
def test_closed_stdout_is_reported_as_before(args: list[str], unbuffered: bool) -> None:
    env = child_env({"PYTHONUNBUFFERED": "1"} if unbuffered else {})
    results = []
    for how in (["-m", "evocli"], ["-c", VIA_APP]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = run(how, args, env=env, stdout=write_end)
        finally:
            os.close(write_end)
        results.append((proc.returncode, proc.stderr))
    assert results[0] == results[1]
    assert results[0][0] in (1, 120)


def run_entry(body: str) -> subprocess.CompletedProcess[bytes]:
    code = "import sys, evocli.entry as e\n" + body
    return run(["-c", code], [])


def test_exit_codes_and_flushed_output() -> None:
    proc = run_entry("sys.stdout.write('unflushed'); sys.stderr.write('err'); e.fast_exit(65)")
    assert (proc.returncode, proc.stdout, proc.stderr) == (65, b"unflushed", b"err")
    assert run_entry("e.fast_exit(None)").returncode == 0
    proc = run_entry("e.fast_exit('a message')")
    assert (proc.returncode, proc.stderr) == (1, b"a message\n")


def test_a_running_thread_finishes_before_the_exit() -> None:
    proc = run_entry(
        "import threading, time\n"
        "def late(): time.sleep(0.3); print('thread done', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "e.fast_exit(3)\n"
    )
    assert (proc.returncode, proc.stdout) == (3, b"thread done\n")


def test_ctrl_c_while_loading_dies_by_sigint_quietly() -> None:
    proc = run_entry(
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'evocli.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['evocli', 'ask', 'x']\n"
        "e.main()\n"
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (-signal.SIGINT, b"", b"")


def test_console_script_and_module_point_at_the_entry() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert 'evocli = "evocli.entry:main"' in text
    assert "from evocli.entry import main" in (REPO / "evocli" / "__main__.py").read_text()
