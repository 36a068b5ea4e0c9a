"""The API key: from EVOLINK_API_KEY, `api_key_command` or `api_key`, and never one that cannot be sent."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from evocli.errors import ConfigError

KEY_COMMAND_TIMEOUT = 60.0
KEY_HINT = "set EVOLINK_API_KEY (keys start with sk-; create one at https://evolink.ai/dashboard/keys)"


def run_key_command(command: str) -> str:
    """Run `api_key_command` without a shell; its stripped stdout is the key."""
    import subprocess  # only when there is a command to run: it costs start-up time

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"api_key_command cannot be parsed: {exc}") from None
    if not argv:
        raise ConfigError("api_key_command is empty")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=KEY_COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise ConfigError(f"api_key_command: {argv[0]}: command not found") from None
    except PermissionError:
        raise ConfigError(f"api_key_command: {argv[0]}: permission denied") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"api_key_command did not finish within {KEY_COMMAND_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = f": {lines[-1]}" if lines else ""
        raise ConfigError(f"api_key_command exited with status {done.returncode}{detail}")
    key = done.stdout.decode("utf-8", "replace").strip()
    if not key:
        raise ConfigError("api_key_command printed no key")
    return key


def resolve_key(
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
