"""`evocli batch`: prompts from JSON Lines, sent concurrently, results written in input order."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from evocli import attach, conversation, payload, schema
from evocli.answer import Judgement
from evocli.body import params_problem
from evocli.client import Completion
from evocli.errors import EvocliError, ExitCode, InputError, UsageError
from evocli.jsonsafe import MAX_DEPTH, json_problem, safe_text, safe_value
from evocli.messages import Message
from evocli.redact import redact, scrub_value

LINE_KEYS = ("id", "prompt", "system", "messages", "model", "params", "vars", "attach", "schema")
# Makes a line's schema ready to send, as --schema-multi and --no-strict say.
Prepare = Callable[[schema.Loaded], schema.AnswerSchema]


@dataclass
class Job:
    """One input line, ready to send, or the reason it cannot be."""

    index: int  # the line's position in the file, from 0
    id: Any
    messages: list[Message] = field(default_factory=list)
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    schema: schema.AnswerSchema | None = None  # the line's own; it wins over --schema
    error: EvocliError | None = None
    held: int = 0  # bytes of attached data the line's messages hold (its data URLs)


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N` → (I, N), 1 ≤ I ≤ N."""
    first, sep, second = text.partition("/")
    try:
        i, n = int(first), int(second)
    except ValueError:
        i = n = 0
    if not sep or not 1 <= i <= n:
        raise UsageError(f"--shard expects I/N with 1 <= I <= N, got {text!r}")
    return i, n


def parse_line(
    index: int,
    line: str | None,
    default_system: str | None,
    sources: attach.Sources | None = None,
    prepare: Prepare = schema.prepare,
) -> Job | None:
    """One JSON Lines entry as a Job; None for a blank line. A bad line is a Job with an error.

    `line` is None when the line's bytes are not UTF-8. The files of `attach`, and a `schema`
    file, are read now, relative to `sources.base` (the batch file's folder; without `sources`,
    the current folder); one that cannot be sent makes the line's error (65, or 66 when it
    cannot be read). A `schema` is made ready to send by `prepare`.
    """
    job = Job(index=index, id=index + 1)
    if line is None:
        return _bad(job, "not valid UTF-8 text")
    if not line.strip():
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return _bad(job, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except ValueError as exc:  # an integer of more than 4300 digits
        return _bad(job, f"not valid JSON ({exc})")
    except RecursionError:  # json gives up long before 5,000 levels
        return _bad(job, f"it is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, str):
        value = {"prompt": value}
    if not isinstance(value, dict):
        return _bad(job, "expected a JSON string (the prompt) or an object")
    if "id" in value:
        if not isinstance(value["id"], str | int | float) or isinstance(value["id"], bool):
            return _bad(job, "id must be a string or a number")
        job.id = value["id"]
    # json reads NaN, Infinity and 1e999 as numbers, and "\ud800" as text, that cannot be sent
    # (nor written in a result); a line may also nest too deeply to be sent safely.
    problem = json_problem(value)
    if problem:
        if json_problem(job.id):
            job.id = index + 1
        return _bad(job, problem)
    unknown = [k for k in value if k not in LINE_KEYS]
    if unknown:
        return _bad(job, f"unknown field {unknown[0]!r} (fields: {', '.join(LINE_KEYS)})")
    try:
        sources = sources or attach.Sources()
        job.messages, job.held = _messages(value, default_system, sources)
        job.model = _optional_str(value, "model")
        if job.model is not None and not job.model.strip():
            raise InputError("model must not be empty")
        params = value.get("params") or {}
        if not isinstance(params, dict):
            raise InputError("params must be an object")
        problem = params_problem(params)
        if problem:
            raise InputError(problem)
        job.params = params
        job.schema = _schema(value.get("schema"), params, sources, prepare)
    except InputError as err:
        return _bad(job, err.message)
    except EvocliError as err:  # an attachment that cannot be read: keep its exit code
        return _bad(job, err.message, type(err))
    return job


def _bad(job: Job, message: str, kind: type[EvocliError] = InputError) -> Job:
    job.error = kind(f"line {job.index + 1}: {message}")
    return job


def _schema(
    value: Any, params: Mapping[str, Any], sources: attach.Sources, prepare: Prepare
) -> schema.AnswerSchema | None:
    if value is None:
        return None
    if "response_format" in params:
        # Both in the one line: neither can win over the other.
        raise InputError("schema cannot be combined with params.response_format, "
                         "as the schema is sent as the response_format")
    return prepare(schema.from_value(value, schema.files_in(sources.base), "schema"))


def _optional_str(value: Mapping[str, Any], key: str) -> str | None:
    item = value.get(key)
    if item is not None and not isinstance(item, str):
        raise InputError(f"{key} must be a string")
    return item


def _messages(
    value: Mapping[str, Any], default_system: str | None, sources: attach.Sources
) -> tuple[list[Message], int]:
    """The line's messages, and how many bytes of attached data they hold."""
    prompt = _optional_str(value, "prompt")
    system = _optional_str(value, "system")
    system = default_system if system is None else system
    given = value.get("messages")
    if given is not None and not isinstance(given, list):
        raise InputError("messages must be a list of objects")
    messages = [conversation.check_message(m, f"messages[{i}]") for i, m in enumerate(given or [])]
    if prompt is not None:
        if not prompt.strip():
            raise InputError("the prompt is empty")
        messages.append({"role": "user", "content": prompt})
    if not messages:
        raise InputError("needs a prompt or messages")
    if system is not None and messages[0].get("role") != "system":
        messages.insert(0, {"role": "system", "content": system})
    given_files = value.get("attach")
    if given_files is not None and (
        not isinstance(given_files, list) or not all(isinstance(s, str) for s in given_files)
    ):
        raise InputError("attach must be a list of paths or URLs")
    if given_files and messages[-1].get("role") != "user":
        raise InputError("attach needs a prompt, or messages that end with a user message")
    messages = _filled(messages, value.get("vars"))
    held = 0
    if given_files:
        # Read after the placeholders are filled: a file's text is data, never expanded.
        loaded = [_attachment(s, sources) for s in given_files]
        messages[-1] = attach.add_parts(messages[-1], loaded)
        held = sum(a.size for a in loaded) * 4 // 3  # base64 makes 4 bytes of 3
        # The messages alone already over the limit: refused here, where the files are known.
        attach.check_request_size(payload.encoded_size(messages), loaded)
    return messages, held


def _attachment(source: str, sources: attach.Sources) -> attach.Attachment:
    if source == attach.STDIN:
        raise InputError("attach: - (stdin) cannot be attached from a batch line")
    return attach.load(source, sources)


def _filled(messages: list[Message], variables: Any) -> list[Message]:
    if variables is None:
        return [conversation.sendable(m) for m in messages]  # without vars, braces are just text
    if not isinstance(variables, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in variables.values()
    ):
        raise InputError("vars must be an object of strings or numbers")
    values = {str(k): str(v) for k, v in variables.items()}
    names = conversation.placeholder_names(t for m in messages for t in conversation.message_texts(m))
    missing = [name for name in names if name not in values]
    if missing:
        raise InputError(f"undefined placeholder{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    return [conversation.filled(m, values) for m in messages]


def ok_record(
    job: Job, content: str, finish_reason: str | None, model: str | None, usage: Any, **data: Any
) -> dict[str, Any]:
    """A line that succeeded; `data=` (the document that matched the schema) follows its content."""
    return {
        "id": job.id,
        "ok": True,
        "content": content,
        **data,
        "finish_reason": finish_reason,
        "model": model,
        "usage": usage,
    }


def answer_record(job: Job, completion: Completion, judgement: Judgement) -> dict[str, Any]:
    """A sent line's record, as its answer's verdict has it. An incomplete answer keeps its
    content and finish_reason: the record shows what arrived, and --resume sends it again."""
    c = completion
    if judgement.error is None:
        data = {"data": judgement.document} if judgement.valid else {}
        return ok_record(job, c.content, c.finish_reason, c.model, c.usage, **data)
    record = error_record(job, judgement.error)
    if judgement.error.code == ExitCode.INCOMPLETE:
        record.update(content=c.content, finish_reason=c.finish_reason)
    return record


def error_record(job: Job, err: EvocliError) -> dict[str, Any]:
    return {"id": job.id, "ok": False, "exit_code": int(err.code), "error": err.message}


@dataclass
class Summary:
    """What a run did, for the closing line and the exit code."""

    done: int = 0
    failed: int = 0
    skipped: int = 0
    first_failure: int | None = None  # the exit code of the first failed line, in input order

    @property
    def exit_code(self) -> int:
        return self.first_failure if self.first_failure is not None else int(ExitCode.OK)


# How much attached data (as base64) the lines admitted but not finished may hold together; one
# line is always admitted, however large.
MAX_HELD_BYTES = 96 << 20


class Runner:
    """Runs jobs on N worker threads and hands results to `write` in input order.

    Whichever thread finishes the result that is next in input order writes it, with every
    finished result after it: the thread that reads the input (which may wait on an idle pipe)
    never holds results back, so a producer that waits for results before sending more cannot
    deadlock. At most `window` jobs are in flight or waiting to be written, so memory stays
    bounded whatever the input size. Any exception in a job becomes that line's record. Workers
    are daemon threads: on Ctrl-C the process can leave without waiting for calls in flight,
    after every finished result has been written.
    """

    def __init__(
        self,
        run_job: Callable[[Job], dict[str, Any]],
        write: Callable[[dict[str, Any]], None],
        concurrency: int,
        window: int | None = None,
        progress: Callable[[Summary], None] | None = None,
    ) -> None:
        self.run_job = run_job
        self.write = write
        self.window = window or max(4 * concurrency, 16)
        self.progress = progress
        self.summary = Summary()
        self._tasks: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._pending: deque[int] = deque()  # input order of the lines not yet written
        self._results: dict[int, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._failure: Exception | None = None  # a write that failed: the run ends with it
        self._held: dict[int, int] = {}  # attached bytes held by lines not yet finished
        self._stopped = False  # nothing more is written
        self._workers = [
            threading.Thread(target=self._work, daemon=True, name=f"evocli-batch-{i}")
            for i in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()

    def _work(self) -> None:
        while True:
            job = self._tasks.get()
            if job is None:
                return
            if not self._stopped:
                self._finish(job.index, self._result(job))

    def _result(self, job: Job) -> dict[str, Any]:
        try:
            return self.run_job(job)
        except EvocliError as err:  # an expected failure that escaped: it keeps its exit code
            return error_record(job, err)
        except BaseException as exc:  # whatever it is, it is this line's failure, not the run's
            message = safe_text(redact(f"internal error: {type(exc).__name__}: {exc}"))
            return error_record(job, EvocliError(message))

    def _finish(self, index: int, record: dict[str, Any]) -> None:
        with self._cond:
            self._held.pop(index, None)
            if self._stopped:
                return
            self._results[index] = record
            self._write_ready()
            self._cond.notify_all()

    def run(self, jobs: Iterable[Job]) -> Summary:
        try:
            for job in jobs:
                self._admit(job)
            with self._cond:
                while self._pending and self._failure is None:
                    self._cond.wait()
                self._raise_failure()
        except BaseException:
            # Ctrl-C, or a failure reading the input: keep every line that had finished.
            self._stop()
            raise
        finally:
            for _ in self._workers:
                self._tasks.put(None)
        return self.summary

    def _admit(self, job: Job) -> None:
        """Take one input line, once fewer than `window` lines are waiting and, for a line with
        attachments, once the lines in flight hold little enough attached data (a batch of
        20 MB screenshots must not hold a window's worth of them at once)."""
        with self._cond:
            while self._failure is None and (
                len(self._pending) >= self.window
                or (self._held and sum(self._held.values()) + job.held > MAX_HELD_BYTES)
            ):
                self._cond.wait()
            self._raise_failure()
            self._pending.append(job.index)
            if job.held and job.error is None:
                self._held[job.index] = job.held
            if job.error is not None:
                self._results[job.index] = error_record(job, job.error)
                self._write_ready()
                self._raise_failure()
                return
        self._tasks.put(job)

    def _write_ready(self) -> None:
        """Write the results that are next in input order (the lock is held)."""
        while not self._stopped and self._pending and self._pending[0] in self._results:
            record = self._results.pop(self._pending.popleft())
            try:
                self._emit(record)
            except Exception as exc:  # stdout or --out failed: the run ends with that error
                self._failure = exc
                self._stopped = True
                self._cond.notify_all()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _stop(self) -> None:
        """On interruption, keep every finished result (still in ascending input order)."""
        with self._cond:
            if not self._stopped:
                self._stopped = True
                try:
                    for index in sorted(self._results):
                        self._emit(self._results.pop(index))
                except Exception:
                    pass  # the output fails too: the interruption is what the run ends with
            self._pending.clear()
            self._cond.notify_all()

    def _emit(self, record: dict[str, Any]) -> None:
        # The one place every record passes: the key the server may have echoed is masked, and
        # no text that UTF-8 cannot encode is left to fail the write (and the run with it).
        record = safe_value(scrub_value(record))
        self.summary.done += 1
        if not record["ok"]:
            self.summary.failed += 1
            if self.summary.first_failure is None:
                self.summary.first_failure = record["exit_code"]
        self.write(record)
        if self.progress is not None:
            self.progress(self.summary)


def read_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, str | None]]:
    """Numbered lines of a binary stream, decoded as UTF-8 (None for a line that is not)."""
    for index, raw in enumerate(stream):
        try:
            yield index, raw.decode("utf-8")
        except UnicodeDecodeError:
            yield index, None


class Progress:
    """The run's progress, for the status line: done, failed, rate, ETA."""

    def __init__(self, show: Callable[[str], None], total: int | None) -> None:
        self.show = show
        self.total = total
        self.started = time.monotonic()
        self.last = 0.0

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and summary.done != self.total:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = summary.done / elapsed
        text = f"{summary.done}"
        if self.total is not None:
            text += f"/{self.total}"
        text += f" done, {summary.failed} failed, {rate:.1f}/s"
        if self.total is not None and rate > 0:
            text += f", ETA {max(self.total - summary.done, 0) / rate:.0f} s"
        self.show(text)
