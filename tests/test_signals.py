"""Ctrl-C and SIGTERM as a user meets them: in shell loops and xargs, in batch runs, around a save."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evocli import safefile, signals
from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Recorded, Reply, completion_body

FIXTURES = Path(__file__).parent / "fixtures" / "chat"


def bin_dir(tmp_path: Path) -> Path:
    """A folder holding an `evocli` that runs this checkout, to put first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    script = folder / "evocli"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m evocli "$@"\n')
    script.chmod(0o755)
    return folder


def shell_env(tmp_path: Path, server: FakeServer) -> dict[str, str]:
    return child_env({
        "EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url, "PYTHONPATH": str(REPO),
        "PATH": f"{bin_dir(tmp_path)}:{os.environ['PATH']}",
    })


def wait_for(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def slow(rec: Recorded) -> Reply:
    return Reply(delay=30, body=completion_body("late"))


def test_ctrl_c_in_a_shell_loop_stops_the_loop(tmp_path: Path) -> None:
    with FakeServer(default=slow) as srv:
        proc = subprocess.Popen(
            ["bash", "-c", "for i in 1 2 3; do evocli ask --no-stdin x; done; echo loop-finished"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=shell_env(tmp_path, srv), start_new_session=True,
        )
        wait_for(lambda: srv.requests)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        out, err = proc.communicate(timeout=30)
        time.sleep(0.3)
        assert len(srv.requests) == 1
    assert proc.returncode == -signal.SIGINT  # the shell itself died by the signal: 130 to its caller
    assert (out, b"Traceback" in err) == (b"", False)


@pytest.mark.skipif(shutil.which("xargs") is None, reason="xargs is not installed")
def test_ctrl_c_of_one_call_stops_xargs(tmp_path: Path) -> None:
    with FakeServer(default=slow) as srv:
        words = tmp_path / "words"
        words.write_text("a\nb\nc\nd\ne\nf\n")
        with open(words, "rb") as stdin:
            proc = subprocess.Popen(
                ["xargs", "-P", "2", "-n", "1", "evocli", "ask", "--no-stdin"],
                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=shell_env(tmp_path, srv), start_new_session=True,
            )
        wait_for(lambda: len(srv.requests) == 2)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2  # the two calls in flight
        os.kill(int(children[0]), signal.SIGINT)  # one call interrupted: xargs must not start more
        _, err = proc.communicate(timeout=40)
        assert len(srv.requests) == 2
    assert proc.returncode == 125  # xargs: a command was killed by a signal
    assert b"Traceback" not in err


def test_sigterm_during_batch_keeps_finished_lines_and_resume_completes(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    def after_two(rec: Recorded) -> Reply:
        text = json.loads(rec.body)["messages"][-1]["content"]
        return Reply(delay=0.0 if text in ("p0", "p1") else 30.0, body=completion_body(f"re: {text}"))

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(6)))
    out = tmp_path / "out.jsonl"
    with FakeServer(default=after_two) as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        proc = subprocess.Popen([sys.executable, "-m", "evocli", "batch", str(src), "-c", "2", "--out", str(out)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=REPO)
        wait_for(lambda: out.exists() and out.read_text().count("\n") >= 2)
        wait_for(lambda: len(srv.requests) >= 4)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM
    assert b"Traceback" not in err
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["ok"], r["content"]) for r in kept] == [(1, True, "re: p0"), (2, True, "re: p1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]
    with FakeServer() as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        done = subprocess.run([sys.executable, "-m", "evocli", "batch", str(src), "--out", str(out), "--resume"],
                              stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=REPO, timeout=60)
        assert done.returncode == 0, done.stderr
        sent = sorted(json.loads(r.body)["messages"][-1]["content"] for r in srv.requests)
    assert sent == ["p2", "p3", "p4", "p5"]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_sigterm_during_append_leaves_the_file_whole(tmp_path: Path) -> None:
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    journal = tmp_path / "journal.yaml"
    shutil.copy(FIXTURES / "journal.yaml", journal)
    before = journal.read_bytes()
    with FakeServer(default=slow) as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        (tmp_path.parent / "note").write_text("note\n")
        with open(tmp_path.parent / "note", "rb") as stdin:
            proc = subprocess.Popen([sys.executable, "-m", "evocli", "chat-file", "--append", str(journal)],
                                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)
        wait_for(lambda: srv.requests)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (-signal.SIGTERM, b"", b"")
    assert journal.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.yaml"]


def test_a_signal_just_after_the_save_does_not_undo_it(cli: Any, api_env: FakeServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The signal arrives while the file is being replaced: it is held until the file is saved,
    and the run, whose work is done, ends as a success (a rerun on 130 would duplicate the turn)."""
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    journal = tmp_path / "journal.yaml"
    shutil.copy(FIXTURES / "journal.yaml", journal)
    real_replace = safefile.replace

    def replace_then_signal(path: str, data: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # blocked now, delivered when the save is over
        real_replace(path, data)

    monkeypatch.setattr(safefile, "replace", replace_then_signal)
    old = {s: signal.getsignal(s) for s in signals.HANDLED}
    signals.install()
    try:
        r = cli(["chat-file", "--append", str(journal)], input="note\n")
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    assert (r.exit_code, r.stdout) == (0, "Hello from the test server.\n")
    assert ("  - role: user\n    content: note\n  - role: assistant\n    content: Hello from the test server.\n"
            "\n# Notes below the list survive every append.\n") in journal.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.yaml"]


def test_a_closed_reader_does_not_stop_the_append(tmp_path: Path) -> None:
    """`… | evocli chat-file --append j.yaml | head -1`: the answer was paid for, so it is saved."""
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    journal = tmp_path / "journal.yaml"
    shutil.copy(FIXTURES / "journal.yaml", journal)
    long_answer = "".join(f"line {i}\n" for i in range(20000))
    with FakeServer(default=lambda rec: Reply(delay=0.5, body=completion_body(long_answer))) as srv:
        env = shell_env(tmp_path, srv)
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"echo 'Deployed v2.' | evocli chat-file --append {journal} | head -1"],
            capture_output=True, env=env, timeout=60,
        )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"line 0\n", b"")
    text = journal.read_text()
    assert "  - role: user\n    content: Deployed v2.\n  - role: assistant\n    content: |\n      line 0\n" in text
    assert text.count("      line ") == 20000
