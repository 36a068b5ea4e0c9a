"""`evocli chat-file` as real processes: the README's CI pipe, concurrent appends, Ctrl-C mid-call."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evocli.conversation import parse
from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Recorded, Reply, completion_body

FIXTURES = Path(__file__).parent / "fixtures" / "chat"


def evocli(*args: str) -> list[str]:
    return [sys.executable, "-m", "evocli", *args]


def env_for(server: FakeServer) -> dict[str, str]:
    return child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url, "PYTHONPATH": str(REPO)})


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_diff_pipe_as_in_the_readme(tmp_path: Path, api_env: FakeServer) -> None:
    shutil.copy(FIXTURES / "review.yaml", tmp_path / "review.yaml")
    (tmp_path / "app.py").write_text("print('hi')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "app.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=tmp_path, check=True)
    (tmp_path / "app.py").write_text("print('hello')\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "evocli").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m evocli "$@"\n')
    (bindir / "evocli").chmod(0o755)
    env = env_for(api_env) | {"PATH": f"{bindir}:/usr/bin:/bin"}
    r = subprocess.run(["bash", "-c", "git diff | evocli chat-file review.yaml"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Hello from the test server.\n", "")
    [body] = api_env.bodies
    prompt = body["messages"][1]["content"]
    assert prompt.startswith('Review this change. Say "LGTM" when there is nothing to fix.\n\ndiff --git a/app.py b/app.py\n')
    assert prompt.endswith("-print('hi')\n+print('hello')\n")


def echo_last_user_turn(rec: Recorded) -> Reply:
    """Answer after a pause, naming the turn it answers and how much history it saw."""
    time.sleep(0.15)
    messages = rec.json["messages"]
    return Reply(body=completion_body(f"answer to {messages[-1]['content']} after {len(messages)} messages"))


def test_concurrent_appends_lose_no_turn(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    conversation = folder / "standup.yaml"
    original = "# Shared by many cron jobs.\nsystem: Be brief.\nmessages:\n  - {role: user, content: Start.}\n"
    conversation.write_text(original)
    runs = 6
    notes = []
    for i in range(runs):
        (tmp_path / f"note{i}.txt").write_text(f"note {i}\n")
        notes.append(open(tmp_path / f"note{i}.txt", "rb"))  # noqa: SIM115 - closed below
    try:
        with FakeServer(default=echo_last_user_turn) as server:
            procs = [
                subprocess.Popen(evocli("chat-file", "--append", str(conversation)), stdin=notes[i],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for(server), cwd=folder)
                for i in range(runs)
            ]
            outputs = [p.communicate(timeout=120) for p in procs]
            sizes = sorted(len(b["messages"]) for b in server.bodies)
    finally:
        for note in notes:
            note.close()
    assert [p.returncode for p in procs] == [0] * runs
    for _, err in outputs:
        assert err.decode() in ("", f"evocli: waiting for another evocli appending to {conversation}\n")
    # Each run held the file from reading it to writing it: each saw every earlier turn.
    assert sizes == [3 + 2 * i for i in range(runs)]
    text = conversation.read_text()
    assert text.startswith(original)
    turns = parse(text, "standup.yaml").messages[1:]
    assert len(turns) == 2 * runs
    asked = [turns[i]["content"] for i in range(0, len(turns), 2)]
    assert sorted(asked) == [f"note {i}" for i in range(runs)]
    for i in range(0, len(turns), 2):
        assert turns[i + 1] == {"role": "assistant", "content": f"answer to {turns[i]['content']} after {i + 3} messages"}
    assert sorted(p.name for p in folder.iterdir()) == ["standup.yaml"]


def test_ctrl_c_during_the_call_leaves_the_file_untouched(tmp_path: Path, api_env: FakeServer) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    conversation = folder / "journal.yaml"
    shutil.copy(FIXTURES / "journal.yaml", conversation)
    before = conversation.read_bytes()
    api_env.script(Reply(delay=30, body=completion_body()))
    (tmp_path / "note.txt").write_text("note\n")
    with open(tmp_path / "note.txt", "rb") as note:
        proc = subprocess.Popen(evocli("chat-file", "--append", str(conversation)), stdin=note,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for(api_env), cwd=tmp_path)
    deadline = time.monotonic() + 30
    while not api_env.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert api_env.requests, "the request never arrived"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (-signal.SIGINT, b"")
    assert b"Traceback" not in err
    assert conversation.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["journal.yaml"]


def test_a_waiting_run_can_be_interrupted(tmp_path: Path, api_env: FakeServer) -> None:
    """A run queued behind another's lock dies by Ctrl-C's signal; the holder finishes normally."""
    conversation = tmp_path / "journal.yaml"
    shutil.copy(FIXTURES / "journal.yaml", conversation)
    api_env.script(Reply(delay=3, body=completion_body("first")))
    env = env_for(api_env)
    holder = subprocess.Popen(evocli("chat-file", "--append", "--no-stdin", str(conversation)),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 30
    while not api_env.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    waiter = subprocess.Popen(evocli("chat-file", "--append", "--no-stdin", str(conversation)),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert waiter.stderr is not None
    notice = waiter.stderr.readline()  # blocks until the waiter reports that it waits
    assert notice.decode() == f"evocli: waiting for another evocli appending to {conversation}\n"
    waiter.send_signal(signal.SIGINT)
    _, werr = waiter.communicate(timeout=30)
    hout, _ = holder.communicate(timeout=30)
    assert (waiter.returncode, werr) == (-signal.SIGINT, b"")
    assert (holder.returncode, hout) == (0, b"first\n")
    assert len(api_env.requests) == 1
    assert conversation.read_text().count("role: assistant") == 2
