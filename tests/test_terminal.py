"""What a terminal shows: the status line (batch progress, the waiting indicator) never mixes with
results or messages, and is erased before the answer; nothing of it when stderr is not a terminal.

evocli runs in a pseudo-terminal, and a small screen model replays what it wrote (carriage
returns, erase-line, newlines) into the lines a user would see.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Recorded, Reply, completion_body


def screen(raw: bytes) -> list[str]:
    """The lines left on a terminal after `raw` was written to it."""
    lines: list[list[str]] = [[]]
    col = 0
    text = raw.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        if text.startswith("\x1b[K", i):
            del lines[-1][col:]
            i += 3
            continue
        ch = text[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append([])
            col = 0
        else:
            line = lines[-1]
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    return ["".join(line) for line in lines]


def in_terminal(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """Run evocli with stdout and stderr on one pseudo-terminal; everything it drew, and its code."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "evocli", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env=child_env(env), cwd=REPO)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks)


def test_screen_model() -> None:
    assert screen(b"abc\r\x1b[Kx\r\nnext") == ["x", "next"]
    assert screen(b"1/2 done\r\x1b[K{\"id\":1}\r\n1/2 done") == ['{"id":1}', "1/2 done"]


def batch_server(rec: Recorded) -> Reply:
    text = json.loads(rec.body)["messages"][-1]["content"]
    if text == "p3" and not getattr(batch_server, "failed", False):
        batch_server.failed = True  # type: ignore[attr-defined]
        return Reply(status=503, headers={"Retry-After": "0.2"})
    return Reply(delay=0.15, body=completion_body(f"re: {text}"))


def test_batch_progress_never_shares_a_line_with_results_or_notices(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(12)))
    with FakeServer(default=batch_server) as srv:
        code, raw = in_terminal(["batch", str(src), "-c", "2"],
                                {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
    assert code == 0, raw
    assert b" done, " in raw  # the progress line was drawn
    lines = [line for line in screen(raw) if line]
    results = [line for line in lines if line.startswith("{")]
    assert [json.loads(line)["content"] for line in results] == [f"re: p{i}" for i in range(12)]
    assert "evocli: line 4: HTTP 503, retrying in 0.2 s (attempt 2 of 3)" in lines
    for line in lines:
        assert not (" done, " in line and ("{" in line or "evocli:" in line)), line
    assert all(" done, " not in line for line in lines)  # the final screen holds no progress


def test_the_waiting_indicator_is_erased_before_the_answer(tmp_path: Path) -> None:
    with FakeServer(default=lambda rec: Reply(delay=2.5, body=completion_body("The answer."))) as srv:
        code, raw = in_terminal(["ask", "--no-stream", "--no-stdin", "x"],
                                {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
    assert code == 0, raw
    assert b"waiting for gpt-5.2\xe2\x80\xa6 1 s" in raw and b"waiting for gpt-5.2\xe2\x80\xa6 2 s" in raw
    assert raw.index(b"waiting for") < raw.index(b"The answer.")
    assert [line for line in screen(raw) if line] == ["The answer."]


def test_nothing_of_the_status_line_reaches_a_pipe(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n"b"\n')
    with FakeServer(default=lambda rec: Reply(delay=1.3, body=completion_body("ok"))) as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        for args in (["ask", "--no-stdin", "x"], ["batch", str(src)]):
            proc = subprocess.run([sys.executable, "-m", "evocli", *args], stdin=subprocess.DEVNULL,
                                  capture_output=True, env=env, cwd=REPO, timeout=60)
            assert (proc.returncode, proc.stderr) == (0, b"")


def test_quiet_shows_no_status_line_on_a_terminal(tmp_path: Path) -> None:
    with FakeServer(default=lambda rec: Reply(delay=1.3, body=completion_body("ok"))) as srv:
        code, raw = in_terminal(["ask", "-q", "--no-stream", "--no-stdin", "x"],
                                {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
    assert (code, raw) == (0, b"ok\r\n")
