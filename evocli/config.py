"""Settings: flags, environment, config file and defaults resolved in one place."""

from __future__ import annotations

import ipaddress
import math
import os
import shlex
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evocli import apikey
from evocli.errors import ConfigError

if TYPE_CHECKING:
    from evocli.cost import Prices

DEFAULT_BASE_URL = "https://direct.evolink.ai/v1"
DEFAULT_FALLBACK_URL = "https://api.evolink.ai/v1"
DEFAULT_CREDITS_URL = "https://api.evolink.ai/v1/credits"
DEFAULT_MODEL = "gpt-5.2"
# The longest wait any timeout may ask for: a week (larger values overflow the clock's range).
MAX_SECONDS = 7 * 24 * 3600

# Model ids documented for the chat completions endpoint, offered by TAB after -m (any id is sent).
KNOWN_MODELS = (
    "gpt-5.2", "gpt-5.5", "gpt-5.4", "gpt-5.1", "gpt-5.1-chat", "gpt-5.1-thinking",
    "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "evolink/auto",
)



@dataclass(frozen=True)
class Key:
    """One setting: the kind of value it takes, its default, variable, flag and meaning.

    The config file accepts exactly these names; the README's configuration table is checked
    against them (tests/test_docs.py).
    """

    name: str
    kind: str  # string, id, url, url-or-null, mapping, seconds, count, size, bool, path, prices, label
    doc: str
    default: Any = None
    env: str | None = None
    flag: str | None = None


KEYS: tuple[Key, ...] = (
    Key("api_key", "string", "the API key; only in a file nobody else can read", env="EVOLINK_API_KEY"),
    Key("api_key_command", "string", "a command, run without a shell, whose output is the key"),
    Key("base_url", "url", "the API base URL", DEFAULT_BASE_URL, env="EVOLINK_BASE_URL"),
    Key("fallback_base_url", "url-or-null", "tried when the default base URL is down; null for none",
        DEFAULT_FALLBACK_URL),
    Key("credits_url", "url", "the credits endpoint", DEFAULT_CREDITS_URL, env="EVOLINK_CREDITS_URL"),
    Key("model", "id", "the model", DEFAULT_MODEL, env="EVOCLI_MODEL", flag="-m"),
    Key("params", "mapping", "body fields sent with every call", {}, flag="-p"),
    Key("timeout", "seconds", "idle read timeout in seconds", 600.0, flag="--timeout"),
    Key("connect_timeout", "seconds", "connect timeout in seconds", 10.0, flag="--connect-timeout"),
    Key("retries", "count", "retries of temporary failures", 2, flag="--retries"),
    Key("retry_max_time", "seconds", "the whole retry window in seconds", 120.0, flag="--retry-max-time"),
    Key("max_response_bytes", "size", "the most an answer may hold once decoded", 64 << 20),
    Key("ledger", "bool", "record calls in the usage ledger", True, env="EVOCLI_NO_LEDGER",
        flag="--no-ledger"),
    Key("ledger_dir", "path", "the usage ledger's folder (`$XDG_STATE_HOME` is `~/.local/state` when unset)",
        "$XDG_STATE_HOME/evocli/usage",
        env="EVOCLI_LEDGER_DIR"),
    Key("prices", "prices", "per model: `input`, `cached_input`, `output` prices per million tokens", {}),
    Key("price_unit", "label", "the currency the prices are in", "USD"),
)
KEY_BY_NAME = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class ConfigFile:
    """The parsed config file; `data` is empty when there is no file."""

    path: Path
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Overrides:
    """One layer of settings above the environment: command-line flags, or a conversation file.

    None means "not given", so a lower layer shows through. Each field is the config key of
    the same name.
    """

    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    connect_timeout: float | None = None
    retries: int | None = None
    retry_max_time: float | None = None
    ledger: bool | None = None


# The settings that the layers above the environment may give (the fields of Overrides).
LAYERED = ("model", "timeout", "connect_timeout", "retries", "retry_max_time", "ledger")


@dataclass(frozen=True)
class Settings:
    """Everything a call needs, resolved once; `sources` says where each setting came from."""

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
    max_response_bytes: int
    ledger: bool
    ledger_dir: Path
    config_path: Path
    sources: Mapping[str, str] = field(default_factory=dict)
    config_data: Mapping[str, Any] = field(default_factory=dict)
    # The config file's `prices:` in its unit; None when it prices no model (no cost is shown).
    prices: Prices | None = None


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
        if key not in KEY_BY_NAME:
            known = ", ".join(KEY_BY_NAME)
            raise ConfigError(f"config file {name}: unknown key {key!r}", hint=f"known keys: {known}")
        problem = _check_value(KEY_BY_NAME[key].kind, value)
        if problem:
            raise ConfigError(f"config file {name}: {key}: {problem}")
        if key == "params":
            _check_params(value, name)
    return data


def _check_params(params: dict[Any, Any], name: str) -> None:
    """The body fields of `params:`, by the rule every settings layer shares."""
    from evocli.body import params_problem

    problem = params_problem(params)
    if problem:
        raise ConfigError(f"config file {name}: {problem}")


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _check_value(kind: str, value: Any) -> str | None:
    if kind in ("prices", "label"):
        from evocli import cost

        # An empty `prices:` (every model commented out) prices nothing, as if it were not there.
        if value is None and kind == "prices":
            return None
        return cost.prices_problem(value) if kind == "prices" else cost.price_unit_problem(value)
    if kind in ("string", "path", "id") and not isinstance(value, str):
        return f"expected a string, got {_kind(value)}"
    if kind == "id" and not value.strip():
        return "expected a model id, got an empty string"
    if kind in ("url", "url-or-null"):
        if value is None and kind == "url-or-null":
            return None
        if not isinstance(value, str):
            return f"expected a URL, got {_kind(value)}"
        if not value.strip() and kind == "url":
            return "expected a URL, got an empty string"
    if kind == "mapping" and not isinstance(value, dict):
        return f"expected a mapping, got {_kind(value)}"
    if kind == "bool" and not isinstance(value, bool):
        return "expected true or false"
    if kind == "seconds":
        return seconds_problem(value)
    if kind == "count" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        return "expected a whole number, 0 or more"
    if kind == "size" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        return "expected a whole number of bytes, 1 or more"
    return None


def seconds_problem(value: Any) -> str | None:
    """Why a value is not a usable number of seconds (a flag or the config file), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        return "expected a positive number of seconds"  # refuses nan and inf too
    if value > MAX_SECONDS:
        return f"at most {MAX_SECONDS} seconds (a week)"
    return None


def check_url(url: str, what: str) -> str:
    """Refuse URLs that would send the key in clear text or that are not HTTP(S) at all."""
    from evocli.redact import redact_url

    parts = urlsplit(url)
    # Shown without credentials; a value that is not an http(s) URL may still hold `user:pw@`.
    shown = redact_url(url) if parts.scheme in ("http", "https") else url.rpartition("@")[2]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {shown!r} is not an http(s) URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"{what} {shown!r} uses plain http to a non-loopback host: the key would travel in clear",
            hint="use https://",
        )
    return url.rstrip("/")


def base_url_problem(url: str) -> str | None:
    """A base URL mistake that would send every call to the wrong place, or None.

    evocli appends /chat/completions itself, so a base URL that already ends with it sends
    calls to .../chat/completions/chat/completions.
    """
    path = urlsplit(url).path.rstrip("/")
    if path.endswith("/chat/completions"):
        fixed = url.rstrip("/")[: -len("/chat/completions")]
        return f"it ends in /chat/completions, which evocli adds itself: use {fixed}"
    return None


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


class _Layers:
    """Finds each setting in the first layer that has it, and remembers which one that was."""

    def __init__(
        self, flags: Overrides, conversation: Overrides | None, env: Mapping[str, str], cfg: ConfigFile
    ) -> None:
        self.layers = [(flags, "command line"), (conversation or Overrides(), "conversation file")]
        self.env, self.cfg = env, cfg
        self.sources: dict[str, str] = {}

    def env_value(self, key: Key) -> Any:
        """The environment's value for a key (an empty variable counts as unset)."""
        if key.env is None or not self.env.get(key.env):
            return None
        if key.name == "ledger":
            return False if _env_flag(self.env[key.env]) else None
        return self.env[key.env]

    def pick(self, name: str) -> Any:
        key = KEY_BY_NAME[name]
        if name in LAYERED:
            for layer, label in self.layers:
                value = getattr(layer, name)
                if value is not None:
                    return self.found(name, value, label)
        value = self.env_value(key)
        if value is not None:
            return self.found(name, value, f"environment {key.env}")
        if self.cfg.data.get(name) is not None:
            return self.found(name, self.cfg.data[name], f"config file {self.cfg.path}")
        return self.found(name, key.default, "default")

    def found(self, name: str, value: Any, source: str) -> Any:
        self.sources[name] = source
        return value

    def params(self) -> dict[str, Any]:
        """Body fields merged by field: config file, then conversation file, then flags."""
        params: dict[str, Any] = dict(self.cfg.data.get("params") or {})
        given = [f"config file {self.cfg.path}"] if params else []
        for layer, label in reversed(self.layers):
            params.update(layer.params)
            given += [label] if layer.params else []
        self.sources["params"] = " + ".join(reversed(given)) or "default"
        return params


def _prices(layers: _Layers) -> Prices | None:
    """The prices of the config file; the cost module loads only when there are some."""
    given = {name: layers.pick(name) for name in ("prices", "price_unit")}
    if not given["prices"]:
        return None
    from evocli.cost import prices_from_config

    return prices_from_config(given)


def resolve(
    flags: Overrides,
    env: Mapping[str, str],
    cfg: ConfigFile,
    conversation: Overrides | None = None,
    *,
    need_key: bool = True,
    key_command: Callable[[str], str] | None = None,
) -> Settings:
    """Merge the layers: flags > conversation file > environment > config file > defaults."""
    layers = _Layers(flags, conversation, env, cfg)
    base_url = check_url(layers.pick("base_url"), "base URL")
    if "fallback_base_url" in cfg.data:  # null or "" turns it off
        source = f"config file {cfg.path}"
        fallback = layers.found("fallback_base_url", cfg.data["fallback_base_url"] or None, source)
    else:  # the documented fallback belongs to the default host only
        default = DEFAULT_FALLBACK_URL if base_url == DEFAULT_BASE_URL else None
        fallback = layers.found("fallback_base_url", default, "default")
    ledger_dir = layers.pick("ledger_dir")
    api_key, key_source = apikey.resolve_key(env, cfg.data, need_key, key_command or apikey.run_key_command)
    layers.sources["api_key"] = key_source
    return Settings(
        api_key=api_key,
        key_source=key_source,
        base_url=base_url,
        fallback_base_url=None if fallback is None else check_url(fallback, "fallback base URL"),
        credits_url=check_url(layers.pick("credits_url"), "credits URL"),
        model=layers.pick("model"),
        params=layers.params(),
        timeout=float(layers.pick("timeout")),
        connect_timeout=float(layers.pick("connect_timeout")),
        retries=int(layers.pick("retries")),
        retry_max_time=float(layers.pick("retry_max_time")),
        max_response_bytes=int(layers.pick("max_response_bytes")),
        ledger=bool(layers.pick("ledger")),
        ledger_dir=default_ledger_dir(env) if ledger_dir == KEY_BY_NAME["ledger_dir"].default
        else Path(ledger_dir).expanduser(),
        config_path=cfg.path,
        sources=layers.sources,
        config_data=cfg.data,
        prices=_prices(layers),
    )
