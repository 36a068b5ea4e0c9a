"""Shared fixtures: an isolated home for every test, the local HTTP server, and CLI runners."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evocli.cli import app
from tests.server import FakeServer

KEY = "sk-test-0123456789abcdefWXYZ"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every folder evocli may touch at tmp_path and drop the user's evocli variables."""
    for name in list(os.environ):
        if name.startswith(("EVOLINK_", "EVOCLI_")) or name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("EVOCLI_CONFIG", str(tmp_path / "config" / "evocli" / "config.yaml"))
    monkeypatch.setenv("EVOCLI_LEDGER_DIR", str(tmp_path / "ledger"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may only open connections to 127.0.0.1: never to a real API."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def api_env(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """A key and a base URL pointing at the local server."""
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", server.base_url)
    return server


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


def invoke(args: Sequence[str], input: str | bytes | None = None, env: Mapping[str, str] | None = None) -> Run:
    """Run the app in-process; exceptions that escape are bugs and fail the test."""
    result = CliRunner().invoke(app, list(args), input=input, env=dict(env or {}), catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli() -> Any:
    return invoke


def with_called(stderr: str, url: str) -> str:
    """An HTTP error's expected stderr once its hint names the URL that was called."""
    if "\nhint: " in stderr:
        return stderr[:-1] + f"; called {url}\n"
    return stderr + f"hint: called {url}\n"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child evocli: this test's, without PYTHON* (no unbuffered hiding)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra or {})
    return env


def run_evocli(
    args: Sequence[str],
    *,
    input: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    stdin: Any = None,
) -> subprocess.CompletedProcess[str]:
    """Run evocli as a real process (python -m evocli), as a user's shell would."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "evocli", *args],
        input=data,
        stdin=stdin if data is None else None,
        capture_output=True,
        env=child_env(env),
        timeout=timeout,
        cwd=REPO,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )
