"""One `evocli batch` run: its input and result files, resume, and the call made for each line."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import IO, Any

from evocli import batch, client, ledger
from evocli.config import Settings
from evocli.errors import AuthError, CreditsError, EvocliError, ExitCode, NoInputError, OutputError
from evocli.output import Console, json_line


@dataclass(frozen=True)
class Plan:
    """The options of `evocli batch` that are its own."""

    file: str
    out: str | None
    resume: bool
    shard: tuple[int, int] | None
    concurrency: int
    system: str | None
    tag: str | None = None


def run(plan: Plan, settings: Settings, console: Console, stdin: IO[bytes] | None) -> None:
    """Open the input and the result sink, then run the lines; failed lines make the exit code.

    The progress is the console's status line (shown only on a terminal's stderr).
    """
    with ExitStack() as resources:
        source = _open_input(plan.file, stdin, resources)
        done_ids = _resume_ids(plan.out) if plan.resume and plan.out else set()
        sink = _result_sink(console, plan.out, resources, append=plan.resume)
        meter = None
        if console.err_tty and not console.quiet:
            meter = batch.Progress(console.status, count_lines(plan.file, plan.shard))
        _Lines(plan, settings, console, done_ids).run(source, sink, meter)


class _Lines:
    """Feeds the lines to the workers; each call is sent, recorded and turned into a result."""

    def __init__(self, plan: Plan, settings: Settings, console: Console, done_ids: set[str]) -> None:
        from evocli import transport

        self.plan, self.settings, self.console, self.done_ids = plan, settings, console, done_ids
        self.gate = transport.Gate()
        self.local = threading.local()
        self.notice_lock = threading.Lock()
        self.refused: list[EvocliError] = []  # a key or account refusal: every later line would fail too
        self.skipped = 0

    def run(
        self, source: IO[bytes], sink: Callable[[dict[str, Any]], None], meter: batch.Progress | None
    ) -> None:
        runner = batch.Runner(self.run_job, sink, self.plan.concurrency, progress=meter)
        try:
            summary = runner.run(self.jobs(source))
        finally:
            self.console.status("")
        if summary.failed:
            note = f" ({self.skipped} already done)" if self.skipped else ""
            err = EvocliError(f"{summary.failed} of {summary.done} failed{note}")
            err.code = ExitCode(summary.exit_code)
            raise err

    def jobs(self, source: IO[bytes]) -> Iterator[batch.Job]:
        shard = self.plan.shard
        for index, text in batch.read_lines(source):
            if shard is not None and index % shard[1] != shard[0] - 1:
                continue
            job = batch.parse_line(index, text, self.plan.system)
            if job is None:
                continue
            if self.done_ids and id_key(job.id) in self.done_ids:
                self.skipped += 1
                continue
            yield job

    def link(self) -> Any:
        from evocli import transport

        link = getattr(self.local, "link", None)
        if link is None:
            link = self.local.link = transport.Link(gate=self.gate)
        return link

    def run_job(self, job: batch.Job) -> dict[str, Any]:
        from evocli import transport

        if self.refused:
            first = self.refused[0]
            skip = EvocliError(f"not sent: an earlier line was refused ({first.message})")
            skip.code = first.code
            return batch.error_record(job, skip)
        link = self.link()

        def notify(message: str) -> None:
            with self.notice_lock:
                self.console.notice(f"line {job.index + 1}: {message}")

        link.notify = notify
        base = self.settings
        settings = replace(base, model=job.model or base.model, params={**base.params, **job.params})
        request = client.build_request(settings, job.messages, stream=False)
        recorder = ledger.Recorder(
            enabled=settings.ledger, ledger_dir=settings.ledger_dir, command="batch", model=settings.model,
            stream=False, tag=self.plan.tag, warn=self.console.warn,
        )
        try:
            completion, reply = transport.complete(settings, request, link)
        except EvocliError as err:
            recorder.record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
            if isinstance(err, AuthError | CreditsError):
                self.refused.append(err)
            return batch.error_record(job, err)
        except Exception as exc:  # a bug must not stop the other lines
            return batch.error_record(job, EvocliError(f"internal error: {type(exc).__name__}: {exc}"))
        recorder.record(exit_code=0, status=reply.status, attempts=reply.attempts, completion=completion)
        return batch.ok_record(
            job, completion.content, completion.finish_reason, completion.model, completion.usage
        )


def _open_input(file: str, stdin: IO[bytes] | None, resources: ExitStack) -> IO[bytes]:
    if file == "-":
        if stdin is None:
            raise NoInputError("stdin is closed: there is nothing to read with -")
        return stdin
    try:
        return resources.enter_context(open(file, "rb"))
    except FileNotFoundError:
        raise NoInputError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise NoInputError(f"{file}: is a directory") from None
    except OSError as exc:
        raise NoInputError(f"{file}: {exc.strerror}") from None


def id_key(value: Any) -> str:
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
        return id_key(record["id"])
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


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (links and other spellings included)."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def count_lines(file: str, shard: tuple[int, int] | None) -> int | None:
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
