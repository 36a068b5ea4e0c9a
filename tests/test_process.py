"""Process-level behaviour: flushing as chunks arrive, Ctrl-C, a closed pipe (no PYTHONUNBUFFERED)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Reply, sse_stream


def spawn(server: FakeServer, *args: str) -> subprocess.Popen[bytes]:
    env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url})
    assert not any(k.startswith("PYTHON") for k in env)
    return subprocess.Popen([sys.executable, "-m", "evocli", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)


def read_some(proc: subprocess.Popen[bytes], timeout: float = 10) -> bytes:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    return os.read(proc.stdout.fileno(), 65536)


def test_each_chunk_reaches_stdout_as_it_arrives(server: FakeServer) -> None:
    server.script(Reply(chunks=sse_stream(["first ", "second"]), chunk_delay=1.5))
    proc = spawn(server, "ask", "--stream", "x")
    first = read_some(proc)
    got_first = time.monotonic()
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert first == b"first "
    assert first + rest == b"first second\n"
    # The first piece was on stdout long before the server sent the next one.
    assert got_first - server.requests[0].time < 1.2


def test_ctrl_c_mid_stream_dies_by_sigint_keeping_the_text(server: FakeServer, isolated: Path) -> None:
    server.script(Reply(chunks=sse_stream(["partial answer", " never sent"]), chunk_delay=30))
    proc = spawn(server, "ask", "--stream", "x")
    assert read_some(proc) == b"partial answer"
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGINT
    assert rest == b"\n"
    assert b"Traceback" not in err
    assert err == b""
    [line] = (isolated / "ledger").glob("*.jsonl")
    rec = json.loads(line.read_text())
    assert (rec["ok"], rec["exit_code"], rec["stream"]) == (False, 130, True)


def test_ctrl_c_while_waiting_for_a_retry(server: FakeServer) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "20"}))
    proc = spawn(server, "ask", "--retry-max-time", "60", "x")
    deadline = time.monotonic() + 20
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (-signal.SIGINT, b"")
    assert err == b"evocli: HTTP 429, retrying in 20.0 s (attempt 2 of 3)\n"


def test_closed_pipe_ends_quietly(server: FakeServer, tmp_path: Path, isolated: Path) -> None:
    pieces = [f"line {i}\n" for i in range(200)]
    server.script(Reply(chunks=sse_stream(pieces), chunk_delay=0.01))
    env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url, "PYTHONPATH": str(REPO)})
    script = f'set -o pipefail; "{sys.executable}" -m evocli ask -o jsonl x | head -1; echo "status ${{PIPESTATUS[0]}}"'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.stdout == '{"type":"delta","content":"line 0\\n"}\nstatus 0\n'
    assert proc.stderr == ""
    [line] = (isolated / "ledger").glob("*.jsonl")
    rec = json.loads(line.read_text())
    assert (rec["ok"], rec["exit_code"], rec["http_status"], rec["stream"]) == (True, 0, 200, True)


def test_closed_pipe_on_a_whole_answer(server: FakeServer, tmp_path: Path) -> None:
    env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url, "PYTHONPATH": str(REPO)})
    script = f'"{sys.executable}" -m evocli ask x | true; echo "status ${{PIPESTATUS[0]}}"'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert proc.stdout == "status 0\n"
    assert proc.stderr == ""


def _shell(server: FakeServer, script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url, "PYTHONPATH": str(REPO),
                     "PY": sys.executable})
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)


def test_full_disk_on_stdout_is_73(server: FakeServer, tmp_path: Path) -> None:
    for cmd in ('"$PY" -m evocli ask x > /dev/full', '"$PY" -m evocli usage > /dev/full',
                '"$PY" -m evocli ask --stream x > /dev/full'):
        r = _shell(server, cmd + '; echo "status $?" >&2', tmp_path)
        assert r.stderr == "evocli: error: cannot write to stdout: No space left on device\nstatus 73\n", cmd


def test_closed_stdout_and_stdin(server: FakeServer, tmp_path: Path) -> None:
    r = _shell(server, '"$PY" -m evocli ask x >&-; echo "status $?" >&2', tmp_path)
    assert r.stderr == "evocli: error: stdout is closed: there is nowhere to write the answer\nstatus 73\n"
    r = _shell(server, '"$PY" -m evocli batch - <&-; echo "status $?"', tmp_path)
    assert r.stdout == "status 66\n"
    assert r.stderr == "evocli: error: stdin is closed: there is nothing to read with -\n"
