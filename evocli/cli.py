"""The Typer app: parse the command line, call the core, render; exceptions become exit codes here."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from evocli import __version__, client, config, ledger, messages
from evocli.errors import EvocliError, ExitCode, InputError, UsageError
from evocli.output import Console, render
from evocli.redact import add_secret, redact


class OutputMode(str, Enum):
    text = "text"
    json = "json"
    jsonl = "jsonl"
    usage = "usage"


app = typer.Typer(
    name="evocli",
    help="A command-line client for the Evolink chat completions API, made for scripting.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"evocli {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """A command-line client for the Evolink chat completions API, made for scripting."""


# ---------------------------------------------------------------------------------------------
# Options shared by the commands that make a call: declared once, used by each command.

_CALL = "Call options"
_OUT = "Output options"
_NET = "Network options"

ModelOpt = Annotated[
    str | None, typer.Option("-m", "--model", help="Model id (default gpt-5.2).", rich_help_panel=_CALL)
]
TemperatureOpt = Annotated[
    float | None,
    typer.Option("-t", "--temperature", help="Sampling temperature, 0 to 2.", rich_help_panel=_CALL),
]
MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        help="Upper bound on generated tokens (sent as max_completion_tokens).",
        rich_help_panel=_CALL,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--param",
        metavar="KEY=VALUE",
        help="Any body field; VALUE is parsed as JSON when it parses (repeatable).",
        rich_help_panel=_CALL,
    ),
]
NoStdinOpt = Annotated[
    bool, typer.Option("--no-stdin", help="Never read stdin.", rich_help_panel=_CALL)
]
OutputOpt = Annotated[
    OutputMode,
    typer.Option(
        "-o",
        "--output",
        case_sensitive=False,
        help="text: the answer; json: the response body; jsonl: streamed JSON lines; "
        "usage: the usage object.",
        rich_help_panel=_OUT,
    ),
]
StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="Stream the answer as it arrives [default: when stdout is a terminal and -o text].",
        show_default=False,
        rich_help_panel=_OUT,
    ),
]
ShowUsageOpt = Annotated[
    bool,
    typer.Option("-u", "--show-usage", help="Print a usage line on stderr.", rich_help_panel=_OUT),
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Print the request (key redacted) and exit; no network.", rich_help_panel=_OUT
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option("-q", "--quiet", help="No retry notices or warnings on stderr.", rich_help_panel=_OUT),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        envvar="EVOCLI_DEBUG",
        help="Show details of unexpected failures.",
        rich_help_panel=_OUT,
    ),
]
TagOpt = Annotated[
    str | None,
    typer.Option("--tag", help="A label stored with the call in the usage ledger.", rich_help_panel=_OUT),
]
NoLedgerOpt = Annotated[
    bool,
    typer.Option("--no-ledger", help="Do not record this call in the usage ledger.", rich_help_panel=_OUT),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", metavar="S", help="Idle read timeout in seconds [default: 600].", rich_help_panel=_NET
    ),
]
ConnectTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--connect-timeout",
        metavar="S",
        help="Connect timeout in seconds [default: 10].",
        rich_help_panel=_NET,
    ),
]
RetriesOpt = Annotated[
    int | None,
    typer.Option("--retries", min=0, metavar="N", help="Retries [default: 2].", rich_help_panel=_NET),
]
RetryMaxTimeOpt = Annotated[
    float | None,
    typer.Option(
        "--retry-max-time",
        metavar="S",
        help="The whole retry window in seconds [default: 120].",
        rich_help_panel=_NET,
    ),
]


@dataclass
class CallOptions:
    """The shared options of one command invocation, as given (None = not given)."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    params: list[str] = field(default_factory=list)
    output: OutputMode = OutputMode.text
    stream: bool | None = None
    show_usage: bool = False
    dry_run: bool = False
    quiet: bool = False
    tag: str | None = None
    no_ledger: bool = False
    timeout: float | None = None
    connect_timeout: float | None = None
    retries: int | None = None
    retry_max_time: float | None = None

    @classmethod
    def pick(cls, values: dict[str, Any]) -> CallOptions:
        """Build from a command's parameters (its `locals()`), taking the shared ones by name."""
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in values.items() if k in names}
        given["params"] = list(values.get("param") or [])
        return cls(**given)

    def overrides(self) -> config.Overrides:
        """These flags as the top settings layer."""
        for name in ("timeout", "connect_timeout", "retry_max_time"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
        body = parse_params(self.params)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_completion_tokens"] = self.max_tokens
        return config.Overrides(
            model=self.model,
            params=body,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            retries=self.retries,
            retry_max_time=self.retry_max_time,
            ledger=False if self.no_ledger else None,
        )


_RESERVED_PARAMS = {
    "messages": "give the prompt as arguments or stdin",
    "stream": "use --stream / --no-stream",
}


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """`-p KEY=VALUE` pairs as body fields; VALUE is JSON when it parses, else a string."""
    body: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
        if key in _RESERVED_PARAMS:
            raise UsageError(f"-p cannot set {key!r}: {_RESERVED_PARAMS[key]}")
        try:
            body[key] = json.loads(value)
        except ValueError:
            body[key] = value
    return body


# ---------------------------------------------------------------------------------------------
# The one place where exceptions become exit codes.


def _console(quiet: bool = False) -> Console:
    return Console(out=sys.stdout.buffer, err=sys.stderr, quiet=quiet)


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


@contextmanager
def handled(debug: bool = False) -> Iterator[None]:
    """Run a command body: expected failures print one line (plus a hint) and exit with their code."""
    try:
        yield
    except EvocliError as err:
        _console().error(err.message, err.hint)
        _exit(int(err.code))
    except KeyboardInterrupt:
        _exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        _silence_stdout()
        _exit(int(ExitCode.OK))
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line, details only on request
        if debug:
            sys.stderr.write(redact("".join(traceback.format_exc())))
        _console().error(
            f"internal error: {type(exc).__name__}: {exc}",
            None if debug else "run again with --debug for details",
        )
        _exit(int(ExitCode.INTERNAL))


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


# ---------------------------------------------------------------------------------------------
# Input and the shared call path.


def read_stdin(force: bool = False) -> str | None:
    """Piped stdin as text, or None when stdin is a terminal (unless forced) or absent."""
    stream = sys.stdin
    if stream is None:
        return None
    try:
        if not force and stream.isatty():
            return None
        data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    except (OSError, ValueError):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin is not valid UTF-8 text (byte {exc.start})") from None


def load_settings(
    opts: CallOptions, conversation: config.Overrides | None = None, *, need_key: bool = True
) -> config.Settings:
    """Resolve the settings of a call once, from flags, environment and config file."""
    flags = opts.overrides()
    env = dict(os.environ)
    settings = config.resolve(
        flags, env, config.load_config_file(env), conversation, need_key=need_key
    )
    add_secret(settings.api_key)
    return settings


def run_call(
    opts: CallOptions,
    msgs: list[messages.Message],
    command: str,
    conversation: config.Overrides | None = None,
) -> client.Completion | None:
    """Resolve settings, send the messages, record the call and render the answer.

    Returns the completion (None for --dry-run) so a command can do more with it.
    """
    console = _console(opts.quiet)
    settings = load_settings(opts, conversation, need_key=not opts.dry_run)
    request = client.build_request(settings, msgs, stream=False)
    if opts.dry_run:
        doc = client.describe_request(request, settings.api_key)
        console.answer((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return None

    from evocli import transport

    started = time.monotonic()
    try:
        completion, reply = transport.complete(settings, request)
    except EvocliError as err:
        _record(console, settings, opts, command, started, error=err)
        raise
    except KeyboardInterrupt:
        _record(console, settings, opts, command, started, error=None, interrupted=True)
        raise
    _record(console, settings, opts, command, started, completion=completion, reply=reply)
    render(console, completion, opts.output.value, opts.show_usage)
    return completion


def _record(
    console: Console,
    settings: config.Settings,
    opts: CallOptions,
    command: str,
    started: float,
    *,
    completion: client.Completion | None = None,
    reply: Any = None,
    error: EvocliError | None = None,
    interrupted: bool = False,
) -> None:
    """Append the call to the usage ledger; a ledger that cannot be written is only a warning."""
    if not settings.ledger:
        return
    if completion is not None:
        exit_code, status, attempts = 0, reply.status, reply.attempts
    elif error is not None:
        exit_code, status, attempts = int(error.code), error.http_status, max(error.attempts, 1)
    else:
        exit_code, status, attempts = int(ExitCode.INTERRUPTED), None, 1
    record = ledger.CallRecord(
        command=command,
        model=(completion.model if completion and completion.model else settings.model),
        ok=completion is not None and not interrupted,
        exit_code=exit_code,
        latency_ms=round((time.monotonic() - started) * 1000),
        attempts=attempts,
        stream=False,
        tag=opts.tag,
        id=completion.id if completion else None,
        http_status=status,
        finish_reason=completion.finish_reason if completion else None,
        usage=completion.usage if completion else None,
    )
    try:
        ledger.append(settings.ledger_dir, record)
    except OSError as exc:
        console.warn(f"could not write the usage ledger in {settings.ledger_dir}: {exc.strerror or exc}")


# ---------------------------------------------------------------------------------------------
# Commands.


@app.command()
def ask(
    prompt: Annotated[
        list[str] | None,
        typer.Argument(help="The prompt; a lone - reads it from stdin.", show_default=False),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("-s", "--system", help="A system message to put first.", rich_help_panel=_CALL),
    ] = None,
    no_stdin: NoStdinOpt = False,
    model: ModelOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    param: ParamOpt = None,
    output: OutputOpt = OutputMode.text,
    stream: StreamOpt = None,
    show_usage: ShowUsageOpt = False,
    dry_run: DryRunOpt = False,
    tag: TagOpt = None,
    quiet: QuietOpt = False,
    no_ledger: NoLedgerOpt = False,
    timeout: TimeoutOpt = None,
    connect_timeout: ConnectTimeoutOpt = None,
    retries: RetriesOpt = None,
    retry_max_time: RetryMaxTimeOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Ask one question; piped stdin comes first, then a blank line, then the arguments.

    Example: git log -5 | evocli ask "Summarize these commits"
    """
    with handled(debug):
        args = list(prompt or [])
        from_stdin_only = args == ["-"]
        if from_stdin_only and no_stdin:
            raise UsageError("a lone - reads the prompt from stdin, which --no-stdin forbids")
        stdin_text = None if no_stdin else read_stdin(force=from_stdin_only)
        text = messages.compose_prompt([] if from_stdin_only else args, stdin_text)
        run_call(CallOptions.pick(locals()), messages.ask_messages(text, system), "ask")


class GroupBy(str, Enum):
    model = "model"
    day = "day"
    tag = "tag"
    command = "command"


@app.command()
def usage(
    by: Annotated[
        GroupBy | None,
        typer.Option("--by", case_sensitive=False, help="Group the rows by model, day, tag or command."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="WHEN", help="From this time: 2026-11-01, 2026-11-01T09:30 (UTC), 7d or 24h."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="WHEN", help="Up to this time; a date includes that whole day."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", metavar="TEXT", help="Only calls with this tag (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    credits: Annotated[
        bool, typer.Option("--credits", help="Ask the API for the account's remaining and used credits.")
    ] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Report the calls in the usage ledger, or the account's credits with --credits.

    A table on a terminal, tab-separated values with a header when piped.

    Example: evocli usage --since 7d --by tag
    """
    with handled(debug):
        if as_json and as_csv:
            raise UsageError("--json and --csv cannot be used together")
        console = _console(quiet)
        if credits:
            for name, value in (("--by", by), ("--since", since), ("--until", until), ("--tag", tag),
                                ("--csv", as_csv)):
                if value:
                    raise UsageError(f"--credits cannot be combined with {name}")
            from evocli import credits as credits_api

            balance = credits_api.fetch_credits(load_settings(CallOptions()))
            text = credits_api.credits_json(balance) if as_json else credits_api.credits_text(balance)
            console.answer(text.encode())
            return
        from datetime import UTC, datetime

        from evocli import report as render_report

        period = ledger.make_period(since, until, datetime.now(UTC))
        summary = ledger.report(_ledger_dir(), (by or GroupBy.model).value, period, tag or ())
        if summary.corrupt:
            console.warn(f"skipped {summary.corrupt} corrupt ledger line{'s' if summary.corrupt > 1 else ''}")
        fmt = "json" if as_json else "csv" if as_csv else "table" if _is_terminal(sys.stdout) else "tsv"
        console.answer(render_report.render(summary, fmt).encode())


def _ledger_dir() -> Path:
    """Where the ledger is, resolved like every setting; reading it needs no key."""
    env = dict(os.environ)
    # No key is needed, so api_key_command (which may prompt for a passphrase) is not run.
    settings = config.resolve(
        config.Overrides(), env, config.load_config_file(env), need_key=False, key_command=lambda _: ""
    )
    return settings.ledger_dir


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def main() -> None:
    """The `evocli` console script."""
    try:
        app(prog_name="evocli")
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
