"""Batch lines with `attach`: files relative to a base folder, added after the placeholders are
filled, and a bad attachment as that line's 65/66 record (never a crash of the run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evocli import attach, batch
from evocli.errors import ExitCode, InputError, NoInputError
from tests.server import FakeServer

GIF = b"GIF89a\x01\x00\x01\x00"
GIF_URL = "data:image/gif;base64,R0lGODlhAQABAA=="


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A batch file's folder with a picture and a log, and a current folder elsewhere."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "shot.txt").write_bytes(GIF)  # a GIF with a misleading name
    (folder / "run.log").write_text("{{ x }} stays\n")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return folder


def parse(line: dict[str, Any] | str, base: str | None) -> batch.Job:
    sources = attach.Sources(base=base) if base is not None else None
    job = batch.parse_line(2, json.dumps(line), None, sources)
    assert job is not None
    return job


def test_attachments_follow_the_prompt_relative_to_the_batch_folder(data: Path) -> None:
    job = parse({"id": "a", "prompt": "Why {{ x }}?", "vars": {"x": "now"},
                 "attach": ["shot.txt", "run.log", "https://h/c.png"]}, str(data))
    assert job.error is None
    assert job.messages == [{"role": "user", "content": [
        {"type": "text", "text": "Why now?"},
        {"type": "image_url", "image_url": {"url": GIF_URL}},
        {"type": "text", "text": '<file name="run.log">\n{{ x }} stays\n\n</file>'},
        {"type": "image_url", "image_url": {"url": "https://h/c.png"}},
    ]}]


def test_attachments_go_on_the_last_user_message(data: Path) -> None:
    job = parse({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                              {"role": "user", "content": [{"type": "text", "text": "c"}]}],
                 "system": "s", "attach": ["shot.txt"]}, str(data))
    assert job.messages == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "text", "text": "c"}, {"type": "image_url", "image_url": {"url": GIF_URL}}]},
    ]


def test_without_attach_content_stays_a_string(data: Path) -> None:
    assert parse({"prompt": "p", "attach": []}, str(data)).messages == [{"role": "user", "content": "p"}]
    assert parse("p", str(data)).messages == [{"role": "user", "content": "p"}]


def test_without_a_base_paths_start_from_the_current_folder(data: Path) -> None:
    Path("here.txt").write_text("H")
    assert parse({"prompt": "p", "attach": ["here.txt"]}, None).messages[0]["content"][1] == {
        "type": "text", "text": '<file name="here.txt">\nH\n</file>'}


@pytest.mark.parametrize(
    ("line", "kind", "message"),
    [
        ({"prompt": "p", "attach": ["missing.png"]}, NoInputError,
         "line 3: cannot attach missing.png ({base}/missing.png): No such file or directory"),
        ({"prompt": "p", "attach": ["."]}, NoInputError, "line 3: cannot attach . ({base}/.): it is a folder"),
        ({"prompt": "p", "attach": ["bin"]}, InputError,
         "line 3: cannot attach bin ({base}/bin): neither a PNG, JPEG, GIF or WebP image nor UTF-8 text "
         "(invalid UTF-8 at byte 0)"),
        ({"prompt": "p", "attach": ["-"]}, InputError, "line 3: attach: - (stdin) cannot be attached from a batch line"),
        ({"prompt": "p", "attach": "shot.txt"}, InputError, "line 3: attach must be a list of paths or URLs"),
        ({"prompt": "p", "attach": [3]}, InputError, "line 3: attach must be a list of paths or URLs"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "attach": ["run.log"]},
         InputError, "line 3: attach needs a prompt, or messages that end with a user message"),
        ({"prompt": "p", "attach": ["https://"]}, InputError, "line 3: cannot attach https://: not a valid URL"),
    ],
)
def test_a_bad_attachment_is_the_lines_error(data: Path, line: dict[str, Any], kind: type, message: str) -> None:
    (data / "bin").write_bytes(b"\xff\xfe")
    job = parse(line, str(data))
    assert job.error is not None
    assert (type(job.error), job.error.message) == (kind, message.format(base=data))
    record = batch.error_record(job, job.error)
    assert record["exit_code"] == (66 if kind is NoInputError else 65)


def test_messages_over_50_mb_are_the_lines_error(data: Path) -> None:
    for name in ("a.png", "b.png"):
        with open(data / name, "wb") as fh:
            fh.write(GIF)
            fh.truncate(attach.IMAGE_LIMIT)  # 26,666,668 base64 characters each
    job = parse({"prompt": "p", "attach": ["a.png", "b.png"]}, str(data))
    assert job.error is not None and job.messages == []
    assert (job.error.code, job.error.message) == (65, (
        "line 3: the request would be 53,333,540 bytes, over the 50 MB limit (50,000,000 bytes); "
        "attached: a.png, b.png"))


def test_batch_run_sends_the_parts_and_keeps_going(
    cli: Any, api_env: FakeServer, tmp_path: Path, data: Path
) -> None:
    src = data / "in.jsonl"
    src.write_text("\n".join([
        json.dumps({"id": 1, "prompt": "look", "attach": [str(data / "shot.txt")]}),
        json.dumps({"id": 2, "prompt": "gone", "attach": [str(data / "gone.png")]}),
        json.dumps({"id": 3, "prompt": "plain"}),
    ]) + "\n")
    r = cli(["batch", str(src), "-c", "1"])
    assert r.exit_code == ExitCode.NOINPUT == 66
    records = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(x["id"], x["ok"]) for x in records] == [(1, True), (2, False), (3, True)]
    assert records[1] == {"id": 2, "ok": False, "exit_code": 66,
                          "error": f"line 2: cannot attach {data}/gone.png: No such file or directory"}
    sent = [json.loads(rec.body)["messages"] for rec in api_env.requests]
    assert sent == [
        [{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": GIF_URL}}]}],
        [{"role": "user", "content": "plain"}],
    ]


def test_lines_holding_large_attachments_are_admitted_a_few_at_a_time() -> None:
    """Lines with 60 MB of attached data each: the window would admit 16, memory allows one."""
    import threading
    import time

    running = 0
    most = 0
    lock = threading.Lock()

    def run_job(job: batch.Job) -> dict[str, Any]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return {"id": job.id, "ok": True}

    jobs = [batch.Job(index=i, id=i + 1, held=60 << 20) for i in range(6)]
    written: list[Any] = []
    summary = batch.Runner(run_job, written.append, concurrency=4).run(jobs)
    assert most == 1  # 60 MB + 60 MB is over the 96 MB a run may hold
    assert [r["id"] for r in written] == list(range(1, 7))
    assert summary.done == 6
    most = 0
    batch.Runner(run_job, written.append, concurrency=4).run([batch.Job(index=i, id=i, held=30 << 20) for i in range(9)])
    assert most == 3  # three lines of 30 MB fit, a fourth would not
    most = 0
    batch.Runner(run_job, written.append, concurrency=4).run([batch.Job(index=i, id=i) for i in range(12)])
    assert most == 4  # lines without attachments still run four at a time
