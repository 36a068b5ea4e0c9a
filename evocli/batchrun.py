"""One `evocli batch` run: its input and result files, resume, and the call made for each line."""

from __future__ import annotations

import functools
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import IO, Any

from evocli import answer, attach, batch, batchbudget, client, ledger, schema
from evocli.batchbudget import RunBudget
from evocli.config import Settings
from evocli.errors import (
    AuthError,
    BudgetError,
    CreditsError,
    EvocliError,
    ExitCode,
    NoInputError,
    OutputError,
)
from evocli.messages import Message
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
    # Every line's answer contract; a line's own schema takes the place of --schema's, made
    # ready to send as --no-strict (`strict`) and --schema-multi (`multi`) say.
    contract: answer.Contract = field(default_factory=answer.Contract)
    strict: bool = True
    multi: bool = False
    # --max-cost and --max-total-tokens; None: no cap.
    budget: RunBudget | None = None


def run(plan: Plan, settings: Settings, console: Console, stdin: IO[bytes] | None) -> None:
    """Open the input and the result sink, then run the lines; failed lines make the exit code.

    The progress is the console's status line (shown only on a terminal's stderr).
    """
    with ExitStack() as resources:
        source = _open_input(plan.file, stdin, resources)
        done_ids: set[str] = set()
        sink: Callable[[dict[str, Any]], None] = console.answer_line
        results = None if plan.out is None else _Results(plan.out, resources)
        if results is not None and plan.resume:
            done_ids = results.done_ids()
        if plan.budget is not None:
            _check_budget_models(plan, plan.budget, settings, done_ids)
        if results is not None:
            if not plan.resume:
                results.truncate()
            sink = results.write
        meter = None
        if console.err_tty and not console.quiet:
            meter = batch.Progress(console.status, count_lines(plan.file, plan.shard))
        _Lines(plan, settings, console, done_ids).run(source, sink, meter)


def _check_budget_models(plan: Plan, budget: RunBudget, settings: Settings, done_ids: set[str]) -> None:
    """With --max-cost, the models of a file's lines are priced before any is sent (and before
    --out is rewritten). Input that cannot be read twice (stdin, a pipe) checks the default model
    now, and each line's own model as it arrives."""
    if not budget.needs_prices:
        return
    is_done = (lambda value: id_key(value) in done_ids) if done_ids else None
    models = batchbudget.models_in_file(plan.file, plan.shard, settings.model, is_done)
    budget.check_models([settings.model] if models is None else sorted(models))


class _Lines:
    """Feeds the lines to the workers; each call is sent, recorded and turned into a result."""

    def __init__(self, plan: Plan, settings: Settings, console: Console, done_ids: set[str]) -> None:
        from evocli import transport

        self.plan, self.settings, self.console, self.done_ids = plan, settings, console, done_ids
        self.gate = transport.Gate()
        self.local = threading.local()
        self.notice_lock = threading.Lock()
        self.refused: list[EvocliError] = []  # a key or account refusal: every later line would fail too
        self.month_files = ledger.MonthFiles()  # one descriptor per month file for the whole run
        self.skipped = 0
        self.budget = plan.budget

    def run(
        self, source: IO[bytes], sink: Callable[[dict[str, Any]], None], meter: batch.Progress | None
    ) -> None:
        runner = batch.Runner(self.run_job, sink, self.plan.concurrency, progress=meter)
        try:
            summary = runner.run(self.jobs(source))
        finally:
            self.console.status("")
            self.month_files.close()
        note = f" ({self.skipped} already done)" if self.skipped else ""
        if self.budget is not None and self.budget.unsent:
            # Whatever else failed, the run stopped short of its input: 69, as a cap was reached.
            resume = "; --resume with a new budget sends the rest" if self.plan.out else ""
            raise BudgetError(
                f"{summary.failed} of {summary.done} failed{note}; "
                f"budget reached: {self.budget.unsent} not sent",
                hint=self.budget.spent() + resume,
            )
        if summary.failed:
            err = EvocliError(f"{summary.failed} of {summary.done} failed{note}")
            err.code = ExitCode(summary.exit_code)
            raise err

    def jobs(self, source: IO[bytes]) -> Iterator[batch.Job]:
        plan = self.plan
        shard = plan.shard
        # A line names its files (attachments, a schema) relative to the batch file's folder.
        sources = attach.Sources(base="" if plan.file == "-" else os.path.dirname(plan.file))
        prepare = functools.partial(schema.prepare, strict=plan.strict, multi=plan.multi)
        for index, text in batch.read_lines(source):
            if shard is not None and index % shard[1] != shard[0] - 1:
                continue
            job = batch.parse_line(index, text, plan.system, sources, prepare)
            if job is None:
                continue
            if self.done_ids and id_key(job.id) in self.done_ids:
                self.skipped += 1
                continue
            if self.budget is not None and job.error is None:
                job.error = self.budget.line_problem(job, self.settings.model)
            yield job

    def link(self) -> Any:
        from evocli import transport

        link = getattr(self.local, "link", None)
        if link is None:
            link = self.local.link = transport.Link(
                gate=self.gate, max_response_bytes=self.settings.max_response_bytes
            )
        return link

    def run_job(self, job: batch.Job) -> dict[str, Any]:
        if self.budget is not None and not self.budget.admit():
            return batch.error_record(job, self.budget.error())
        if self.refused:
            first = self.refused[0]
            skip = EvocliError(f"not sent: an earlier line was refused ({first.message})")
            skip.code = first.code
            return batch.error_record(job, skip)
        try:
            return self._answer(job)
        except EvocliError as err:
            if isinstance(err, AuthError | CreditsError):
                self.refused.append(err)
            return batch.error_record(job, err)
        except Exception as exc:  # a bug must not stop the other lines
            return batch.error_record(job, EvocliError(f"internal error: {type(exc).__name__}: {exc}"))

    def _answer(self, job: batch.Job) -> dict[str, Any]:
        """Send the line until its answer is judged (again with corrective turns while it does
        not match its schema); every attempt is a ledger record."""
        link = self.link()

        def notify(message: str) -> None:
            with self.notice_lock:
                self.console.notice(f"line {job.index + 1}: {message}")

        link.notify = notify
        contract = self.plan.contract
        if job.schema is not None:
            contract = replace(contract, schema=job.schema)
        base = self.settings
        params = {**base.params, **job.params, **contract.params()}
        settings = replace(base, model=job.model or base.model, params=params)
        turns: list[Message] = []
        for attempt in range(1, contract.attempts + 1):
            completion, record = self._send(settings, [*job.messages, *turns], link)
            if self.budget is not None:
                self.budget.spend(completion, settings.model)
            judgement = answer.judge(contract, completion, attempt)
            record(judgement.code)
            if judgement.warning:
                self.console.warn(f"line {job.index + 1}: {judgement.warning}")
            if judgement.retry is None:
                return batch.answer_record(job, completion, judgement)
            notify(judgement.notice or "")
            turns = judgement.retry
        raise AssertionError("the last attempt's verdict never asks again")

    def _send(
        self, settings: Settings, messages: list[Message], link: Any
    ) -> tuple[client.Completion, Callable[[int], None]]:
        """One request: the answer, and how to record it once its exit code is known (a failed
        request is recorded here, and raised)."""
        from evocli import transport

        request = client.build_request(settings, messages, stream=False)
        recorder = ledger.Recorder(
            enabled=settings.ledger, ledger_dir=settings.ledger_dir, command="batch", model=settings.model,
            stream=False, tag=self.plan.tag, warn=self.console.warn, files=self.month_files,
        )
        try:
            completion, reply = transport.complete(settings, request, link)
        except EvocliError as err:
            recorder.record(exit_code=int(err.code), status=err.http_status, attempts=err.attempts)
            raise

        def record(code: int) -> None:
            recorder.record(exit_code=code, ok=code == 0, status=reply.status, attempts=reply.attempts,
                            completion=completion)

        return completion, record


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


class _Results:
    """The results file of a run (`--out`), held by this run alone: a second run that would
    write into it at the same time (two shards, say) is refused, since each would rewrite what
    the other wrote. Results are appended, one write per line."""

    def __init__(self, out: str, resources: ExitStack) -> None:
        from evocli import safefile

        self.out = out
        try:
            self.fd = safefile.claim(out)
        except BlockingIOError:
            raise OutputError(
                f"{out} is being written by another evocli batch run",
                hint="let that run finish, or give each run its own --out file",
            ) from None
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
        resources.callback(lambda: os.close(self.fd))

    def truncate(self) -> None:
        if stat.S_ISREG(os.fstat(self.fd).st_mode):
            os.ftruncate(self.fd, 0)

    def done_ids(self) -> set[str]:
        """The ids the file holds as done; other records are dropped from it, atomically.

        The file is read line by line (twice when it must be rewritten), so only the ids are
        held in memory, never the results themselves.
        """
        from evocli import safefile

        done: set[str] = set()
        dropped = 0
        try:
            for raw in self._lines():
                key = _done_key(raw)
                if key is None:
                    dropped += 1
                else:
                    done.add(key)
            if dropped:
                kept = (raw if raw.endswith(b"\n") else raw + b"\n" for raw in self._lines()
                        if _done_key(raw) is not None)
                fd = safefile.replace(self.out, kept, hold=True)
                assert fd is not None
                os.close(self.fd)
                self.fd = fd
        except OSError as exc:
            raise OutputError(f"cannot resume from {self.out}: {exc.strerror or exc}") from None
        return done

    def _lines(self) -> Iterator[bytes]:
        with open(os.dup(self.fd), "rb") as fh:
            fh.seek(0)
            yield from fh

    def write(self, record: dict[str, Any]) -> None:
        try:
            os.write(self.fd, json_line(record))
        except OSError as exc:
            raise OutputError(f"cannot write {self.out}: {exc.strerror or exc}") from None


def _done_key(raw: bytes) -> str | None:
    """The id of a result line that succeeded, or None for any other line."""
    from evocli.jsonsafe import load_json

    try:
        record = load_json(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(record, dict) and record.get("ok") is True and "id" in record:
        return id_key(record["id"])
    return None


def names_input(out: str, file: str, stdin: IO[bytes] | None) -> bool:
    """Whether `--out` names the input itself, by any path or descriptor (`-` and /dev/stdin
    included): writing it would destroy what is being read, or never end."""
    try:
        target = os.stat(out)
        source = os.fstat(stdin.fileno()) if file == "-" and stdin is not None else os.stat(file)
    except (OSError, ValueError):
        return False
    return (target.st_dev, target.st_ino) == (source.st_dev, source.st_ino)


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
