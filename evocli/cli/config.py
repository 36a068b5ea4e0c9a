"""`evocli config`: every setting, its value and where it came from; `config check` tries them."""

from __future__ import annotations

import json
import os
import stat
import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from evocli import config as cfg
from evocli.cli import options as o
from evocli.cli.call import load_settings
from evocli.errors import ConfigError, EvocliError
from evocli.output import Console
from evocli.redact import mask

if TYPE_CHECKING:
    Action = str
else:
    Action = Literal["show", "check"]


@o.shared_options(
    "model", "param", "quiet", "no_ledger", "timeout", "connect_timeout", "retries", "retry_max_time", "debug"
)
def config(
    ctx: typer.Context,
    action: Annotated[
        Action,
        typer.Argument(metavar="[show|check]", help="show (the default) or check.", show_default=False),
    ] = "show",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    **shared: Any,
) -> None:
    """Show every setting with its value and where it came from (a flag, a variable, the config
    file or the default), the key masked; check tries them: the key, the config file, the base
    URL, and one request to the credits endpoint (not a completion).

    Example: evocli config check
    """
    opts = o.CallOptions.from_params(ctx.params, own=("action", "as_json"))
    out: Console = ctx.obj
    if action == "check":
        _check(opts, out, as_json)
        return
    settings = load_settings(opts, need_key=False)
    rows = _rows(settings)
    if as_json:
        doc = {
            "config_file": str(settings.config_path),
            "config_file_found": settings.config_path.exists(),
            "ledger_dir": str(settings.ledger_dir),
            "settings": {name: {"value": value, "source": source} for name, value, source in rows},
        }
        out.answer((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return
    found = "" if settings.config_path.exists() else " (not found: nothing is set there)"
    lines = [(name, _shown(value), source) for name, value, source in rows]
    table = _table([("setting", "value", "from"), *lines])
    out.answer(f"{table}\nconfig file: {settings.config_path}{found}\n".encode())


def _rows(settings: cfg.Settings) -> list[tuple[str, Any, str]]:
    """(name, value, source) for every declared key; the key itself masked."""
    rows = []
    for key in cfg.KEYS:
        source = settings.sources.get(key.name, "default")
        if key.name == "api_key":
            value: Any = _key_shown(settings)
            source = _key_source(settings)
        elif key.name == "api_key_command":
            file_value = settings.config_data.get("api_key_command")
            value, source = file_value, f"config file {settings.config_path}" if file_value else "-"
        elif key.kind in ("prices", "label"):
            # As written in the file: the prices and their unit are shown the way they are set.
            value = settings.config_data.get(key.name) or key.default
        else:
            value = getattr(settings, key.name)
            value = str(value) if key.kind == "path" else value
        rows.append((key.name, value, source))
    return rows


def _key_shown(settings: cfg.Settings) -> str | None:
    if settings.api_key is None:
        return "(api_key_command, not run here)" if settings.key_source == "api_key_command" else None
    return mask(settings.api_key)


def _key_source(settings: cfg.Settings) -> str:
    if settings.key_source == "EVOLINK_API_KEY":
        return "environment EVOLINK_API_KEY"
    if settings.key_source in ("api_key", "api_key_command"):
        return f"config file {settings.config_path} ({settings.key_source})"
    return "none: set EVOLINK_API_KEY"


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _table(rows: list[tuple[str, str, str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "".join(f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c}".rstrip() + "\n" for a, b, c in rows)


# ---------------------------------------------------------------------------------------------
# config check


def _check(opts: o.CallOptions, out: Console, as_json: bool) -> None:
    """Each check prints a line (or goes into the JSON document); the first failure sets the
    exit code, after all the checks that could run have run."""
    results: list[dict[str, Any]] = []
    failure: EvocliError | None = None

    def report(name: str, ok: bool, detail: str) -> None:
        results.append({"check": name, "ok": ok, "detail": detail})
        if not as_json:
            out.answer(f"{'ok' if ok else 'FAILED':6}  {name:12}  {detail}\n".encode())

    try:
        settings = load_settings(opts)
    except ConfigError as err:
        report("settings", False, err.message)
        failure = err
    else:
        report("key", True, f"{mask(settings.api_key)} from {_key_source(settings)}")
        report("config file", True, _file_state(settings.config_path))
        problem = cfg.base_url_problem(settings.base_url)
        report("base URL", problem is None, problem or settings.base_url)
        if problem:
            failure = ConfigError(f"base URL {settings.base_url}: {problem}")
        credits_failure = _check_credits(settings, report)
        failure = failure or credits_failure
    if as_json:
        out.answer((json.dumps({"ok": failure is None, "checks": results}, indent=2) + "\n").encode())
    if failure is not None:
        raise failure


def _file_state(path: Any) -> str:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return f"{path}: not found (defaults apply)"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return f"{path} (mode {mode:o})"


def _check_credits(settings: cfg.Settings, report: Any) -> EvocliError | None:
    from evocli import credits

    started = time.monotonic()
    try:
        credits.fetch_credits(settings)
    except EvocliError as err:
        report("credits", False, f"{settings.credits_url}: {err.message}")
        return err
    elapsed = (time.monotonic() - started) * 1000
    report("credits", True, f"{settings.credits_url} answered in {elapsed:.0f} ms")
    return None
