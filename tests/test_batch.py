"""`evocli batch` against the local server: order, failures, shared back-off, resume, shards, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evocli import batch
from evocli.errors import UsageError
from tests.conftest import KEY, REPO, child_env
from tests.server import DEFAULT_USAGE, FakeServer, Recorded, Reply, completion_body

Cli = Any


def echo(delay: float | dict[str, float] = 0.0) -> Any:
    """A server answer that repeats the last user message, after a per-prompt delay."""

    def reply(rec: Recorded) -> Reply:
        body = json.loads(rec.body)
        text = body["messages"][-1]["content"]
        wait = delay.get(text, 0.0) if isinstance(delay, dict) else delay
        return Reply(delay=wait, body=completion_body(f"re: {text}", model=body["model"]))

    return reply


@pytest.fixture
def echo_server(monkeypatch: pytest.MonkeyPatch) -> Any:
    servers: list[FakeServer] = []

    def start(delay: float | dict[str, float] = 0.0) -> FakeServer:
        srv = FakeServer(default=echo(delay)).__enter__()
        servers.append(srv)
        monkeypatch.setenv("EVOLINK_API_KEY", KEY)
        monkeypatch.setenv("EVOLINK_BASE_URL", srv.base_url)
        return srv

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


def ok(id: Any, text: str, model: str = "gpt-5.2") -> dict[str, Any]:
    return {"id": id, "ok": True, "content": f"re: {text}", "finish_reason": "stop", "model": model, "usage": DEFAULT_USAGE}


def lines(r: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_results_come_in_input_order_under_concurrency(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    prompts = [f"p{i}" for i in range(12)]
    srv = echo_server({p: 0.3 - i * 0.025 for i, p in enumerate(prompts)})  # later lines answer sooner
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    r = cli(["batch", str(src), "--concurrency", "6"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert lines(r) == [ok(i + 1, p) for i, p in enumerate(prompts)]
    assert len(srv.requests) == 12


def test_line_forms_defaults_and_overrides(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps("plain prompt"),
        json.dumps({"id": "t-2", "prompt": "with system", "system": "Own system."}),
        json.dumps({"id": 3, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                    "prompt": "and then?", "model": "gpt-5.5", "params": {"seed": 9}}),
        "",
        json.dumps({"messages": [{"role": "system", "content": "kept"}, {"role": "user", "content": "q"}]}),
    ]) + "\n")
    r = cli(["batch", str(src), "-c", "1", "-s", "Default system.", "-m", "gpt-5.2", "-p", "seed=1", "-t", "0.5"])
    assert r.exit_code == 0
    assert [rec["id"] for rec in lines(r)] == [1, "t-2", 3, 5]
    bodies = srv.bodies
    assert bodies[0] == {"model": "gpt-5.2", "messages": [{"role": "system", "content": "Default system."},
                                                          {"role": "user", "content": "plain prompt"}],
                         "seed": 1, "temperature": 0.5}
    assert bodies[1]["messages"][0] == {"role": "system", "content": "Own system."}
    assert bodies[2] == {"model": "gpt-5.5", "messages": [
        {"role": "system", "content": "Default system."}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"}, {"role": "user", "content": "and then?"}], "seed": 9, "temperature": 0.5}
    assert bodies[3]["messages"] == [{"role": "system", "content": "kept"}, {"role": "user", "content": "q"}]


def test_failing_and_bad_lines_do_not_stop_the_others(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    srv.default = lambda rec: (Reply(status=400, body={"error": {"message": "Invalid request parameters"}})
                               if b"bad request" in rec.body else echo()(rec))
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'"fine"\n{"prompt": "bad request"}\nnot json\n{"promt": "typo"}\n"also fine"\n\xff\xfe\n')
    r = cli(["batch", str(src), "-c", "3"])
    assert r.exit_code == 65
    assert lines(r) == [
        ok(1, "fine"),
        {"id": 2, "ok": False, "exit_code": 65, "error": 'HTTP 400 Bad Request: "Invalid request parameters"'},
        {"id": 3, "ok": False, "exit_code": 65, "error": "line 3: not valid JSON (Expecting value at column 1)"},
        {"id": 4, "ok": False, "exit_code": 65,
         "error": "line 4: unknown field 'promt' (fields: id, prompt, system, messages, model, params, vars, attach, schema)"},
        ok(5, "also fine"),
        {"id": 6, "ok": False, "exit_code": 65, "error": "line 6: not valid UTF-8 text"},
    ]
    assert r.stderr == "evocli: error: 4 of 6 failed\n"
    assert len(srv.requests) == 3


def test_non_finite_numbers_are_a_bad_line(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a", "params": {"temperature": NaN}}\n"fine"\n'
                   '{"prompt": "b", "params": {"stop": ["x", -Infinity]}}\n'
                   '{"messages": [{"role": "user", "content": [{"type": "text", "text": "c", "w": 1e999}]}]}\n'
                   '{"id": "T-5", "prompt": "d", "params": {"seed": Infinity}}\n'
                   '{"id": NaN, "prompt": "e"}\n')
    r = cli(["batch", str(src), "-c", "2"])
    assert r.exit_code == 65
    assert lines(r) == [
        {"id": 1, "ok": False, "exit_code": 65, "error": "line 1: NaN is not a JSON number"},
        ok(2, "fine"),
        {"id": 3, "ok": False, "exit_code": 65, "error": "line 3: -Infinity is not a JSON number"},
        {"id": 4, "ok": False, "exit_code": 65, "error": "line 4: Infinity is not a JSON number"},
        {"id": "T-5", "ok": False, "exit_code": 65, "error": "line 5: Infinity is not a JSON number"},
        {"id": 6, "ok": False, "exit_code": 65, "error": "line 6: NaN is not a JSON number"},
    ]
    assert r.stderr == "evocli: error: 5 of 6 failed\n"
    assert [body["messages"] for body in srv.bodies] == [[{"role": "user", "content": "fine"}]]


def test_exit_code_is_the_first_failed_line(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    srv.default = lambda rec: (Reply(status=401, body={"error": {"message": "nope"}})
                               if b"auth" in rec.body else echo()(rec))
    src = tmp_path / "in.jsonl"
    src.write_text('"ok"\n"auth"\n{"prompt": ""}\n')
    r = cli(["batch", str(src)])
    assert r.exit_code == 77
    assert r.stderr == "evocli: error: 2 of 3 failed\n"


def test_429_pause_is_shared_by_all_workers(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server(0.1)
    srv.script(Reply(status=429, headers={"Retry-After": "0.8"}, body={"error": {"message": "Rate limit exceeded"}}))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(12)))
    r = cli(["batch", str(src), "-c", "4"])
    assert r.exit_code == 0
    assert [rec["ok"] for rec in lines(r)] == [True] * 12
    assert r.stderr.startswith("evocli: line ")
    assert "HTTP 429, retrying in 0.8 s (attempt 2 of 3)" in r.stderr
    times = sorted(q.time for q in srv.requests)
    t429 = times[0]
    later = [t for t in times if t > t429 + 0.05]
    assert len(later) >= 9  # all but the first four (already in flight together) waited
    assert min(later) >= t429 + 0.75


def test_out_file_and_resume(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    flaky = {"p2", "p4"}
    srv.default = lambda rec: (Reply(status=503, body={"error": {"message": "busy"}})
                               if json.loads(rec.body)["messages"][-1]["content"] in flaky else echo()(rec))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"id{i}", "prompt": f"p{i}"}) + "\n" for i in range(6)))
    out = tmp_path / "results.jsonl"
    r = cli(["batch", str(src), "--out", str(out), "--retries", "0", "-q"])
    assert (r.exit_code, r.stdout, r.stderr) == (75, "", "evocli: error: 2 of 6 failed\n")
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["id"], x["ok"]) for x in first] == [(f"id{i}", i not in (2, 4)) for i in range(6)]
    sent_before = len(srv.requests)
    flaky.clear()
    r = cli(["batch", str(src), "--out", str(out), "--resume"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert sorted(q.json["messages"][-1]["content"] for q in srv.requests[sent_before:]) == ["p2", "p4"]
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(x["id"] for x in final) == [f"id{i}" for i in range(6)]
    assert all(x["ok"] for x in final)
    r = cli(["batch", str(src), "--out", str(out), "--resume"])
    assert r.exit_code == 0 and len(srv.requests) == sent_before + 2
    assert out.read_text().count("\n") == 6


def test_without_resume_out_is_rewritten(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    out = tmp_path / "o.jsonl"
    out.write_text("old\n")
    assert cli(["batch", str(src), "--out", str(out)]).exit_code == 0
    assert [json.loads(x) for x in out.read_text().splitlines()] == [ok(1, "a")]


def test_shards_cover_every_line_once(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(10)))
    seen: list[int] = []
    for i in (1, 2, 3):
        r = cli(["batch", str(src), "--shard", f"{i}/3"])
        assert r.exit_code == 0
        ids = [rec["id"] for rec in lines(r)]
        assert ids == [n for n in range(1, 11) if (n - 1) % 3 == i - 1]
        seen += ids
    assert sorted(seen) == list(range(1, 11))


def test_ledger_records_each_call_as_batch(cli: Cli, echo_server: Any, tmp_path: Path, isolated: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n"b"\nbad\n')
    cli(["batch", str(src), "--tag", "nightly"])
    records = [json.loads(x) for f in (isolated / "ledger").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert sorted((r["command"], r["tag"], r["ok"]) for r in records) == [("batch", "nightly", True)] * 2


def test_stdin_input(cli: Cli, echo_server: Any) -> None:
    echo_server()
    r = cli(["batch", "-"], input='"from stdin"\n')
    assert lines(r) == [ok(1, "from stdin")]


@pytest.mark.parametrize(
    ("args", "code", "stderr"),
    [
        (["batch", "in.jsonl", "--resume"], 2, "evocli: error: --resume needs --out FILE (the results to resume from)\n"),
        (["batch", "in.jsonl", "--shard", "4/3"], 2, "evocli: error: --shard expects I/N with 1 <= I <= N, got '4/3'\n"),
        (["batch", "in.jsonl", "--shard", "x"], 2, "evocli: error: --shard expects I/N with 1 <= I <= N, got 'x'\n"),
        (["batch", "missing.jsonl"], 66, "evocli: error: missing.jsonl: no such file\n"),
        (["batch", "in.jsonl", "--out", "nodir/o.jsonl"], 73, "evocli: error: cannot write nodir/o.jsonl: No such file or directory\n"),
        (["batch", "in.jsonl", "-c", "0"], 2, None),
    ],
)
def test_batch_usage_errors(cli: Cli, echo_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            args: list[str], code: int, stderr: str | None) -> None:
    echo_server()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text('"x"\n')
    r = cli(args)
    assert (r.exit_code, r.stdout) == (code, "")
    if stderr is not None:
        assert r.stderr == stderr


def test_runner_reads_ahead_only_a_window() -> None:
    consumed = 0
    written: list[int] = []
    high_water = 0

    def jobs():  # type: ignore[no-untyped-def]
        nonlocal consumed
        for i in range(2000):
            consumed += 1
            yield batch.Job(index=i, id=i + 1, messages=[{"role": "user", "content": "x"}])

    def write(record: dict[str, Any]) -> None:
        nonlocal high_water
        written.append(record["id"])
        high_water = max(high_water, consumed - len(written))

    summary = batch.Runner(lambda job: {"id": job.id, "ok": True}, write, concurrency=4, window=16).run(jobs())
    assert written == list(range(1, 2001))
    assert summary.done == 2000 and summary.failed == 0
    assert high_water <= 16


def test_parse_shard_and_lines() -> None:
    assert batch.parse_shard("2/5") == (2, 5)
    with pytest.raises(UsageError):
        batch.parse_shard("0/5")
    assert batch.parse_line(0, "   \n", None) is None
    job = batch.parse_line(4, '{"id": true, "prompt": "x"}', None)
    assert job is not None and job.error is not None
    assert job.error.message == "line 5: id must be a string or a number"


def test_progress_line() -> None:
    out: list[str] = []
    p = batch.Progress(out.append, total=10)
    p.started -= 2.0
    p(batch.Summary(done=4, failed=1))
    assert out == ["4/10 done, 1 failed, 2.0/s, ETA 3 s"]


def test_ctrl_c_keeps_finished_lines(tmp_path: Path) -> None:
    def slow_after_two(rec: Recorded) -> Reply:
        text = json.loads(rec.body)["messages"][-1]["content"]
        return echo(0.0 if text in ("p0", "p1") else 30.0)(rec)

    with FakeServer(default=slow_after_two) as srv:
        src = tmp_path / "in.jsonl"
        src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(6)))
        out = tmp_path / "out.jsonl"
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        proc = subprocess.Popen([sys.executable, "-m", "evocli", "batch", str(src), "-c", "2", "--out", str(out)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=REPO)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGINT  # died by the signal, as the shell should see
    assert b"Traceback" not in err
    assert [json.loads(x) for x in out.read_text().splitlines()] == [ok(1, "p0"), ok(2, "p1")]


def test_vars_fill_placeholders_only_in_lines_that_have_them(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"prompt": "Translate to {{ lang }}: {{text}}", "vars": {"lang": "French", "text": "{{ lang }}"}}),
        json.dumps({"prompt": "Explain {{ jinja }} braces"}),
        json.dumps({"prompt": "Hi {{a}} {{b}}", "vars": {"c": 1}}),
        json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "n={{n}}"}]}], "vars": {"n": 3}}),
    ]) + "\n")
    r = cli(["batch", str(src), "-c", "1"])
    assert r.exit_code == 65
    assert lines(r)[2] == {"id": 3, "ok": False, "exit_code": 65, "error": "line 3: undefined placeholders: a, b"}
    assert [b["messages"][-1]["content"] for b in srv.bodies] == [
        "Translate to French: {{ lang }}", "Explain {{ jinja }} braces", [{"type": "text", "text": "n=3"}]]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_while_writing_results_is_73(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n"b"\n')
    r = cli(["batch", str(src), "--out", "/dev/full"])
    assert (r.exit_code, r.stdout, r.stderr) == (73, "", "evocli: error: cannot write /dev/full: No space left on device\n")


def test_out_may_not_be_the_input_by_any_name(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n"b"\n')
    (tmp_path / "link.jsonl").symlink_to(src)
    for args in (["batch", str(src), "--out", str(src)], ["batch", str(tmp_path / "link.jsonl"), "--out", str(src)],
                 ["batch", str(src), "--out", str(tmp_path / "." / "in.jsonl")]):
        r = cli(args)
        assert (r.exit_code, r.stdout, r.stderr) == (2, "", REFUSED_OUT)
    assert src.read_text() == '"a"\n"b"\n'


REFUSED_OUT = "evocli: error: --out must not be the input file\nhint: write the results to another file\n"


def test_out_may_not_be_the_input_read_through_stdin(tmp_path: Path) -> None:
    """`evocli batch - --out p.jsonl < p.jsonl` and `--out /dev/stdin`: the file is compared by
    identity, whatever path or descriptor names it (it was emptied, or the run hung)."""
    src = tmp_path / "p.jsonl"
    src.write_text('"a"\n"b"\n')
    env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": "http://127.0.0.1:9/v1"})
    for out in (str(src), "/dev/stdin", "/proc/self/fd/0"):
        with open(src, "rb") as stdin:
            proc = subprocess.run([sys.executable, "-m", "evocli", "batch", "-", "--out", out], stdin=stdin,
                                  capture_output=True, env=env, cwd=REPO, timeout=30)
        assert (proc.returncode, proc.stdout, proc.stderr.decode()) == (2, b"", REFUSED_OUT)
    pipe = subprocess.run(f"cat {src} | {sys.executable} -m evocli batch - --out /dev/stdin", shell=True,
                          capture_output=True, env=env, cwd=REPO, timeout=30)
    assert (pipe.returncode, pipe.stderr.decode()) == (2, REFUSED_OUT)
    assert src.read_text() == '"a"\n"b"\n'


def test_a_second_run_on_the_same_out_is_refused(tmp_path: Path) -> None:
    """Two runs (two shards, say) writing one results file would lose results: the second is
    refused while the first holds the file, and the first's results are all there."""
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(20)))
    out = tmp_path / "out.jsonl"
    with FakeServer(default=echo(0.2)) as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        args = [sys.executable, "-m", "evocli", "batch", str(src), "--out", str(out), "--resume", "-c", "2"]
        first = subprocess.Popen([*args, "--shard", "1/2"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, cwd=REPO)
        deadline = time.monotonic() + 20
        while not srv.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run([*args, "--shard", "2/2"], stdin=subprocess.DEVNULL, capture_output=True,
                                env=env, cwd=REPO, timeout=60)
        assert first.wait(timeout=60) == 0
    assert (second.returncode, second.stdout) == (73, b"")
    assert second.stderr.decode() == (
        f"evocli: error: {out} is being written by another evocli batch run\n"
        "hint: let that run finish, or give each run its own --out file\n"
    )
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == list(range(1, 21, 2))


def test_bad_message_parts_are_line_errors_not_crashes(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([
        json.dumps("first"),
        json.dumps({"messages": [{"role": "user", "content": ["x"]}], "vars": {"a": 1}}),
        json.dumps({"messages": [{"role": "user", "content": [{"type": "text"}]}]}),
        json.dumps({"messages": [{"role": "user", "content": "hi", "literal": True}]}),
        json.dumps({"prompt": "x", "model": " "}),
        json.dumps("third"),
    ]) + "\n")
    r = cli(["batch", str(src), "-c", "2"])
    assert r.exit_code == 65
    recs = lines(r)
    assert [x["ok"] for x in recs] == [True, False, False, True, False, True]
    assert recs[1]["error"] == "line 2: messages[0]: content[0]: expected a mapping with type, got text"
    assert recs[2]["error"] == "line 3: messages[0]: content[0]: a text part needs text:"
    assert recs[4]["error"] == "line 5: model must not be empty"


def test_literal_flag_is_never_sent(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "{{x}}", "literal": True}]}) + "\n")
    assert cli(["batch", str(src)]).exit_code == 0
    assert srv.bodies[0]["messages"] == [{"role": "user", "content": "{{x}}"}]


def test_a_refused_key_stops_sending(cli: Cli, echo_server: Any, tmp_path: Path) -> None:
    srv = echo_server()
    srv.default = lambda rec: Reply(status=401, body={"error": {"message": "Invalid or expired token"}})
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(30)))
    r = cli(["batch", str(src), "-c", "1"])
    assert r.exit_code == 77
    assert len(srv.requests) == 1
    recs = lines(r)
    assert len(recs) == 30 and all(x["exit_code"] == 77 for x in recs)
    assert recs[1]["error"] == 'not sent: an earlier line was refused (HTTP 401 Unauthorized: "Invalid or expired token")'
    assert r.stderr == "evocli: error: 30 of 30 failed\n"


def test_progress_total_never_reads_a_pipe(tmp_path: Path) -> None:
    from evocli.batchrun import count_lines as _count_lines

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _count_lines(str(fifo), None) is None  # would block forever if it opened the FIFO
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n\n"b"\n"c"\n')
    assert _count_lines(str(src), None) == 3
    assert _count_lines(str(src), (2, 2)) == 1
    assert _count_lines("-", None) is None


def test_resume_that_cannot_rewrite_out_is_73(cli: Cli, echo_server: Any, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from evocli import safefile

    echo_server()
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": 1, "ok": false, "exit_code": 75, "error": "busy"}\n')

    def refuse(path: str, data: object, hold: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safefile, "replace", refuse)
    r = cli(["batch", str(src), "--out", str(out), "--resume"])
    assert (r.exit_code, r.stdout, r.stderr) == (73, "", f"evocli: error: cannot resume from {out}: Permission denied\n")
    assert out.read_text() == '{"id": 1, "ok": false, "exit_code": 75, "error": "busy"}\n'
