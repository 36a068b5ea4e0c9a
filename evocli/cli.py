"""The Typer app: parse the command line, call the core, render; exceptions become exit codes here."""

from __future__ import annotations

import io
import json
import math
import os
import stat
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import IO, Annotated, Any, NoReturn

import typer

from evocli import client, config, ledger, messages
from evocli.entry import version_line
from evocli.errors import (
    AuthError,
    CreditsError,
    EvocliError,
    ExitCode,
    InputError,
    NoInputError,
    OutputError,
    UsageError,
)
from evocli.output import Console, Renderer, json_line
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


def _plain_completion_help() -> None:
    """Give zsh and fish completions the help texts as written.

    Typer sends each text through rich to strip markup when rich is installed: that loads rich,
    markdown-it and pygments on every TAB (about 50 ms), wraps texts at 80 columns (a wrapped
    fish line becomes a bogus candidate) and eats "[default: ...]" as a markup tag. With
    rich_markup_mode=None our texts hold no markup, so they can be used as they are.
    tests/test_imports.py checks that rich stays unloaded, should typer rename this hook.
    """
    from typer import _completion_classes

    def as_written(text: str) -> str:
        return text

    if hasattr(_completion_classes, "_sanitize_help_text"):
        _completion_classes._sanitize_help_text = as_written


_plain_completion_help()


def _one_line_usage_errors() -> None:
    """Show command-line mistakes like every other evocli error: one line, then a hint.

    Click prints a usage block, a "Try …" line and "Error: …"; evocli's contract is
    `evocli: error: <what>` plus `hint: <what to do>`, with exit code 2 as before.
    """
    from typer._click.exceptions import UsageError as ClickUsageError

    def show(self: ClickUsageError, file: IO[Any] | None = None) -> None:
        message = self.format_message().rstrip(".")
        hint = f"'{self.ctx.command_path} -h' lists the options" if self.ctx is not None else None
        Console(out=None, err=file or sys.stderr).error(message[:1].lower() + message[1:], hint)

    ClickUsageError.show = show  # type: ignore[method-assign]


_one_line_usage_errors()


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(version_line())
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
            value, flag = getattr(self, name), "--" + name.replace("_", "-")
            if value is not None and not 0 < value < math.inf:  # refuses nan and inf too
                raise UsageError(f"{flag} must be a positive number of seconds")
            if value is not None and value > config.MAX_SECONDS:
                raise UsageError(f"{flag} must be at most {config.MAX_SECONDS} seconds (a week)")
        if self.temperature is not None and not math.isfinite(self.temperature):
            raise UsageError(f"-t/--temperature must be a finite number, got {self.temperature}")
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


_RESERVED_PARAMS = config.RESERVED_PARAMS


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
        problem = client.json_problem(body[key])  # json reads NaN, Infinity and 1e999 as numbers
        if problem:
            raise UsageError(f"-p {item!r}: {problem}")
    return body


# ---------------------------------------------------------------------------------------------
# The one place where exceptions become exit codes.


def _console(quiet: bool = False) -> Console:
    out = getattr(sys.stdout, "buffer", None)
    return Console(out=out, err=sys.stderr if sys.stderr is not None else _NullErr(), quiet=quiet)


class _NullErr(io.StringIO):
    """Stands in for a closed stderr: messages are dropped, the exit code still tells."""


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


@contextmanager
def handled(debug: bool = False) -> Iterator[None]:
    """Run a command body: expected failures print one line (plus a hint) and exit with their code."""
    try:
        yield
    except EvocliError as err:
        _console().error(err.message, err.hint)
        if isinstance(err, OutputError):
            _silence_stdout()  # what could not be written must not fail again at exit
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
    if sys.stdout is None:
        return
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


def stream_mode(opts: CallOptions, stdout_is_tty: bool) -> bool:
    """Whether to stream: `jsonl` always, `json` never, else the flag, else only to a terminal."""
    if opts.output is OutputMode.jsonl:
        if opts.stream is False:
            raise UsageError("-o jsonl always streams; drop --no-stream")
        return True
    if opts.output is OutputMode.json:
        if opts.stream:
            raise UsageError(
                "-o json prints the response body as received, which a stream does not have",
                hint="use -o jsonl for streamed JSON",
            )
        return False
    if opts.stream is not None:
        return opts.stream
    return stdout_is_tty and opts.output is OutputMode.text


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
    stream = stream_mode(opts, _is_terminal(sys.stdout))
    settings = load_settings(opts, conversation, need_key=not opts.dry_run)
    request = client.build_request(settings, msgs, stream=stream)
    if opts.dry_run:
        doc = client.describe_request(request, settings.api_key, settings.key_source)
        console.answer((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
        return None

    from evocli import transport

    renderer = Renderer(console, opts.output.value, opts.show_usage)
    record = _Recorder(console, settings, opts, command, stream)
    link = transport.Link(notify=console.notice)
    try:
        if stream:
            completion, reply = transport.stream(settings, request, renderer.delta, link)
        else:
            completion, reply = transport.complete(settings, request, link)
    except EvocliError as err:
        record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
        renderer.cut()
        raise
    except KeyboardInterrupt:
        record(exit_code=int(ExitCode.INTERRUPTED), status=200 if renderer.started else None)
        with suppress(OSError):
            renderer.cut()
        raise
    except BrokenPipeError:
        # The reader went away (`| head -1`): the user's choice, not a failed call.
        record(exit_code=int(ExitCode.OK), status=200, ok=True)
        raise
    record(exit_code=0, status=reply.status, attempts=reply.attempts, completion=completion)
    if not stream:
        renderer.delta(completion.content)
    renderer.end(completion)
    return completion


class _Recorder:
    """Appends the call to the usage ledger; a ledger that cannot be written is only a warning."""

    def __init__(
        self, console: Console, settings: config.Settings, opts: CallOptions, command: str, stream: bool
    ) -> None:
        self.console, self.settings, self.opts = console, settings, opts
        self.command, self.stream = command, stream
        self.started = time.monotonic()

    def __call__(
        self,
        *,
        exit_code: int,
        status: int | None = None,
        attempts: int = 0,
        completion: client.Completion | None = None,
        ok: bool | None = None,
    ) -> None:
        if not self.settings.ledger:
            return
        entry = ledger.CallRecord(
            command=self.command,
            model=(completion.model if completion and completion.model else self.settings.model),
            ok=completion is not None if ok is None else ok,
            exit_code=exit_code,
            latency_ms=round((time.monotonic() - self.started) * 1000),
            attempts=max(attempts, 1),
            stream=self.stream,
            tag=self.opts.tag,
            id=completion.id if completion else None,
            http_status=status,
            finish_reason=completion.finish_reason if completion else None,
            usage=completion.usage if completion else None,
        )
        try:
            ledger.append(self.settings.ledger_dir, entry)
        except OSError as exc:
            self.console.warn(
                f"could not write the usage ledger in {self.settings.ledger_dir}: {exc.strerror or exc}"
            )


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

            balance = credits_api.fetch_credits(load_settings(CallOptions()), notify=console.notice)
            text = credits_api.credits_json(balance) if as_json else credits_api.credits_text(balance)
            console.answer(text.encode())
            return
        from datetime import UTC, datetime

        from evocli import ledger_read
        from evocli import report as render_report

        period = ledger_read.make_period(since, until, datetime.now(UTC))
        summary = ledger_read.report(_ledger_dir(), (by or GroupBy.model).value, period, tag or ())
        if summary.corrupt:
            console.warn(f"skipped {summary.corrupt} corrupt ledger line{'s' if summary.corrupt > 1 else ''}")
        fmt = "json" if as_json else "csv" if as_csv else "table" if _is_terminal(sys.stdout) else "tsv"
        console.answer(render_report.render(summary, fmt).encode())


def _ledger_dir() -> Path:
    """Where the ledger is, resolved like every setting; reading it needs no key."""
    env = dict(os.environ)
    # need_key=False: api_key_command (which may prompt for a passphrase) is not run.
    return config.resolve(config.Overrides(), env, config.load_config_file(env), need_key=False).ledger_dir


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# chat-file: a YAML conversation, continued and optionally saved back.

VarOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--var",
        metavar="NAME=VALUE",
        help="A value for {{ NAME }} in the file; wins over its vars: (repeatable).",
        rich_help_panel=_CALL,
    ),
]
AppendOpt = Annotated[
    bool,
    typer.Option(
        "--append",
        help="After a successful reply, append the new turns (piped stdin, the answer) to FILE.",
        rich_help_panel=_CALL,
    ),
]


@app.command("chat-file")
def chat_file(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="A YAML conversation; - reads it from stdin.", show_default=False
        ),
    ],
    var: VarOpt = None,
    append: AppendOpt = False,
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
    """Send a YAML conversation; piped stdin fills {{ stdin }} or becomes the last user turn.

    Example: git diff | evocli chat-file review.yaml
    """
    with handled(debug):
        if file == "-" and append:
            raise UsageError("--append needs a FILE to write to, not - (stdin)")
        if file == "-" and no_stdin:
            raise UsageError("FILE - reads the conversation from stdin, which --no-stdin forbids")
        opts = CallOptions.pick(locals())
        from evocli import conversation

        variables = conversation.parse_vars(var or [])
        # Read stdin before taking the lock: a slow producer must not hold up other runs.
        piped = None if no_stdin or file == "-" else read_stdin()
        # --dry-run sends nothing, so it saves nothing either: FILE is left alone, unlocked.
        saving = append and not dry_run
        with _locked_conversation(file, opts.quiet) if saving else nullcontext(file) as path:
            conv = conversation.parse(_read_conversation(path, file), _shown(file))
            prepared = conversation.prepare(conv, variables, piped)
            reply = run_call(opts, prepared.messages, "chat-file", conv.overrides())
            if saving and reply is not None:
                answer = conversation.turn("assistant", reply.content)
                _save_turns(path, file, [*prepared.new_turns, answer], opts.quiet)


def _shown(file: str) -> str:
    return "<stdin>" if file == "-" else file


def _read_conversation(path: str, file: str) -> str:
    """The conversation's text: FILE, or stdin for -; a missing or unreadable file is exit 66."""
    if file == "-":
        return read_stdin(force=True) or ""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise _unreadable(file, exc) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: not valid UTF-8 text (byte {exc.start})") from None


def _unreadable(file: str, exc: OSError) -> NoInputError:
    reason = "it is a folder" if isinstance(exc, IsADirectoryError) else (exc.strerror or str(exc))
    return NoInputError(f"cannot read {file}: {reason}")


@contextmanager
def _locked_conversation(file: str, quiet: bool) -> Iterator[str]:
    """Hold FILE's lock for the whole run, so a concurrent --append continues after this one."""
    from evocli import safefile

    def waiting() -> None:
        _console(quiet).notice(f"waiting for another evocli appending to {file}")

    with ExitStack() as stack:
        try:
            real = stack.enter_context(safefile.locked(file, on_wait=waiting))
        except OSError as exc:
            raise _unreadable(file, exc) from None
        try:
            safefile.check_writable(real)
        except PermissionError as exc:
            raise NoInputError(f"cannot append to {file}: {exc.strerror}") from None
        yield real


def _save_turns(path: str, file: str, turns: list[messages.Message], quiet: bool) -> None:
    """Append the turns to FILE as it is now (it is reread: only evocli honours the lock)."""
    from evocli import safefile, yamlappend

    current = _read_conversation(path, file)
    try:
        text, kept = yamlappend.append_turns(current, file, turns)
    except EvocliError as err:
        err.hint = f"the answer above was not saved to {file}"
        raise
    if not kept:
        _console(quiet).warn(f"{file}: its layout does not allow appending in place; "
                             "rewrote it without its comments and formatting")
    try:
        safefile.replace(path, text.encode("utf-8"))
    except OSError as exc:
        raise NoInputError(
            f"cannot save the answer to {file}: {exc.strerror or exc}", hint=f"{file} was left as it was"
        ) from None


@app.command()
def batch(
    file: Annotated[str, typer.Argument(help="JSON Lines of prompts; - reads stdin.", show_default=False)],
    concurrency: Annotated[
        int, typer.Option("-c", "--concurrency", min=1, max=256, help="Requests in flight.")
    ] = 4,
    out: Annotated[
        str | None,
        typer.Option("--out", metavar="FILE", help="Write the results to FILE instead of stdout."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="With --out: skip the ids FILE already holds as ok.")
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option("--shard", metavar="I/N", help="Only the lines whose number modulo N is I-1."),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option("-s", "--system", help="Default system message.", rich_help_panel=_CALL),
    ] = None,
    model: ModelOpt = None,
    temperature: TemperatureOpt = None,
    max_tokens: MaxTokensOpt = None,
    param: ParamOpt = None,
    tag: TagOpt = None,
    quiet: QuietOpt = False,
    no_ledger: NoLedgerOpt = False,
    timeout: TimeoutOpt = None,
    connect_timeout: ConnectTimeoutOpt = None,
    retries: RetriesOpt = None,
    retry_max_time: RetryMaxTimeOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run many prompts from JSON Lines, concurrently; results come out in input order.

    Each line is a JSON string (a prompt) or an object with any of id, prompt, system,
    messages, model, params, vars. The options are the defaults for every line.

    Example: evocli batch tickets.jsonl --concurrency 8 --out results.jsonl --resume
    """
    with handled(debug):
        from evocli import batch as batch_mod

        if resume and out is None:
            raise UsageError("--resume needs --out FILE (the results to resume from)")
        if out is not None and _same_file(out, file):
            raise UsageError("--out must not be the input file")
        shard_of = batch_mod.parse_shard(shard) if shard else None
        opts = CallOptions.pick(locals())
        run_batch(opts, BatchPlan(file, out, resume, shard_of, concurrency, system))


@dataclass(frozen=True)
class BatchPlan:
    """The options of `evocli batch` that are its own."""

    file: str
    out: str | None
    resume: bool
    shard: tuple[int, int] | None
    concurrency: int
    system: str | None


def run_batch(opts: CallOptions, plan: BatchPlan) -> None:
    """Open the input and the result sink, then run the lines."""
    console = _console(opts.quiet)
    settings = load_settings(opts)
    with ExitStack() as resources:
        source = _open_input(plan.file, resources)
        done_ids = _resume_ids(plan.out) if plan.resume and plan.out else set()
        sink = _result_sink(console, plan.out, resources, append=plan.resume)
        _run_lines(opts, plan, settings, console, source, sink, done_ids)


def _run_lines(
    opts: CallOptions,
    plan: BatchPlan,
    settings: config.Settings,
    console: Console,
    source: IO[bytes],
    sink: Callable[[dict[str, Any]], None],
    done_ids: set[str],
) -> None:
    """Feed the lines to the workers; each call is sent, recorded and turned into a result."""
    from evocli import batch as batch_mod
    from evocli import transport

    shard = plan.shard

    gate = transport.Gate()
    local = threading.local()
    notice_lock = threading.Lock()

    refused: list[EvocliError] = []  # a key or account refusal: every later line would fail too

    def run_job(job: batch_mod.Job) -> dict[str, Any]:
        if refused:
            first = refused[0]
            skip = EvocliError(f"not sent: an earlier line was refused ({first.message})")
            skip.code = first.code
            return batch_mod.error_record(job, skip)
        link = getattr(local, "link", None)
        if link is None:
            link = local.link = transport.Link(gate=gate)

        def notify(message: str) -> None:
            with notice_lock:
                console.notice(f"line {job.index + 1}: {message}")

        link.notify = notify
        job_settings = replace(
            settings, model=job.model or settings.model, params={**settings.params, **job.params}
        )
        request = client.build_request(job_settings, job.messages, stream=False)
        record = _Recorder(console, job_settings, opts, "batch", False)
        try:
            completion, reply = transport.complete(job_settings, request, link)
        except EvocliError as err:
            record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
            if isinstance(err, AuthError | CreditsError):
                refused.append(err)
            return batch_mod.error_record(job, err)
        except Exception as exc:  # a bug must not stop the other lines
            return batch_mod.error_record(job, EvocliError(f"internal error: {type(exc).__name__}: {exc}"))
        record(exit_code=0, status=reply.status, attempts=reply.attempts, completion=completion)
        return batch_mod.ok_record(
            job, completion.content, completion.finish_reason, completion.model, completion.usage
        )

    skipped = 0

    def jobs() -> Iterator[batch_mod.Job]:
        nonlocal skipped
        for index, text in batch_mod.read_lines(source):
            if shard is not None and index % shard[1] != shard[0] - 1:
                continue
            job = batch_mod.parse_line(index, text, plan.system)
            if job is None:
                continue
            if done_ids and _id_key(job.id) in done_ids:
                skipped += 1
                continue
            yield job

    progress = None
    if not opts.quiet and _is_terminal(sys.stderr):
        progress = batch_mod.Progress(_stderr_write, _count_lines(plan.file, shard))
    runner = batch_mod.Runner(run_job, sink, plan.concurrency, progress=progress)
    try:
        summary = runner.run(jobs())
    finally:
        if progress is not None:
            progress.clear()
    if summary.failed:
        note = f" ({skipped} already done)" if skipped else ""
        err = EvocliError(f"{summary.failed} of {summary.done} failed{note}")
        err.code = ExitCode(summary.exit_code)
        raise err


def _open_input(file: str, resources: ExitStack) -> IO[bytes]:
    if file == "-":
        if sys.stdin is None:
            raise NoInputError("stdin is closed: there is nothing to read with -")
        return sys.stdin.buffer
    try:
        return resources.enter_context(open(file, "rb"))
    except FileNotFoundError:
        raise NoInputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise NoInputError(f"{file}: is a directory") from None
    except OSError as exc:
        raise NoInputError(f"{file}: {exc.strerror}") from None


def _id_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _resume_ids(out: str) -> set[str]:
    """The ids FILE holds as done; other records are dropped from it, atomically.

    The file is read line by line (twice when it must be rewritten), so only the ids are
    held in memory, never the results themselves.
    """
    done: set[str] = set()
    dropped = 0
    try:
        with open(out, "rb") as fh:
            for raw in fh:
                key = _done_key(raw)
                if key is None:
                    dropped += 1
                else:
                    done.add(key)
        if dropped:
            from evocli import safefile

            with open(out, "rb") as fh:
                safefile.replace(out, (raw if raw.endswith(b"\n") else raw + b"\n"
                                       for raw in fh if _done_key(raw) is not None))
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise OutputError(f"cannot resume from {out}: {exc.strerror or exc}") from None
    return done


def _done_key(raw: bytes) -> str | None:
    """The id of a result line that succeeded, or None for any other line."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if isinstance(record, dict) and record.get("ok") is True and "id" in record:
        return _id_key(record["id"])
    return None


def _result_sink(
    console: Console, out: str | None, resources: ExitStack, append: bool
) -> Callable[[dict[str, Any]], None]:
    """Where result lines go: stdout, or FILE with one O_APPEND write per line."""
    if out is None:
        return lambda record: console.answer(json_line(record))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC)
    try:
        fd = os.open(out, flags, 0o644)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    resources.callback(os.close, fd)

    def write(record: dict[str, Any]) -> None:
        try:
            os.write(fd, json_line(record))
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None

    return write


def _stderr_write(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (links and other spellings included)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _count_lines(file: str, shard: tuple[int, int] | None) -> int | None:
    """How many lines the run will take, for the progress line.

    Only a regular file can be read twice; for stdin, a pipe or a FIFO the total is unknown.
    """
    try:
        if file == "-" or not stat.S_ISREG(os.stat(file).st_mode):
            return None
    except OSError:
        return None
    count = 0
    with open(file, "rb") as fh:
        for index, raw in enumerate(fh):
            if raw.strip() and (shard is None or index % shard[1] == shard[0] - 1):
                count += 1
    return count


def single_command_app(name: str) -> typer.Typer | None:
    """An app holding just the named command, or None if there is no such command.

    Typer builds every command's options when the app starts; a run that names its command
    only needs that one, which saves a few milliseconds per run. Its help, errors and exit
    codes are those of the command inside the whole app (`Usage: evocli ask …`).
    """
    for info in app.registered_commands:
        command_name = info.name or (info.callback.__name__ if info.callback else "")
        if command_name == name and info.callback is not None:
            single = typer.Typer(
                context_settings={"help_option_names": ["-h", "--help"]},
                pretty_exceptions_enable=False,
                rich_markup_mode=None,
                add_completion=False,
            )
            single.command(name=name, help=info.help)(info.callback)
            return single
    return None


def main() -> None:
    """The `evocli` console script."""
    argv = sys.argv[1:]
    try:
        single = None
        if argv and "_EVOCLI_COMPLETE" not in os.environ:
            single = single_command_app(argv[0])
        if single is not None:
            single(argv[1:], prog_name=f"evocli {argv[0]}")
        else:
            app(prog_name="evocli")
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
