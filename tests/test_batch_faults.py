"""`evocli batch` under faults: one bad line or one failing worker stays that line's record, results
flow while stdin is idle, and the key never reaches a record."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from evocli import batch
from evocli.errors import InputError
from tests.conftest import KEY, REPO, child_env, run_evocli
from tests.server import DEFAULT_USAGE, FakeServer, Reply, completion_body

ANSWER = "Hello from the test server."


def ok(id: Any, content: str = ANSWER) -> dict[str, Any]:
    return {"id": id, "ok": True, "content": content, "finish_reason": "stop", "model": "gpt-5.2",
            "usage": DEFAULT_USAGE}


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def run_batch(tmp_path: Path, lines: list[str], *args: str, input_bytes: bytes | None = None) -> Any:
    src = tmp_path / "in.jsonl"
    src.write_bytes(input_bytes if input_bytes is not None else "".join(f"{x}\n" for x in lines).encode())
    return run_evocli(["batch", str(src), "-c", "2", *args], timeout=60)


def test_input_line_nested_5000_levels_deep_is_that_lines_record(api_env: FakeServer, tmp_path: Path) -> None:
    deep = "[" * 5000 + "]" * 5000
    over = json.dumps({"prompt": "p", "params": {"x": json.loads("[" * 250 + "]" * 250)}})
    r = run_batch(tmp_path, ['"first"', deep, over, '"last"'])
    assert (r.returncode, r.stderr) == (65, "evocli: error: 2 of 4 failed\n")
    assert records(r.stdout) == [
        ok(1),
        {"id": 2, "ok": False, "exit_code": 65, "error": "line 2: it is nested more than 200 levels deep"},
        {"id": 3, "ok": False, "exit_code": 65, "error": "line 3: it is nested more than 200 levels deep"},
        ok(4),
    ]
    assert len(api_env.requests) == 2


def test_input_lines_that_cannot_be_sent_are_their_own_records(api_env: FakeServer, tmp_path: Path) -> None:
    r = run_batch(tmp_path, [
        '{"id": "a", "prompt": "A\\ud800B"}',
        '{"id": "b\\udcff", "prompt": "x"}',
        '{"prompt": "x", "model": "gpt\\ud800"}',
        '{"prompt": "x", "id": ' + "9" * 5000 + "}",
        '"fine"',
    ])
    def lone(line: int, code: str) -> str:
        return f"line {line}: text holds '\\u{code}', a lone surrogate that is not valid UTF-8"

    assert records(r.stdout) == [
        {"id": "a", "ok": False, "exit_code": 65, "error": lone(1, "d800")},
        {"id": 2, "ok": False, "exit_code": 65, "error": lone(2, "dcff")},
        {"id": 3, "ok": False, "exit_code": 65, "error": lone(3, "d800")},
        {"id": 4, "ok": False, "exit_code": 65, "error": "line 4: not valid JSON (Exceeds the limit (4300 digits) "
         "for integer string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)"},
        ok(5),
    ]
    assert r.returncode == 65


def test_a_failure_escaping_every_worker_stays_each_lines_record(api_env: FakeServer, tmp_path: Path) -> None:
    """-m with bytes that are not UTF-8: building each request fails inside the worker (and so,
    before, did the ledger write); the run ends with every line's record instead of hanging."""
    r = run_evocli(["batch", "-", "-m", "gpt-\udcff"], input='"one"\n"two"\n"three"\n', timeout=60)
    error = "the request body cannot be sent: text holds '\\udcff', a lone surrogate that is not valid UTF-8"
    assert records(r.stdout) == [{"id": i, "ok": False, "exit_code": 65, "error": error} for i in (1, 2, 3)]
    assert (r.returncode, r.stderr) == (65, "evocli: error: 3 of 3 failed\n")
    assert api_env.requests == []


def _run_with_deadline(runner: batch.Runner, jobs: list[batch.Job]) -> batch.Summary:
    """Run in a thread so that a stalled runner fails the test instead of hanging it."""
    out: list[batch.Summary] = []
    thread = threading.Thread(target=lambda: out.append(runner.run(jobs)), daemon=True)
    thread.start()
    thread.join(20)
    assert out, "the runner stalled"
    return out[0]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"),
                                 SystemExit(3), InputError("bad line")])
def test_any_exception_in_a_worker_becomes_that_lines_record(exc: BaseException) -> None:
    written: list[dict[str, Any]] = []

    def run_job(job: batch.Job) -> dict[str, Any]:
        if job.index == 2:
            raise exc
        return {"id": job.id, "ok": True}

    runner = batch.Runner(run_job, written.append, concurrency=3)
    summary = _run_with_deadline(runner, [batch.Job(index=i, id=i + 1) for i in range(6)])
    if isinstance(exc, InputError):
        failed = {"id": 3, "ok": False, "exit_code": 65, "error": "bad line"}
    else:
        failed = {"id": 3, "ok": False, "exit_code": 1, "error": f"internal error: {type(exc).__name__}: {exc}"}
    assert written == [{"id": 1, "ok": True}, {"id": 2, "ok": True}, failed,
                       {"id": 4, "ok": True}, {"id": 5, "ok": True}, {"id": 6, "ok": True}]
    assert (summary.done, summary.failed, summary.exit_code) == (6, 1, failed["exit_code"])


def test_a_record_whose_text_cannot_be_encoded_is_written_with_replacement_characters() -> None:
    written: list[bytes] = []
    runner = batch.Runner(lambda job: {"id": job.id, "ok": True, "content": "A\ud800B", "x\udcff": 1},
                          lambda rec: written.append(json.dumps(rec, ensure_ascii=False).encode()), 1)
    _run_with_deadline(runner, [batch.Job(index=0, id=1)])
    assert written == ['{"id": 1, "ok": true, "content": "A\ufffdB", "x\ufffd": 1}'.encode()]


def test_a_failing_write_ends_the_run_with_its_error() -> None:
    def write(record: dict[str, Any]) -> None:
        if record["id"] == 2:
            raise OSError("disk full")

    runner = batch.Runner(lambda job: {"id": job.id, "ok": True}, write, concurrency=2)
    with pytest.raises(OSError, match="disk full"):
        _run_with_deadline_raising(runner, [batch.Job(index=i, id=i + 1) for i in range(50)])


def _run_with_deadline_raising(runner: batch.Runner, jobs: list[batch.Job]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner.run(jobs)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the runner stalled"
    if errors:
        raise errors[0]


# Results flow while stdin is idle.

def _read_line(stream: IO[bytes], timeout: float = 20) -> bytes:
    """One line from an unbuffered pipe (bufsize=0: nothing hides in a buffer from select)."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        assert sel.select(timeout), "no result while stdin was idle"
    return stream.readline()


def test_results_are_written_while_stdin_is_idle(api_env: FakeServer) -> None:
    """A producer that waits for each result before it sends the next line (a conversation loop)."""
    proc = subprocess.Popen([sys.executable, "-m", "evocli", "batch", "-", "-c", "2"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=REPO, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for i in range(3):
            proc.stdin.write(f'"question {i}"\n'.encode())
            proc.stdin.flush()
            assert json.loads(_read_line(proc.stdout)) == ok(i + 1)
        proc.stdin.close()
        assert proc.wait(20) == 0
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
        proc.wait()


def test_bad_lines_are_written_while_stdin_is_idle(api_env: FakeServer) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "evocli", "batch", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=REPO, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'"fine"\nnot json\n')
        proc.stdin.flush()
        assert json.loads(_read_line(proc.stdout)) == ok(1)
        assert json.loads(_read_line(proc.stdout))["error"] == "line 2: not valid JSON (Expecting value at column 1)"
    finally:
        proc.kill()
        proc.wait()


def test_ctrl_c_while_stdin_is_idle_keeps_the_finished_results(api_env: FakeServer) -> None:
    import signal

    api_env.default = lambda rec: Reply(delay=5.0 if b"slow" in rec.body else 0.0, body=completion_body())
    proc = subprocess.Popen([sys.executable, "-m", "evocli", "batch", "-", "-c", "4"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), cwd=REPO, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        proc.stdin.write(b'"one"\n"slow"\n"three"\n')
        proc.stdin.flush()
        assert json.loads(_read_line(proc.stdout)) == ok(1)
        time.sleep(0.5)  # "three" is answered too, but waits behind "slow"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == -signal.SIGINT  # died by the signal, as a shell loop needs
        assert records(proc.stdout.read().decode()) == [ok(3)]
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


# The key the server echoes never reaches a record.

def test_key_echoed_into_batch_results_is_masked_on_stdout_and_in_out(api_env: FakeServer, tmp_path: Path) -> None:
    escaped = KEY.replace("-", "\\u002d")  # however the server spells it, the record holds the text
    body = json.dumps(completion_body("your key: KEY")).replace("KEY", escaped).encode()
    api_env.script(Reply(body=body), Reply(body=body))
    out = tmp_path / "out.jsonl"
    for args in ([], ["--out", str(out)]):
        r = run_batch(tmp_path, ['"a"'], *args)
        assert (r.returncode, r.stderr) == (0, "")
        text = out.read_text() if args else r.stdout
        assert KEY not in text and escaped not in text
        [record] = records(text)
        assert record["content"] == "your key: sk-…WXYZ"
    assert os.path.getsize(out) > 0
