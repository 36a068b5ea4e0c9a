"""The ledger's records: exact fields for successes and failures, switches, concurrency, bad folders."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evocli.client import TOKEN_FIELDS
from evocli.ledger import RECORD_FIELDS, CallRecord, append, encode_line
from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Reply, completion_body, free_port

Cli = Any
ANSWER = "Hello from the test server.\n"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def records(folder: Path) -> list[dict[str, Any]]:
    """Every record in the ledger folder, checking each line is one whole JSON object."""
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        data = path.read_bytes()
        assert data.endswith(b"\n")
        out += [json.loads(line) for line in data.splitlines()]
    return out


def only_record(folder: Path) -> dict[str, Any]:
    [rec] = records(folder)
    assert list(rec) == list(RECORD_FIELDS)
    assert TS.fullmatch(rec.pop("ts"))
    latency = rec.pop("latency_ms")
    assert isinstance(latency, int) and 0 <= latency < 60_000
    return rec


def test_success_record_has_the_documented_fields(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    r = cli(["ask", "--tag", "nightly-report", "hi"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER, "")
    month = f"{datetime.now(UTC):%Y-%m}.jsonl"
    assert [p.name for p in (isolated / "ledger").iterdir()] == [month]
    assert only_record(isolated / "ledger") == {
        "command": "ask", "model": "gpt-5.2", "id": "chatcmpl-test-1", "ok": True, "http_status": 200,
        "exit_code": 0, "finish_reason": "stop", "prompt_tokens": 12, "completion_tokens": 7,
        "total_tokens": 19, "reasoning_tokens": 3, "cached_tokens": 2, "attempts": 1, "stream": False,
        "tag": "nightly-report", "image_tokens": 0,
    }


def test_image_tokens_come_from_the_prompt_details(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19,
             "prompt_tokens_details": {"cached_tokens": 2, "image_tokens": 765}}
    api_env.script(Reply(body=completion_body(usage=usage)))
    assert cli(["ask", "hi"]).exit_code == 0
    rec = only_record(isolated / "ledger")
    assert (rec["prompt_tokens"], rec["cached_tokens"], rec["image_tokens"]) == (12, 2, 765)


def test_image_tokens_are_the_last_field_of_a_line() -> None:
    # Lines written before image_tokens existed end at `tag`: the new field goes after it, so that
    # every older line still has the layout the fast reader knows.
    assert RECORD_FIELDS[-2:] == ("tag", "image_tokens")
    usage = {"prompt_tokens": 800, "completion_tokens": 5, "total_tokens": 805,
             "prompt_tokens_details": {"image_tokens": 765}}
    record = CallRecord(command="ask", model="m", ok=True, exit_code=0, latency_ms=9, attempts=1, stream=False,
                        usage=usage)
    line = encode_line(record, datetime(2026, 11, 1, tzinfo=UTC))
    assert line.endswith(b',"stream":false,"tag":null,"image_tokens":765}\n')
    assert set(TOKEN_FIELDS) <= set(RECORD_FIELDS)


def test_model_is_the_one_that_answered(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(body=completion_body(model="gpt-5.2-2026-01-01")))
    assert cli(["ask", "-m", "gpt-5.2", "hi"]).exit_code == 0
    assert only_record(isolated / "ledger")["model"] == "gpt-5.2-2026-01-01"


def test_refused_call_is_recorded_as_a_failure(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(status=401, body={"error": {"message": f"bad key {KEY}"}}))
    r = cli(["ask", "-m", "gpt-4o", "hi"])
    assert r.exit_code == 77
    rec = only_record(isolated / "ledger")
    assert rec == {
        "command": "ask", "model": "gpt-4o", "id": None, "ok": False, "http_status": 401, "exit_code": 77,
        "finish_reason": None, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
        "reasoning_tokens": 0, "cached_tokens": 0, "attempts": 1, "stream": False, "tag": None,
        "image_tokens": 0,
    }
    assert KEY not in (isolated / "ledger").joinpath(f"{datetime.now(UTC):%Y-%m}.jsonl").read_text()


def test_malformed_answer_is_recorded_with_its_status(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(body="not json"))
    assert cli(["ask", "hi"]).exit_code == 76
    rec = only_record(isolated / "ledger")
    assert (rec["ok"], rec["http_status"], rec["exit_code"]) == (False, 200, 76)


def test_connection_failure_is_recorded_without_status(
    cli: Cli, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    r = cli(["ask", "--retries", "0", "--tag", "cron", "hi"])
    assert r.exit_code == 75
    rec = only_record(isolated / "ledger")
    assert (rec["ok"], rec["http_status"], rec["exit_code"], rec["tag"]) == (False, None, 75, "cron")


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_three_ways_to_turn_the_ledger_off(
    how: str, cli: Cli, api_env: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["ask", "hi"]
    if how == "flag":
        args.insert(1, "--no-ledger")
    elif how == "env":
        monkeypatch.setenv("EVOCLI_NO_LEDGER", "1")
    else:
        cfg = isolated / "config" / "evocli" / "config.yaml"
        cfg.parent.mkdir(parents=True)
        cfg.write_text("ledger: false\n")
    r = cli(args)
    assert (r.exit_code, r.stdout, r.stderr) == (0, ANSWER, "")
    assert len(api_env.requests) == 1
    assert not (isolated / "ledger").exists()


def test_dry_run_records_nothing(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    assert cli(["ask", "--dry-run", "--tag", "x", "hi"]).exit_code == 0
    assert not (isolated / "ledger").exists()


def test_config_ledger_dir(cli: Cli, api_env: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOCLI_LEDGER_DIR")
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"ledger_dir: {isolated / 'mine'}\n")
    assert cli(["ask", "hi"]).exit_code == 0
    assert len(records(isolated / "mine")) == 1


def test_default_ledger_dir_is_under_xdg_state_home(
    cli: Cli, api_env: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOCLI_LEDGER_DIR")
    assert cli(["ask", "hi"]).exit_code == 0
    assert len(records(isolated / "state" / "evocli" / "usage")) == 1


def test_unwritable_ledger_is_a_warning_not_a_failure(
    cli: Cli, api_env: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (isolated / "afile").write_text("")
    folder = isolated / "afile" / "ledger"  # a folder inside a regular file: cannot be created
    monkeypatch.setenv("EVOCLI_LEDGER_DIR", str(folder))
    r = cli(["ask", "hi"])
    assert (r.exit_code, r.stdout) == (0, ANSWER)
    assert r.stderr == f"evocli: warning: could not write the usage ledger in {folder}: Not a directory\n"
    assert cli(["ask", "-q", "hi"]).stderr == ""


def test_month_file_that_cannot_be_opened_is_a_warning(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    (isolated / "ledger" / f"{datetime.now(UTC):%Y-%m}.jsonl").mkdir(parents=True)
    r = cli(["ask", "hi"])
    assert (r.exit_code, r.stdout) == (0, ANSWER)
    assert r.stderr.startswith("evocli: warning: could not write the usage ledger in ")
    assert r.stderr.endswith(": Is a directory\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_ledger_folder(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    folder = isolated / "ledger"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        r = cli(["ask", "hi"])
    finally:
        folder.chmod(0o700)
    assert (r.exit_code, r.stdout) == (0, ANSWER)
    assert r.stderr == f"evocli: warning: could not write the usage ledger in {folder}: Permission denied\n"


def test_24_concurrent_processes_write_24_intact_records(api_env: FakeServer, isolated: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "evocli", "ask", "--no-stdin", "--tag", f"proc-{i}", f"question {i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(),
            cwd=REPO,
        )
        for i in range(24)
    ]
    outcomes = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    assert outcomes == [(0, ANSWER.encode(), b"")] * 24
    recs = records(isolated / "ledger")
    assert len(recs) == 24
    assert sorted(r["tag"] for r in recs) == sorted(f"proc-{i}" for i in range(24))
    assert all(list(r) == list(RECORD_FIELDS) and r["ok"] for r in recs)


def _hammer(folder: str, worker: int) -> None:
    # Records longer than a pipe buffer, so an interleaved write would show.
    for i in range(200):
        record = CallRecord(command="ask", model="m", ok=True, exit_code=0, latency_ms=i, attempts=1,
                            stream=False, tag=f"w{worker}-{i}-" + "x" * 5000)
        append(Path(folder), record)


def test_many_writers_never_interleave(isolated: Path) -> None:
    folder = isolated / "ledger"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_hammer, args=(str(folder), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    recs = records(folder)
    assert len(recs) == 800
    assert len({r["tag"] for r in recs}) == 800
