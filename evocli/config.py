"""Settings: flags, environment, config file and defaults resolved in one place."""

from __future__ import annotations

import ipaddress
import math
import os
import shlex
import stat
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from evocli.errors import ConfigError

DEFAULT_BASE_URL = "https://direct.evolink.ai/v1"
DEFAULT_FALLBACK_URL = "https://api.evolink.ai/v1"
DEFAULT_CREDITS_URL = "https://api.evolink.ai/v1/credits"
DEFAULT_MODEL = "gpt-5.2"
DEFAULT_TIMEOUT = 600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_RETRIES = 2
DEFAULT_RETRY_MAX_TIME = 120.0
KEY_COMMAND_TIMEOUT = 60.0
# The longest wait any timeout may ask for: a week (larger values overflow the clock's range).
MAX_SECONDS = 7 * 24 * 3600

KEY_HINT = "set EVOLINK_API_KEY (keys start with sk-; create one at https://evolink.ai/dashboard/keys)"

# Body fields that no settings layer may set, and why.
RESERVED_PARAMS = {
    "messages": "they come from the prompt, the conversation file or the batch line",
    "stream": "use --stream / --no-stream",
}

# Every key the config file may hold, with the kind of value it takes.
CONFIG_KEYS: dict[str, str] = {
    "api_key": "string",
    "api_key_command": "string",
    "base_url": "url",
    "fallback_base_url": "url-or-empty",
    "credits_url": "url",
    "model": "string",
    "params": "mapping",
    "timeout": "seconds",
    "connect_timeout": "seconds",
    "retries": "count",
    "retry_max_time": "seconds",
    "ledger": "bool",
    "ledger_dir": "string",
}


@dataclass(frozen=True)
class ConfigFile:
    """The parsed config file; `data` is empty when there is no file."""

    path: Path
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Overrides:
    """One layer of settings above the environment: command-line flags, or a conversation file.

    None means "not given", so a lower layer shows through.
    """

    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    connect_timeout: float | None = None
    retries: int | None = None
    retry_max_time: float | None = None
    ledger: bool | None = None


@dataclass(frozen=True)
class Settings:
    """Everything a call needs, resolved once."""

    api_key: str | None
    key_source: str  # EVOLINK_API_KEY, api_key_command, api_key, or none
    base_url: str
    fallback_base_url: str | None
    credits_url: str
    model: str
    params: Mapping[str, Any]
    timeout: float
    connect_timeout: float
    retries: int
    retry_max_time: float
    ledger: bool
    ledger_dir: Path
    config_path: Path


def config_path(env: Mapping[str, str]) -> Path:
    """Where the config file lives: $EVOCLI_CONFIG, else the XDG config folder."""
    if env.get("EVOCLI_CONFIG"):
        return Path(env["EVOCLI_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "evocli" / "config.yaml"


def default_ledger_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local/state")
    return Path(base) / "evocli" / "usage"


def load_config_file(env: Mapping[str, str]) -> ConfigFile:
    """Read and check the config file. A missing file is an empty config."""
    path = config_path(env)
    try:
        # O_NONBLOCK: opening a FIFO in the config file's place would wait for a writer, forever.
        with open(path, "rb", opener=lambda name, flags: os.open(name, flags | os.O_NONBLOCK)) as fh:
            info = os.fstat(fh.fileno())
            mode = info.st_mode
            if stat.S_ISREG(mode):
                raw = fh.read()
            elif stat.S_ISCHR(mode) and info.st_rdev == os.stat(os.devnull).st_rdev:
                raw = b""  # EVOCLI_CONFIG=/dev/null: no config at all, as git allows for its own
            else:
                raise ConfigError(f"config file {path} is not a regular file")
    except FileNotFoundError:
        return ConfigFile(path)
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    data = parse_config_text(raw, str(path))
    if "api_key" in data and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"config file {path} holds api_key but is readable by others "
            f"(mode {stat.S_IMODE(mode):o})",
            hint=f"chmod 600 {shlex.quote(str(path))}",
        )
    return ConfigFile(path, data)


def parse_config_text(raw: bytes, name: str) -> dict[str, Any]:
    """Parse and validate the config file's text (pure).

    It is loaded like a conversation file (safe loading, one document, no duplicate keys, aliases
    bounded), and every value is checked here, so that nothing in it can fail later.
    """
    from evocli import yamlsafe

    _, data = yamlsafe.load(raw, f"config file {name}", what="config file", error=ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {name}: expected a mapping of keys, got {_kind(data)}")
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            known = ", ".join(CONFIG_KEYS)
            raise ConfigError(f"config file {name}: unknown key {key!r}", hint=f"known keys: {known}")
        problem = _check_value(CONFIG_KEYS[key], value)
        if problem:
            raise ConfigError(f"config file {name}: {key}: {problem}")
        if key == "params":
            _check_params(value, name)
    return data


def _check_params(params: dict[Any, Any], name: str) -> None:
    """The body fields of `params:`: text keys, none reserved, values JSON can carry."""
    from evocli.client import json_problem

    for key, value in params.items():
        if not isinstance(key, str):
            raise ConfigError(f"config file {name}: params: keys must be text, got {key!r}")
        if key in RESERVED_PARAMS:
            raise ConfigError(f"config file {name}: params cannot set {key!r}: {RESERVED_PARAMS[key]}")
        problem = json_problem(value)
        if problem:
            raise ConfigError(f"config file {name}: params.{key}: {problem}")


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _check_value(kind: str, value: Any) -> str | None:
    if kind == "string" and not isinstance(value, str):
        return f"expected a string, got {_kind(value)}"
    if kind in ("url", "url-or-empty"):
        if value is None and kind == "url-or-empty":
            return None
        if not isinstance(value, str):
            return f"expected a URL, got {_kind(value)}"
        if not value.strip() and kind == "url":
            return "expected a URL, got an empty string"
    if kind == "mapping" and not isinstance(value, dict):
        return f"expected a mapping, got {_kind(value)}"
    if kind == "bool" and not isinstance(value, bool):
        return "expected true or false"
    if kind == "seconds" and (
        isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf
    ):
        return "expected a positive number of seconds"
    if kind == "seconds" and value > MAX_SECONDS:
        return f"at most {MAX_SECONDS} seconds (a week)"
    if kind == "count" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        return "expected a whole number, 0 or more"
    return None


def check_url(url: str, what: str) -> str:
    """Refuse URLs that would send the key in clear text or that are not HTTP(S) at all."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} {url!r} uses plain http to a non-loopback host: the key would travel in clear",
            hint="use https://",
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    # Only names that never leave the machine: a "*.localhost" name may still be sent to DNS.
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def run_key_command(command: str) -> str:
    """Run `api_key_command` without a shell; its stripped stdout is the key."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"api_key_command cannot be parsed: {exc}") from None
    if not argv:
        raise ConfigError("api_key_command is empty")
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=KEY_COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ConfigError(f"api_key_command: {argv[0]}: command not found") from None
    except PermissionError:
        raise ConfigError(f"api_key_command: {argv[0]}: permission denied") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"api_key_command did not finish within {KEY_COMMAND_TIMEOUT:g} s"
        ) from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise ConfigError(f"api_key_command exited with status {done.returncode}{detail}")
    key = done.stdout.decode("utf-8", "replace").strip()
    if not key:
        raise ConfigError("api_key_command printed no key")
    return key


def resolve(
    flags: Overrides,
    env: Mapping[str, str],
    cfg: ConfigFile,
    conversation: Overrides | None = None,
    *,
    need_key: bool = True,
    key_command: Callable[[str], str] = run_key_command,
) -> Settings:
    """Merge the layers: flags > conversation file > environment > config file > defaults."""
    file = cfg.data
    layers = [flags, conversation or Overrides()]

    def pick(name: str, env_value: Any, file_key: str, default: Any) -> Any:
        for layer in layers:
            value = getattr(layer, name)
            if value is not None:
                return value
        if env_value is not None:
            return env_value
        if file.get(file_key) is not None:
            return file[file_key]
        return default

    params: dict[str, Any] = dict(file.get("params") or {})
    for layer in reversed(layers):
        params.update(layer.params)

    base_url = check_url(
        env.get("EVOLINK_BASE_URL") or file.get("base_url") or DEFAULT_BASE_URL, "base URL"
    )
    if "fallback_base_url" in file:
        fallback = file["fallback_base_url"] or None
    else:
        fallback = DEFAULT_FALLBACK_URL if base_url == DEFAULT_BASE_URL else None
    if fallback is not None:
        fallback = check_url(fallback, "fallback base URL")
    credits_url = check_url(
        env.get("EVOLINK_CREDITS_URL") or file.get("credits_url") or DEFAULT_CREDITS_URL,
        "credits URL",
    )

    ledger_env = False if _env_flag(env.get("EVOCLI_NO_LEDGER")) else None
    ledger_dir = env.get("EVOCLI_LEDGER_DIR") or file.get("ledger_dir")

    api_key, key_source = _resolve_key(env, file, need_key, key_command)
    return Settings(
        api_key=api_key,
        key_source=key_source,
        base_url=base_url,
        fallback_base_url=fallback,
        credits_url=credits_url,
        model=pick("model", env.get("EVOCLI_MODEL") or None, "model", DEFAULT_MODEL),
        params=params,
        timeout=float(pick("timeout", None, "timeout", DEFAULT_TIMEOUT)),
        connect_timeout=float(
            pick("connect_timeout", None, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        ),
        retries=int(pick("retries", None, "retries", DEFAULT_RETRIES)),
        retry_max_time=float(pick("retry_max_time", None, "retry_max_time", DEFAULT_RETRY_MAX_TIME)),
        ledger=bool(pick("ledger", ledger_env, "ledger", True)),
        ledger_dir=Path(ledger_dir).expanduser() if ledger_dir else default_ledger_dir(env),
        config_path=cfg.path,
    )


def _resolve_key(
    env: Mapping[str, str],
    file: Mapping[str, Any],
    need_key: bool,
    key_command: Callable[[str], str],
) -> tuple[str | None, str]:
    """The key and where it came from. Without need_key, api_key_command is not run (it may
    prompt for a passphrase): the key is then None and the source says so."""
    key, source = env.get("EVOLINK_API_KEY", "").strip(), "EVOLINK_API_KEY"
    if not key and file.get("api_key_command"):
        if not need_key:
            return None, "api_key_command"
        key, source = key_command(file["api_key_command"]), "api_key_command"
    if not key and file.get("api_key"):
        key, source = str(file["api_key"]).strip(), "api_key"
    if not key:
        if need_key:
            raise ConfigError("no API key configured", hint=KEY_HINT)
        return None, "none"
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        # Never echo it: the message names the source only.
        raise ConfigError(
            f"the API key from {source} has characters that cannot be sent in a header",
            hint="look for a stray space, line break, quote or non-ASCII character in it",
        )
    return key, source
