"""Configuration rules (SPEC §3): precedence, the config file, the key, URLs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evocli import apikey, config
from evocli.config import ConfigFile, Overrides, resolve
from evocli.errors import ConfigError, ExitCode
from tests.conftest import REPO, child_env

KEY = "sk-env-0123456789abcdef"


def write_config(path: Path, text: str, mode: int = 0o600) -> ConfigFile:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return config.load_config_file({"EVOCLI_CONFIG": str(path)})


def test_defaults(tmp_path: Path) -> None:
    s = resolve(Overrides(), {"EVOLINK_API_KEY": KEY, "HOME": str(tmp_path)}, ConfigFile(tmp_path / "c"))
    assert s.api_key == KEY
    assert s.base_url == "https://direct.evolink.ai/v1"
    assert s.fallback_base_url == "https://api.evolink.ai/v1"
    assert s.credits_url == "https://api.evolink.ai/v1/credits"
    assert s.model == "gpt-5.2"
    assert (s.timeout, s.connect_timeout, s.retries, s.retry_max_time) == (600.0, 10.0, 2, 120.0)
    assert s.ledger is True
    assert s.ledger_dir == tmp_path / ".local/state/evocli/usage"
    assert dict(s.params) == {}


def test_precedence_flags_over_conversation_over_env_over_file(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        "model: from-file\ntimeout: 30\nretries: 5\nparams: {temperature: 0.1, seed: 1, top_p: 0.5}\n",
    )
    env = {"EVOLINK_API_KEY": KEY, "EVOCLI_MODEL": "from-env"}
    s = resolve(Overrides(), env, cfg)
    assert (s.model, s.timeout, s.retries) == ("from-env", 30.0, 5)
    assert dict(s.params) == {"temperature": 0.1, "seed": 1, "top_p": 0.5}
    conv = Overrides(model="from-conversation", params={"seed": 2})
    s = resolve(Overrides(), env, cfg, conv)
    assert s.model == "from-conversation"
    assert dict(s.params) == {"temperature": 0.1, "seed": 2, "top_p": 0.5}
    flags = Overrides(model="from-flag", params={"seed": 3}, timeout=9, retries=0)
    s = resolve(flags, env, cfg, conv)
    assert (s.model, s.timeout, s.retries) == ("from-flag", 9.0, 0)
    assert dict(s.params) == {"temperature": 0.1, "seed": 3, "top_p": 0.5}


def test_config_location(tmp_path: Path) -> None:
    assert config.config_path({"EVOCLI_CONFIG": "/x/y.yaml", "XDG_CONFIG_HOME": "/z"}) == Path("/x/y.yaml")
    assert config.config_path({"XDG_CONFIG_HOME": "/z"}) == Path("/z/evocli/config.yaml")
    assert config.config_path({"HOME": "/h"}) == Path("/h/.config/evocli/config.yaml")


def test_missing_config_file_is_fine(tmp_path: Path) -> None:
    cfg = config.load_config_file({"EVOCLI_CONFIG": str(tmp_path / "nope.yaml")})
    assert dict(cfg.data) == {}


def test_unknown_key_is_exit_78_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", "model: x\nretires: 3\n")
    assert info.value.code == ExitCode.CONFIG == 78
    assert info.value.message == f"config file {tmp_path / 'c.yaml'}: unknown key 'retires'"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("timeout: soon\n", "timeout: expected a positive number of seconds"),
        ("timeout: 0\n", "timeout: expected a positive number of seconds"),
        ("retries: -1\n", "retries: expected a whole number, 0 or more"),
        ("retries: 1.5\n", "retries: expected a whole number, 0 or more"),
        ("ledger: maybe\n", "ledger: expected true or false"),
        ("params: [1, 2]\n", "params: expected a mapping, got a list"),
        ("model: 5\n", "model: expected a string, got a number"),
        ("- a\n- b\n", "expected a mapping of keys, got a list"),
    ],
)
def test_bad_values_are_exit_78(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", text)
    assert info.value.message == f"config file {tmp_path / 'c.yaml'}: {problem}"


def test_bad_yaml_is_exit_78_with_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", "model: x\ntimeout: [1\n")
    assert info.value.message.startswith(f"config file {tmp_path / 'c.yaml'}:3: ")


def test_empty_config_file_is_fine(tmp_path: Path) -> None:
    assert dict(write_config(tmp_path / "c.yaml", "# nothing yet\n").data) == {}


def test_key_precedence(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", "api_key: sk-file-key-000000000\napi_key_command: fake\n")
    calls: list[str] = []

    def cmd(command: str) -> str:
        calls.append(command)
        return "sk-from-command-00000"

    assert resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, cfg, key_command=cmd).api_key == KEY
    assert calls == []
    assert resolve(Overrides(), {}, cfg, key_command=cmd).api_key == "sk-from-command-00000"
    assert calls == ["fake"]
    cfg2 = write_config(tmp_path / "d.yaml", "api_key: sk-file-key-000000000\n")
    assert resolve(Overrides(), {}, cfg2).api_key == "sk-file-key-000000000"


def test_no_key_is_exit_78_with_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(Overrides(), {}, ConfigFile(tmp_path / "c"))
    assert info.value.message == "no API key configured"
    assert "EVOLINK_API_KEY" in (info.value.hint or "")
    assert resolve(Overrides(), {}, ConfigFile(tmp_path / "c"), need_key=False).api_key is None


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_key_in_open_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "c.yaml"
    with pytest.raises(ConfigError) as info:
        write_config(path, "api_key: sk-file-key-000000000\n", mode)
    assert info.value.code == 78
    assert info.value.message == (
        f"config file {path} holds api_key but is readable by others (mode {mode:o})"
    )
    assert info.value.hint == f"chmod 600 {path}"
    assert "sk-file" not in info.value.message


def test_open_file_without_key_is_fine(tmp_path: Path) -> None:
    assert write_config(tmp_path / "c.yaml", "model: m\n", 0o644).data == {"model": "m"}


def test_key_command_runs_without_shell(tmp_path: Path) -> None:
    script = tmp_path / "print key.py"
    script.write_text("import sys; print('  sk-cmd-key-123456789  '); print(sys.argv[1:], file=sys.stderr)")
    key = apikey.run_key_command(f"{sys.executable} '{script}' '$HOME' 'a;b'")
    assert key == "sk-cmd-key-123456789"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/nonexistent/cmd", "api_key_command: /nonexistent/cmd: command not found"),
        (f"{sys.executable} -c 'import sys; print(\"no vault\", file=sys.stderr); sys.exit(3)'",
         "api_key_command exited with status 3: no vault"),
        (f"{sys.executable} -c 'pass'", "api_key_command printed no key"),
        ("'unclosed", "api_key_command cannot be parsed: No closing quotation"),
    ],
)
def test_key_command_failures_are_exit_78(command: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        apikey.run_key_command(command)
    assert info.value.code == 78
    assert info.value.message == message


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/v1", "http://localhost/v1", "http://[::1]:9/v1", "https://example.com/v1/"],
)
def test_allowed_urls(url: str, tmp_path: Path) -> None:
    s = resolve(Overrides(), {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": url}, ConfigFile(tmp_path / "c"))
    assert s.base_url == url.rstrip("/")
    assert s.fallback_base_url is None


@pytest.mark.parametrize("url", ["http://example.com/v1", "http://10.0.0.5/v1", "ftp://x/v1", "direct.evolink.ai",
                                 "http://evolink.localhost:8080/v1", "http://localhost.example.com/v1"])
def test_insecure_or_bad_urls_are_exit_78(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(Overrides(), {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": url}, ConfigFile(tmp_path / "c"))
    assert info.value.code == 78


def test_base_url_from_file_and_env(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", "base_url: https://api.evolink.ai/v1\ncredits_url: https://c.example/credits\n")
    s = resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, cfg)
    assert (s.base_url, s.fallback_base_url, s.credits_url) == (
        "https://api.evolink.ai/v1", None, "https://c.example/credits"
    )
    s = resolve(Overrides(), {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": "https://e.example/v1",
                              "EVOLINK_CREDITS_URL": "https://e.example/v1/credits"}, cfg)
    assert (s.base_url, s.credits_url) == ("https://e.example/v1", "https://e.example/v1/credits")


def test_explicit_fallback(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", "base_url: https://a.example/v1\nfallback_base_url: https://b.example/v1\n")
    assert resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, cfg).fallback_base_url == "https://b.example/v1"
    cfg = write_config(tmp_path / "d.yaml", "fallback_base_url: null\n")
    assert resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, cfg).fallback_base_url is None


def test_ledger_switches(tmp_path: Path) -> None:
    base = {"EVOLINK_API_KEY": KEY}
    none = ConfigFile(tmp_path / "c")
    assert resolve(Overrides(), {**base, "EVOCLI_NO_LEDGER": "1"}, none).ledger is False
    assert resolve(Overrides(), {**base, "EVOCLI_NO_LEDGER": "0"}, none).ledger is True
    assert resolve(Overrides(ledger=False), base, none).ledger is False
    off = write_config(tmp_path / "c.yaml", "ledger: false\nledger_dir: ~/ledger\n")
    s = resolve(Overrides(), {**base, "HOME": str(tmp_path)}, off)
    assert s.ledger is False
    assert s.ledger_dir == Path(os.path.expanduser("~/ledger"))
    s = resolve(Overrides(), {**base, "EVOCLI_LEDGER_DIR": str(tmp_path / "L")}, off)
    assert s.ledger_dir == tmp_path / "L"
    s = resolve(Overrides(), {**base, "XDG_STATE_HOME": "/state"}, none)
    assert s.ledger_dir == Path("/state/evocli/usage")


# --- values that would crash later, duplicate keys, aliases ---------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("params: {messages: []}\n",
         "params cannot set 'messages': they come from the prompt, the conversation file or the batch line"),
        ("params: {stream: true}\n", "params cannot set 'stream': use --stream / --no-stream"),
        ("params: {temperature: .nan}\n", "params.temperature: NaN is not a JSON number"),
        ("params: {temperature: .inf}\n", "params.temperature: Infinity is not a JSON number"),
        ("params: {stop: [a, -.inf]}\n", "params.stop: -Infinity is not a JSON number"),
        ("params: {seed: 2026-01-01}\n", "params.seed: a date is not a JSON value (quote it to send it as text)"),
        ("params: {1: x}\n", "params: keys must be text, got 1"),
        *[(f"{key}: {value}\n", f"{key}: expected a positive number of seconds")
          for key in ("timeout", "connect_timeout", "retry_max_time") for value in (".inf", ".nan", "-.inf")],
        ('base_url: ""\n', "base_url: expected a URL, got an empty string"),
        ("credits_url: ''\n", "credits_url: expected a URL, got an empty string"),
        ("credits_url: '  '\n", "credits_url: expected a URL, got an empty string"),
    ],
)
def test_values_that_cannot_be_used_are_exit_78(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", text)
    assert info.value.code == 78
    assert info.value.message == f"config file {tmp_path / 'c.yaml'}: {problem}"


def test_an_empty_fallback_url_still_means_none(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", 'fallback_base_url: ""\n')
    assert resolve(Overrides(), {"EVOLINK_API_KEY": KEY}, cfg).fallback_base_url is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("model: a\ntimeout: 5\nmodel: b\n", "3: duplicate key 'model'"),
        ("params:\n  seed: 1\n  top_p: 0.5\n  seed: 2\n", "4: duplicate key 'seed'"),
        ("model: a\n---\nmodel: b\n", "2: a second YAML document starts here; a config file holds one"),
        ("model: !!python/object/apply:os.system [id]\n",
         "1: tag !!python/object/apply:os.system is not allowed: only plain YAML data is loaded"),
        ("params: &p {user: *p}\n", "1: a recursive alias is not allowed"),
    ],
)
def test_yaml_that_is_refused_names_the_line(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", text)
    assert info.value.code == 78
    assert info.value.message == f"config file {tmp_path / 'c.yaml'}:{problem}"


def test_alias_bomb_in_the_config_file_is_refused_fast(tmp_path: Path) -> None:
    levels = ["  l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]\n"]
    levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10)]
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        write_config(tmp_path / "c.yaml", "params:\n" + "".join(levels))
    assert time.monotonic() - started < 1.0
    assert info.value.code == 78
    assert info.value.message == (
        f"config file {tmp_path / 'c.yaml'}: its aliases would expand it to 16,180,858,894 nodes and characters, "
        "beyond the limit of 1,000,850: refused")
    assert info.value.hint == "write the repeated text out, or use fewer nested aliases"


def test_modest_aliases_in_the_config_file_are_fine(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", "params: {stop: &s [a, b], metadata: {stop: *s}}\n")
    assert cfg.data == {"params": {"stop": ["a", "b"], "metadata": {"stop": ["a", "b"]}}}


def test_config_and_its_yaml_guard_keep_yaml_unloaded_until_a_file_is_read() -> None:
    code = "import sys, evocli.config, evocli.yamlsafe\nprint('yaml' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=child_env(), check=True)
    assert out.stdout == "False\n"
