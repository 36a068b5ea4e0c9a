"""`evocli config` and `config check`: each setting's value and source, the key never shown; the
checks against the local server; base URL mistakes caught before any request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY
from tests.server import FakeServer, Reply


def write_config(isolated: Path, text: str) -> Path:
    path = isolated / "config" / "evocli" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_each_source_is_named(cli: Any, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(isolated, "timeout: 30\nparams: {seed: 7}\napi_key: " + KEY + "\n")
    monkeypatch.setenv("EVOLINK_BASE_URL", "http://localhost:8080/v1")
    r = cli(["config", "-m", "gpt-5.5", "--retries", "4"])
    assert r.exit_code == 0, r.stderr
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in r.stdout.splitlines()[1:14]}
    assert rows["model"] == ["gpt-5.5", "command line"]
    assert rows["retries"] == ["4", "command line"]
    assert rows["base_url"] == ["http://localhost:8080/v1", "environment EVOLINK_BASE_URL"]
    assert rows["timeout"] == ["30", f"config file {path}"]
    assert rows["params"] == ['{"seed":7}', f"config file {path}"]
    assert rows["connect_timeout"] == ["10", "default"]
    assert rows["api_key"] == ["sk-…WXYZ", f"config file {path} (api_key)"]
    assert r.stdout.endswith(f"\nconfig file: {path}\n")
    assert KEY not in r.stdout + r.stderr


def test_json_and_the_key_from_the_environment(cli: Any, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    r = cli(["config", "--json"])
    doc = json.loads(r.stdout)
    assert doc["settings"]["api_key"] == {"value": "sk-…WXYZ", "source": "environment EVOLINK_API_KEY"}
    assert doc["settings"]["ledger"] == {"value": True, "source": "default"}
    assert doc["ledger_dir"] == str(isolated / "ledger")
    assert doc["settings"]["ledger_dir"]["source"] == "environment EVOCLI_LEDGER_DIR"
    assert doc["config_file_found"] is False
    assert list(doc["settings"]) == [
        "api_key", "api_key_command", "base_url", "fallback_base_url", "credits_url", "model", "params",
        "timeout", "connect_timeout", "retries", "retry_max_time", "max_response_bytes", "ledger", "ledger_dir",
        "prices", "price_unit",
    ]
    assert doc["settings"]["prices"] == {"value": {}, "source": "default"}
    assert doc["settings"]["price_unit"] == {"value": "USD", "source": "default"}
    assert KEY not in r.stdout


def test_a_key_command_is_not_run_by_config(cli: Any, isolated: Path) -> None:
    marker = isolated / "ran"
    write_config(isolated, f"api_key_command: touch {marker}\n")
    r = cli(["config"])
    assert r.exit_code == 0
    assert not marker.exists()
    assert "(api_key_command, not run here)" in r.stdout


def test_check_passes_against_the_server(cli: Any, api_env: FakeServer, isolated: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_CREDITS_URL", api_env.url + "/v1/credits")
    r = cli(["config", "check"])
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ok      key           sk-…WXYZ from environment EVOLINK_API_KEY"
    assert lines[1].startswith("ok      config file   ") and lines[1].endswith(": not found (defaults apply)")
    assert lines[2] == f"ok      base URL      {api_env.base_url}"
    assert lines[3].startswith(f"ok      credits       {api_env.url}/v1/credits answered in ")
    assert [(r.method, r.path) for r in api_env.requests] == [("GET", "/v1/credits")]
    assert KEY not in r.stdout + r.stderr


def test_check_reports_a_refused_key_with_its_exit_code(cli: Any, api_env: FakeServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_CREDITS_URL", api_env.url + "/v1/credits")
    api_env.script(Reply(status=401, body={"error": {"message": "Invalid token"}}))
    r = cli(["config", "check", "--json"])
    assert r.exit_code == 77
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert [(c["check"], c["ok"]) for c in doc["checks"]] == [
        ("key", True), ("config file", True), ("base URL", True), ("credits", False)
    ]
    assert r.stderr.startswith('evocli: error: HTTP 401 Unauthorized: "Invalid token"')


def test_check_without_a_key_is_78(cli: Any) -> None:
    r = cli(["config", "check"])
    assert r.exit_code == 78
    assert r.stdout == "FAILED  settings      no API key configured\n"


def test_check_finds_a_base_url_ending_in_the_endpoint(cli: Any, api_env: FakeServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_BASE_URL", api_env.base_url + "/chat/completions")
    monkeypatch.setenv("EVOLINK_CREDITS_URL", api_env.url + "/v1/credits")
    r = cli(["config", "check"])
    assert r.exit_code == 78
    assert (f"FAILED  base URL      it ends in /chat/completions, which evocli adds itself: use "
            f"{api_env.base_url}\n") in r.stdout


def test_a_base_url_ending_in_the_endpoint_is_warned_before_the_call(cli: Any, api_env: FakeServer,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_BASE_URL", api_env.base_url + "/chat/completions/")
    r = cli(["ask", "--no-stdin", "hi"])
    assert r.stderr.startswith(
        f"evocli: warning: base URL {api_env.base_url}/chat/completions: it ends in /chat/completions, "
        f"which evocli adds itself: use {api_env.base_url}\n")
    assert api_env.requests[0].path == "/v1/chat/completions/chat/completions"
