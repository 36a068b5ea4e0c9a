"""Hostile surroundings met at the command line: full or closed stdout and stderr, empty values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Reply, completion_body

FULL = "/dev/full"
needs_dev_full = pytest.mark.skipif(not os.path.exists(FULL), reason="no /dev/full here")


def run(args: list[str], *, stdout: str | None = None, stderr: str | None = None,
        env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """Run evocli with stdout and/or stderr sent to a path (such as /dev/full)."""
    out = open(stdout, "wb") if stdout else subprocess.PIPE  # noqa: SIM115
    err = open(stderr, "wb") if stderr else subprocess.PIPE  # noqa: SIM115
    try:
        proc = subprocess.run([sys.executable, "-m", "evocli", *args], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=err, env=child_env(env), cwd=REPO, timeout=60)
    finally:
        for stream in (out, err):
            if stream is not subprocess.PIPE:
                stream.close()  # type: ignore[union-attr]
    return proc.returncode, proc.stdout or b"", proc.stderr or b""


@needs_dev_full
@pytest.mark.parametrize("args", [["--version"], ["--help"], ["ask", "--help"], ["usage", "--help"]])
def test_help_and_version_to_a_full_disk_are_73_in_one_line(args: list[str]) -> None:
    code, _, err = run(args, stdout=FULL)
    assert (code, err) == (73, b"evocli: error: cannot write to stdout: No space left on device\n")


@needs_dev_full
def test_an_unwritable_stderr_keeps_each_runs_own_exit_code(tmp_path: Path) -> None:
    """Python exits 120 when it cannot flush stderr at the end; evocli's own code must win."""
    assert run(["ask", "--no-stdin", "hi"], stderr=FULL)[0] == 78  # no key: an error on stderr
    assert run(["ask", "--no-stdin", "   "], stderr=FULL, env={"EVOLINK_API_KEY": KEY})[0] == 65
    assert run(["ask", "--bogus"], stderr=FULL)[0] == 2
    with FakeServer() as srv:
        env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url,
               "EVOCLI_LEDGER_DIR": str(tmp_path / "file")}
        (tmp_path / "file").write_text("a file where the ledger folder should be")
        code, out, _ = run(["ask", "--no-stdin", "hi"], stderr=FULL, env=env)  # a warning on stderr
        assert (code, out) == (0, b"Hello from the test server.\n")


def test_an_empty_model_is_refused_before_any_request(tmp_path: Path) -> None:
    with FakeServer() as srv:
        env = {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url}
        assert run(["ask", "-m", "", "--no-stdin", "hi"], env=env) == (
            2, b"", b"evocli: error: -m/--model must name a model, got an empty string\n")
        assert run(["ask", "-m", "  ", "--no-stdin", "hi"], env=env)[0] == 2
        config = tmp_path / "config.yaml"
        config.write_text("model: ''\n")
        assert run(["ask", "--no-stdin", "hi"], env={**env, "EVOCLI_CONFIG": str(config)}) == (
            78, b"", f"evocli: error: config file {config}: model: expected a model id, got an empty string\n"
            .encode())
        assert srv.requests == []


def test_a_param_nested_too_deeply_is_a_usage_error(cli: Any) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = cli(["ask", "--dry-run", "-p", f"x={deep}", "hi"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == f"evocli: error: -p {'x=' + '[' * 38!r}…: the value is nested too deeply\n"


def test_max_response_bytes_from_the_config_file(cli: Any, api_env: FakeServer, isolated: Path) -> None:
    config = isolated / "config" / "evocli" / "config.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("max_response_bytes: 100\n")
    r = cli(["ask", "--no-stdin", "hi"])
    assert (r.exit_code, r.stdout) == (76, "")
    assert r.stderr.startswith("evocli: error: the answer from 127.0.0.1:")
    config.write_text("max_response_bytes: 0\n")
    r = cli(["ask", "--no-stdin", "hi"])
    assert (r.exit_code, r.stderr) == (
        78, f"evocli: error: config file {config}: max_response_bytes: expected a whole number of bytes, 1 or more\n")


def test_an_echoed_key_is_masked_in_a_saved_conversation(cli: Any, api_env: FakeServer, tmp_path: Path) -> None:
    journal = tmp_path / "j.yaml"
    journal.write_text("messages:\n  - role: user\n    content: hi\n")
    api_env.script(Reply(body=completion_body(f"your key is {KEY}")))
    r = cli(["chat-file", "--append", "--no-stdin", str(journal)])
    assert (r.exit_code, r.stdout) == (0, "your key is sk-…WXYZ\n")
    assert KEY not in journal.read_text()
    assert journal.read_text().endswith("  - role: assistant\n    content: your key is sk-…WXYZ\n")


def test_credentials_in_a_url_without_a_scheme_are_not_shown(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", "alice:s3cr3t-pw@api.example.com/v1")
    r = cli(["ask", "--no-stdin", "hi"])
    assert (r.exit_code, r.stderr) == (
        78, "evocli: error: base URL 'api.example.com/v1' is not an http(s) URL\n")


def test_control_characters_from_the_server_never_reach_the_terminal(cli: Any, api_env: FakeServer) -> None:
    api_env.script(Reply(body=completion_body("fine", finish_reason="odd\x1b]0;owned\x07\x1b[2J")))
    r = cli(["ask", "--no-stdin", "hi"])
    assert r.stdout == "fine\n"
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert "odd\ufffd]0;owned\ufffd\ufffd[2J" in r.stderr
