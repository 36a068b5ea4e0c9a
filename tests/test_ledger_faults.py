"""The ledger and config file when something odd is in their place: a cut last line, a FIFO, a
timestamp out of range. No record is lost, nothing hangs, the documented exit code every time."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evocli import ledger, ledger_read
from evocli.ledger import CallRecord
from tests.conftest import run_evocli
from tests.server import FakeServer

Cli = Any
ANSWER = "Hello from the test server.\n"
CUT = b'{"ts":"2026-01-01T00:00:00.000Z","command":"ask","mod'


def month_file(isolated: Path) -> Path:
    return ledger.month_file(isolated / "ledger", datetime.now(UTC))


def usage_json(cli: Cli) -> tuple[dict[str, Any], str]:
    r = cli(["usage", "--json"])
    assert r.exit_code == 0
    return json.loads(r.stdout), r.stderr


def test_record_after_a_cut_last_line_starts_on_a_fresh_line(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    path = month_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_bytes(CUT)
    assert cli(["ask", "--tag", "after-the-cut", "hi"]).exit_code == 0
    before, new = path.read_bytes().split(b"\n", 1)
    assert before == CUT
    assert json.loads(new)["tag"] == "after-the-cut" and new.endswith(b"}\n") and new.count(b"\n") == 1
    doc, stderr = usage_json(cli)
    assert (doc["totals"]["requests"], stderr) == (1, "evocli: warning: skipped 1 corrupt ledger line\n")
    # The next record follows a whole line: no blank line in between.
    assert cli(["ask", "hi"]).exit_code == 0
    assert path.read_bytes().count(b"\n") == 3 and b"\n\n" not in path.read_bytes()


def test_empty_and_whole_month_files_get_no_extra_line_end(isolated: Path) -> None:
    folder = isolated / "ledger"
    record = CallRecord(command="ask", model="m", ok=True, exit_code=0, latency_ms=1, attempts=1, stream=False)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    ledger.append(folder, record, now)
    ledger.append(folder, record, now)
    data = ledger.month_file(folder, now).read_bytes()
    assert data == ledger.encode_line(record, now) * 2


def _append_many(folder: str, worker: int) -> None:
    for i in range(50):
        record = CallRecord(command="ask", model="m", ok=True, exit_code=0, latency_ms=i, attempts=1,
                            stream=False, tag=f"w{worker}-{i}")
        ledger.append(Path(folder), record)


def test_concurrent_writers_after_a_cut_line_lose_no_record(isolated: Path) -> None:
    folder = isolated / "ledger"
    folder.mkdir()
    month_file(isolated).write_bytes(CUT)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_append_many, args=(str(folder), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    lines = month_file(isolated).read_bytes().split(b"\n")
    assert lines[0] == CUT and lines[-1] == b""
    tags = sorted(json.loads(line)["tag"] for line in lines[1:-1] if line)
    assert tags == sorted(f"w{w}-{i}" for w in range(4) for i in range(50))


def test_odd_text_in_a_record_is_written_not_raised(isolated: Path) -> None:
    folder = isolated / "ledger"
    record = CallRecord(command="ask", model="gpt\udcff", ok=True, exit_code=0, latency_ms=1, attempts=1,
                        stream=False, tag="t\ud800")
    ledger.append(folder, record)
    [line] = month_file(isolated).read_text(encoding="utf-8").splitlines()
    assert (json.loads(line)["model"], json.loads(line)["tag"]) == ("gpt\ufffd", "t\ufffd")


# A FIFO where evocli expects a regular file of its own: no hang.

@pytest.fixture
def fifo_month_file(isolated: Path) -> Path:
    path = month_file(isolated)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    return path


def test_fifo_in_place_of_the_ledger_month_file_is_a_warning_not_a_hang(
    api_env: FakeServer, fifo_month_file: Path
) -> None:
    r = run_evocli(["ask", "hi"], timeout=30)
    assert (r.returncode, r.stdout) == (0, ANSWER)
    assert r.stderr == (f"evocli: warning: could not write the usage ledger in {fifo_month_file.parent}: "
                        f"{fifo_month_file.name} is not a regular file\n")


def test_fifo_with_a_reader_in_place_of_the_ledger_month_file_is_not_written(
    api_env: FakeServer, fifo_month_file: Path
) -> None:
    reader = os.open(fifo_month_file, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = run_evocli(["ask", "hi"], timeout=30)
        try:
            written = os.read(reader, 100)
        except BlockingIOError:
            written = b""
        assert written == b""  # nothing went into the FIFO
    finally:
        os.close(reader)
    assert (r.returncode, r.stdout) == (0, ANSWER)
    assert r.stderr.endswith(f"{fifo_month_file.name} is not a regular file\n")


def test_fifo_in_place_of_a_ledger_month_file_makes_usage_fail_with_66_not_hang(fifo_month_file: Path) -> None:
    r = run_evocli(["usage"], timeout=30)
    assert (r.returncode, r.stdout) == (66, "")
    assert r.stderr == (f"evocli: error: cannot read the usage ledger file {fifo_month_file}: "
                        "it is not a regular file\n")


@pytest.mark.parametrize("args", [["ask", "hi"], ["usage"]])
def test_fifo_in_place_of_the_config_file_is_78_not_a_hang(api_env: FakeServer, isolated: Path, args: list[str]) -> None:
    config = Path(os.environ["EVOCLI_CONFIG"])
    config.parent.mkdir(parents=True)
    os.mkfifo(config)
    r = run_evocli(args, timeout=30)
    assert (r.returncode, r.stdout) == (78, "")
    assert r.stderr == f"evocli: error: config file {config} is not a regular file\n"
    assert api_env.requests == []


def test_dev_null_as_the_config_file_is_no_config(api_env: FakeServer) -> None:
    r = run_evocli(["ask", "hi"], env={"EVOCLI_CONFIG": os.devnull})
    assert (r.returncode, r.stdout, r.stderr) == (0, ANSWER, "")


def test_files_the_user_names_may_still_be_fifos(api_env: FakeServer, tmp_path: Path) -> None:
    """A conversation or a batch file given as <(cmd) is a pipe: it is read, as the user asked."""
    script = (
        f"evocli() {{ '{sys.executable}' -m evocli \"$@\"; }}\n"
        "evocli chat-file <(printf 'messages:\\n  - role: user\\n    content: hi\\n') && "
        "evocli batch <(printf '\"one\"\\n\"two\"\\n')\n"
    )
    from tests.conftest import REPO, child_env

    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env=child_env({"PYTHONPATH": str(REPO)}), cwd=REPO)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == ANSWER.strip()
    assert [json.loads(line)["content"] for line in lines[1:]] == [ANSWER.strip()] * 2


# A timestamp out of range once moved to UTC is a corrupt line like any other.

@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                "0001-01-01T00:00:00.000+00:01"])
def test_timestamp_out_of_range_after_its_offset_is_a_corrupt_line(cli: Cli, isolated: Path, ts: str) -> None:
    folder = isolated / "ledger"
    folder.mkdir()
    good = {"ts": "2026-05-02T10:00:00.000Z", "command": "ask", "model": "m", "ok": True, "total_tokens": 5}
    (folder / "2026-05.jsonl").write_text(json.dumps({**good, "ts": ts}) + "\n" + json.dumps(good) + "\n")
    for args in (["usage", "--json"], ["usage", "--since", "2026-05-01", "--json"], ["usage", "--by", "day"]):
        r = cli(args)
        assert (r.exit_code, r.stderr) == (0, "evocli: warning: skipped 1 corrupt ledger line\n"), args
    assert json.loads(cli(["usage", "--json"]).stdout)["totals"]["total_tokens"] == 5


def test_record_ts_out_of_range() -> None:
    assert ledger_read._record_ts("0001-01-01T00:00:00+14:00") is None
    assert ledger_read._record_ts("0001-01-01T14:00:00+14:00") == "0001-01-01T00:00:00.000Z"


def test_a_file_system_without_flock_still_gets_the_record(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    def no_flock(fd: int, op: int) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    path = month_file(isolated)
    path.parent.mkdir(parents=True)
    path.write_bytes(CUT)
    record = CallRecord(command="ask", model="m", ok=True, exit_code=0, latency_ms=1, attempts=1, stream=False)
    ledger.append(isolated / "ledger", record)
    first, added, end = path.read_bytes().split(b"\n")
    assert (first, json.loads(added)["model"], end) == (CUT, "m", b"")
