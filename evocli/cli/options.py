"""The options shared by the commands, declared once, and CallOptions that gathers them."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer

from evocli import config
from evocli.body import EFFORTS, IMAGE_DETAILS, VERBOSITIES, parse_params
from evocli.errors import UsageError
from evocli.output import MODES, OutputMode

if TYPE_CHECKING:
    OutputName = str
    Detail = str
    EffortName = str
    VerbosityName = str
else:  # one of the names: Typer checks it (exit 2, no request) and TAB completes it
    OutputName = Literal[tuple(MODES)]
    Detail = Literal[IMAGE_DETAILS]
    EffortName = Literal[EFFORTS]
    VerbosityName = Literal[VERBOSITIES]


CALL = "Call options"
ANSWER = "Answer options"
OUT = "Output options"
NET = "Network options"

def _known_models(incomplete: str) -> list[str]:
    """TAB after -m: the model ids evocli knows of (config.KNOWN_MODELS)."""
    return [model for model in config.KNOWN_MODELS if model.startswith(incomplete)]


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "-m",
        "--model",
        metavar="ID",
        autocompletion=_known_models,
        help="Model id (default gpt-5.2).",
        rich_help_panel=CALL,
    ),
]
TemperatureOpt = Annotated[
    float | None,
    typer.Option(
        "-t", "--temperature", metavar="X", min=0, max=2, help="Sampling temperature, 0 to 2.",
        rich_help_panel=CALL,
    ),
]
MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        metavar="N",
        min=1,
        help="Upper bound on generated tokens (sent as max_completion_tokens).",
        rich_help_panel=CALL,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-p",
        "--param",
        metavar="KEY=VALUE",
        help="Any body field; VALUE is parsed as JSON when it parses (repeatable).",
        rich_help_panel=CALL,
    ),
]
EffortOpt = Annotated[
    EffortName | None,
    typer.Option(
        "--effort",
        metavar="LEVEL",
        case_sensitive=False,
        help=f"Reasoning effort: {', '.join(EFFORTS)} (sent as reasoning_effort).",
        rich_help_panel=CALL,
    ),
]
VerbosityOpt = Annotated[
    VerbosityName | None,
    typer.Option(
        "--verbosity",
        metavar="LEVEL",
        case_sensitive=False,
        help=f"How long the answer is: {', '.join(VERBOSITIES)} (sent as verbosity).",
        rich_help_panel=CALL,
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed", metavar="N", help="A seed for repeatable sampling (sent as seed).", rich_help_panel=CALL
    ),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option(
        "--schema",
        metavar="SCHEMA",
        help="Answer with a JSON document matching SCHEMA, checked here: inline JSON, a .json or "
        ".yaml file, or fields such as 'name, age int, tags: a comma-separated list'.",
        rich_help_panel=ANSWER,
    ),
]
SchemaMultiOpt = Annotated[
    bool,
    typer.Option("--schema-multi", help='Answer with a list of such documents, as {"items": [...]}.',
                 rich_help_panel=ANSWER),
]
NoStrictOpt = Annotated[
    bool,
    typer.Option("--no-strict", help="Send the schema as given (strict: false), not its strict form.",
                 rich_help_panel=ANSWER),
]
SchemaRetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--schema-retries",
        min=0,
        metavar="N",
        help="Corrective turns for an answer that does not match [default: 1].",
        rich_help_panel=ANSWER,
    ),
]
ExtractOpt = Annotated[
    bool,
    typer.Option("-x", "--extract", help="Print only the first fenced code block of the answer.",
                 rich_help_panel=ANSWER),
]
ExtractLastOpt = Annotated[
    bool,
    typer.Option("--extract-last", help="Print only the last fenced code block of the answer.",
                 rich_help_panel=ANSWER),
]
AllowIncompleteOpt = Annotated[
    bool,
    typer.Option(
        "--allow-incomplete",
        help="Exit 0, with a warning, for an answer cut off or without text (else exit 3).",
        rich_help_panel=ANSWER,
    ),
]
NoStdinOpt = Annotated[bool, typer.Option("--no-stdin", help="Never read stdin.", rich_help_panel=CALL)]
OutputOpt = Annotated[
    OutputName,
    typer.Option(
        "-o",
        "--output",
        metavar="MODE",
        case_sensitive=False,
        help="; ".join(f"{mode.name}: {mode.help}" for mode in MODES.values()) + ".",
        rich_help_panel=OUT,
    ),
]
StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="Stream the answer as it arrives [default: when stdout is a terminal and -o text].",
        show_default=False,
        rich_help_panel=OUT,
    ),
]
ShowUsageOpt = Annotated[
    bool, typer.Option("-u", "--show-usage", help="Print a usage line on stderr.", rich_help_panel=OUT)
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Print the request (key redacted) and exit; no network.", rich_help_panel=OUT
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("-q", "--quiet", help="No retry notices or warnings on stderr.", rich_help_panel=OUT)
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug", envvar="EVOCLI_DEBUG", help="Show details of unexpected failures.", rich_help_panel=OUT
    ),
]
TagOpt = Annotated[
    str | None,
    typer.Option(
        "--tag", metavar="TEXT", help="A label stored with the call in the usage ledger.", rich_help_panel=OUT
    ),
]
NoLedgerOpt = Annotated[
    bool,
    typer.Option("--no-ledger", help="Do not record this call in the usage ledger.", rich_help_panel=OUT),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", metavar="S", help="Idle read timeout in seconds [default: 600].", rich_help_panel=NET
    ),
]
ConnectTimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--connect-timeout",
        metavar="S",
        help="Connect timeout in seconds [default: 10].",
        rich_help_panel=NET,
    ),
]
RetriesOpt = Annotated[
    int | None,
    typer.Option("--retries", min=0, metavar="N", help="Retries [default: 2].", rich_help_panel=NET),
]
RetryMaxTimeOpt = Annotated[
    float | None,
    typer.Option(
        "--retry-max-time",
        metavar="S",
        help="The whole retry window in seconds [default: 120].",
        rich_help_panel=NET,
    ),
]


AttachOpt = Annotated[
    list[str] | None,
    typer.Option(
        "-a",
        "--attach",
        metavar="SOURCE",
        help="An image or text file, an http(s) image URL, or - for stdin (repeatable).",
        rich_help_panel=CALL,
    ),
]
ImageDetailOpt = Annotated[
    Detail | None,
    typer.Option(
        "--image-detail",
        metavar="LEVEL",
        case_sensitive=False,
        help=f"The detail asked for attached images: {', '.join(IMAGE_DETAILS)}.",
        rich_help_panel=CALL,
    ),
]


MaxTimeOpt = Annotated[
    float | None,
    typer.Option(
        "--max-time",
        metavar="S",
        help="A deadline in seconds for the whole call, retries and streaming included.",
        rich_help_panel=NET,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "-v", "--verbose", help="A trace of each attempt on stderr (status, request id, timings).",
        rich_help_panel=NET,
    ),
]


# The shared options in the order help lists them: name -> (annotated type, default). A command
# takes a selection with `shared_options`, after its own parameters.
SHARED: dict[str, tuple[Any, Any]] = {
    "model": (ModelOpt, None),
    "temperature": (TemperatureOpt, None),
    "max_tokens": (MaxTokensOpt, None),
    "param": (ParamOpt, None),
    "effort": (EffortOpt, None),
    "verbosity": (VerbosityOpt, None),
    "seed": (SeedOpt, None),
    "schema": (SchemaOpt, None),
    "schema_multi": (SchemaMultiOpt, False),
    "no_strict": (NoStrictOpt, False),
    "schema_retries": (SchemaRetriesOpt, None),
    "extract": (ExtractOpt, False),
    "extract_last": (ExtractLastOpt, False),
    "allow_incomplete": (AllowIncompleteOpt, False),
    "output": (OutputOpt, "text"),
    "stream": (StreamOpt, None),
    "show_usage": (ShowUsageOpt, False),
    "dry_run": (DryRunOpt, False),
    "tag": (TagOpt, None),
    "quiet": (QuietOpt, False),
    "no_ledger": (NoLedgerOpt, False),
    "timeout": (TimeoutOpt, None),
    "connect_timeout": (ConnectTimeoutOpt, None),
    "retries": (RetriesOpt, None),
    "retry_max_time": (RetryMaxTimeOpt, None),
    "max_time": (MaxTimeOpt, None),
    "verbose": (VerboseOpt, False),
    "debug": (DebugOpt, False),
}
# The options of a command that makes one call (ask, chat-file): all of them.
CALL_OPTIONS = tuple(SHARED)

F = TypeVar("F", bound=Callable[..., Any])


def shared_options(*names: str) -> Callable[[F], F]:
    """Give a command the named shared options after its own parameters, as if its signature
    listed them; the function takes them as `**shared` (it reads them through CallOptions).

    Typer reads a command's parameters from its signature and type hints, so both are set.
    """

    def add(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=SHARED[name][0],
                              default=SHARED[name][1])
            for name in SHARED if name in names
        ]
        unknown = set(names) - set(SHARED)
        if unknown:
            raise TypeError(f"not shared options: {unknown}")
        func.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        hints = {p.name: p.annotation for p in [*own, *added]}
        func.__annotations__ = {**hints, "return": signature.return_annotation}
        return func

    return add


@dataclass
class CallOptions:
    """The shared options of one command invocation, as given (None = not given)."""

    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    param: list[str] = field(default_factory=list)
    output: str = "text"
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
    max_time: float | None = None
    verbose: bool = False
    debug: bool = False
    effort: str | None = None
    verbosity: str | None = None
    seed: int | None = None
    schema: str | None = None
    schema_multi: bool = False
    no_strict: bool = False
    schema_retries: int | None = None
    extract: bool = False
    extract_last: bool = False
    allow_incomplete: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, Any], own: Iterable[str] = ()) -> CallOptions:
        """Gather a command's parameters (its click context's `params`).

        Every parameter must be either a shared option or one the command names as its `own`:
        a misspelt name fails here, in every test of the command, instead of being dropped.
        """
        names = {f.name for f in fields(cls)}
        unknown = set(params) - names - set(own)
        if unknown:
            raise TypeError(f"parameters that are neither shared options nor the command's own: {unknown}")
        given = {k: v for k, v in params.items() if k in names and v is not None}
        if "param" in given:
            given["param"] = list(given["param"])
        return cls(**given)

    @property
    def mode(self) -> OutputMode:
        return MODES[self.output]

    @property
    def extraction(self) -> str | None:
        """Which fenced code block to print: "first" (-x), "last" (--extract-last), or None."""
        return "last" if self.extract_last else "first" if self.extract else None

    def check_answer_flags(self, schema_from: str | None, needs: str = "--schema") -> None:
        """Refuse flags that cannot mean anything together (exit 2, before any request).

        `schema_from` names where the call's schema comes from (None: it has none): -x and a
        response_format of -p would fight with it; without one, the schema's own flags have
        nothing to act on (`needs` says what would give one).
        """
        if schema_from is None:
            given = [("--schema-multi", self.schema_multi), ("--no-strict", self.no_strict),
                     ("--schema-retries", self.schema_retries is not None)]
            orphan = next((flag for flag, on in given if on), None)
            if orphan is not None:
                raise UsageError(f"{orphan} needs {needs}")
            return
        if self.extraction is not None:
            flag = "--extract-last" if self.extract_last else "-x/--extract"
            raise UsageError(f"{flag} cannot be combined with {schema_from}",
                             hint="a schema's answer is a JSON document, not text with code blocks")
        if "response_format" in parse_params(self.param):
            raise UsageError(f"-p response_format cannot be combined with {schema_from}, "
                             "which is sent as the response_format")

    def overrides(self) -> config.Overrides:
        """These flags as the top settings layer."""
        for name in ("timeout", "connect_timeout", "retry_max_time", "max_time"):
            value = getattr(self, name)
            problem = None if value is None else config.seconds_problem(value)
            if problem:
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} must be a positive number of seconds" if "positive" in problem
                                 else f"{flag} must be {problem}")
        if self.model is not None and not self.model.strip():
            raise UsageError("-m/--model must name a model, got an empty string")
        if self.temperature is not None and not math.isfinite(self.temperature):
            raise UsageError(f"-t/--temperature must be a finite number, got {self.temperature}")
        body = parse_params(self.param)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_completion_tokens"] = self.max_tokens
        controls = {"reasoning_effort": self.effort, "verbosity": self.verbosity, "seed": self.seed}
        body.update({key: value for key, value in controls.items() if value is not None})
        return config.Overrides(
            model=self.model,
            params=body,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            retries=self.retries,
            retry_max_time=self.retry_max_time,
            ledger=False if self.no_ledger else None,
        )
