"""The app every command is registered on: the one error handler, one-line usage errors, --version.

Exceptions become exit codes here and nowhere else. The handler is part of the command class the
app gives every command it registers, so a command cannot forget it; command-line mistakes are
caught in the group's `main`, so they read like every other error.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from typer import _click, _completion_classes
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer._click.shell_completion import CompletionItem, add_completion_class
from typer.core import TyperCommand, TyperGroup

from evocli import signals, version_line
from evocli.errors import EvocliError, ExitCode, OutputError
from evocli.output import Console, silence
from evocli.redact import redact

HELP = (
    "A command-line client for the Evolink chat completions API, made for scripting.\n\n"
    "The key comes from EVOLINK_API_KEY, else from the config file ($EVOCLI_CONFIG, else "
    "$XDG_CONFIG_HOME/evocli/config.yaml, else ~/.config/evocli/config.yaml). Every call is "
    "recorded in the usage ledger ($EVOCLI_LEDGER_DIR, else $XDG_STATE_HOME/evocli/usage, else "
    "~/.local/state/evocli/usage). 'evocli config' shows each setting and where it comes from."
)


def process_console(quiet: bool = False) -> Console:
    """The run's console: the answer to stdout (None when closed), the rest to stderr.

    Built once per run by the command class and handed to the command as `ctx.obj`.
    """
    out = getattr(sys.stdout, "buffer", None)
    err = sys.stderr if sys.stderr is not None else open(os.devnull, "w")  # noqa: SIM115
    return Console(out=out, err=err, quiet=quiet, out_tty=is_terminal(sys.stdout), err_tty=is_terminal(err))


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _exit(code: int) -> NoReturn:
    raise typer.Exit(code)


@contextmanager
def handled(console: Console, debug: bool = False) -> Iterator[None]:
    """Run a command body: expected failures print one line (plus a hint) and exit with their code."""
    try:
        yield
    except EvocliError as err:
        console.error(err.message, err.hint)
        if isinstance(err, OutputError):
            silence(sys.stdout)  # what could not be written must not fail again at exit
        _exit(int(err.code))
    except KeyboardInterrupt:
        # The run's work may be complete already (a conversation saved): then it has succeeded.
        _exit(int(ExitCode.OK) if signals.committed else signals.exit_code())
    except BrokenPipeError:
        silence(sys.stdout)
        _exit(int(ExitCode.OK))
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug: say so in one line, details only on request
        if debug:
            sys.stderr.write(redact("".join(traceback.format_exc())))
        console.error(
            f"internal error: {type(exc).__name__}: {exc}",
            None if debug else "run again with --debug for details",
        )
        _exit(int(ExitCode.INTERNAL))


def _debug_asked(ctx: _click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("EVOCLI_DEBUG", "") not in ("", "0")


class EvocliCommand(TyperCommand):
    """Every evocli command: its body runs inside the one handler."""

    def invoke(self, ctx: _click.Context) -> Any:
        signals.reset()
        ctx.obj = console = process_console(bool(ctx.params.get("quiet")))
        with handled(console, _debug_asked(ctx)):
            return super().invoke(ctx)


class EvocliGroup(TyperGroup):
    """The `evocli` group: command-line mistakes as one `evocli: error:` line plus a hint, exit 2."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _plain_completion_help()
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except NoArgsIsHelpError as exc:
            exc.show()  # `evocli` alone: the help, on stderr, and exit 2
            code = exc.exit_code
        except ClickException as exc:
            _show_usage_error(exc)
            code = exc.exit_code
        except typer.Abort:
            code = int(ExitCode.INTERRUPTED)
        except OSError as exc:  # help or a message that could not be written
            code = _output_failure(exc)
        if not standalone_mode:
            return code
        sys.exit(code)


def _output_failure(exc: OSError) -> int:
    """Help that cannot be written: a closed pipe ends as Click ends it (1), quietly; anything
    else (a full disk) is one line and exit 73, like an answer that cannot be written."""
    silence(sys.stdout)
    if isinstance(exc, BrokenPipeError):
        return 1
    process_console().error(f"cannot write to stdout: {exc.strerror or exc}")
    return int(ExitCode.CANTCREAT)


def _show_usage_error(exc: ClickException) -> None:
    message = exc.format_message().rstrip(".")
    ctx = getattr(exc, "ctx", None)
    hint = f"'{ctx.command_path} -h' lists the options" if ctx is not None else None
    process_console().error(message[:1].lower() + message[1:], hint)


class EvocliTyper(typer.Typer):
    """A Typer app whose commands all get the handler, without each one opting in."""

    def command(self, name: str | None = None, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", EvocliCommand)
        return super().command(name, **kwargs)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(version_line())
        sys.stdout.flush()  # a failure is reported now, by the group, not by Python at exit
        raise typer.Exit()


def new_app() -> EvocliTyper:
    """The empty app, with its root options; commands are registered by the command table."""
    app = EvocliTyper(
        name="evocli",
        help=HELP,
        cls=EvocliGroup,
        context_settings={"help_option_names": ["-h", "--help"]},
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        add_completion=True,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        pass

    return app


# ---------------------------------------------------------------------------------------------
# Completion: the help texts as written.
#
# Typer sends zsh, fish and PowerShell help texts through rich to strip markup when rich is
# installed: that loads rich, markdown-it and pygments on every TAB (about 50 ms), wraps texts at
# 80 columns (a wrapped fish line becomes a bogus candidate) and eats "[default: ...]" as a
# markup tag. evocli's texts hold no markup (rich_markup_mode=None), so they are used as they
# are, by completion classes registered through the public add_completion_class.


class _ZshComplete(_completion_classes.ZshComplete):
    def format_completion(self, item: CompletionItem) -> str:
        def escape(s: str) -> str:
            return (
                s.replace('"', '""').replace("'", "''").replace("$", "\\$").replace("`", "\\`")
                .replace(":", r"\\:")
            )

        if item.help:
            return f'"{escape(item.value)}":"{escape(item.help)}"'
        return f'"{escape(item.value)}"'


class _FishComplete(_completion_classes.FishComplete):
    def format_completion(self, item: CompletionItem) -> str:
        if item.help:  # each whitespace character one space: a line break would end the candidate
            return f"{item.value}\t{''.join(' ' if c.isspace() else c for c in item.help)}"
        return f"{item.value}"


class _PowerShellComplete(_completion_classes.PowerShellComplete):
    def format_completion(self, item: CompletionItem) -> str:
        return f"{item.value}:::{item.help if item.help else ' '}"


def _plain_completion_help() -> None:
    """Register the classes above (after Typer's own, which building the app registers)."""
    for cls in (_ZshComplete, _FishComplete, _PowerShellComplete):
        add_completion_class(cls, cls.name)
    add_completion_class(_PowerShellComplete, "pwsh")
