"""Attachments and `ask -c` from the command line, against the local server: the exact parts sent,
refusals before any request, dry-run shortening, conversations created, continued and saved."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Reply, completion_body

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
GIF = b"GIF89a\x01\x00\x01\x00"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\r\x00\x00\x00"


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def user_content(server: FakeServer, index: int = -1) -> Any:
    return server.bodies[index]["messages"][-1]["content"]


def test_each_kind_of_attachment_is_sent_as_its_part(cli: Any, api_env: FakeServer, here: Path) -> None:
    # Misleading names: the kind comes from the bytes.
    for name, data in (("a.gif", PNG), ("b.png", JPEG), ("c.jpg", GIF), ("d.txt", WEBP)):
        (here / name).write_bytes(data)
    (here / "log.txt").write_text("line 1\nlíne 2")
    r = cli(["ask", "--no-stdin", "-a", "a.gif", "-a", "b.png", "-a", "c.jpg", "-a", "d.txt", "-a", "log.txt",
             "-a", "https://example.test/e.png", "What do you see?"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello from the test server.\n", "")
    assert user_content(api_env) == [
        {"type": "text", "text": "What do you see?"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        {"type": "image_url", "image_url": {"url": data_url("image/jpeg", JPEG)}},
        {"type": "image_url", "image_url": {"url": data_url("image/gif", GIF)}},
        {"type": "image_url", "image_url": {"url": data_url("image/webp", WEBP)}},
        {"type": "text", "text": '<file name="log.txt">\nline 1\nlíne 2\n</file>'},
        {"type": "image_url", "image_url": {"url": "https://example.test/e.png"}},
    ]


def test_image_detail_and_stdin(cli: Any, api_env: FakeServer, here: Path) -> None:
    r = cli(["ask", "-a", "-", "--image-detail", "high", "Describe it"], input=PNG)
    assert r.exit_code == 0, r.stderr
    assert user_content(api_env) == [
        {"type": "text", "text": "Describe it"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG), "detail": "high"}},
    ]
    r = cli(["ask", "-a", "-", "Summarize"], input="a log\n")
    assert user_content(api_env) == [
        {"type": "text", "text": "Summarize"}, {"type": "text", "text": '<file name="stdin">\na log\n\n</file>'},
    ]


def test_without_attachments_the_content_stays_a_string(cli: Any, api_env: FakeServer) -> None:
    assert cli(["ask", "--no-stdin", "hi"]).exit_code == 0
    assert user_content(api_env) == "hi"


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        (None, ["-a", "missing.png"], 66, "evocli: error: cannot attach missing.png: No such file or directory\n"),
        ("folder", ["-a", "folder"], 66, "evocli: error: cannot attach folder: it is a folder\n"),
        ("binary", ["-a", "blob.bin"], 65,
         "evocli: error: cannot attach blob.bin: neither a PNG, JPEG, GIF or WebP image nor UTF-8 text"),
        ("big", ["-a", "big.png"], 65,
         "evocli: error: cannot attach big.png: the image is 20,000,001 bytes, over the 20 MB limit"),
        ("two", ["-a", "one.png", "-a", "two.png"], 65, "evocli: error: the request would be "),
    ],
)
def test_refusals_come_before_any_request(cli: Any, api_env: FakeServer, here: Path, setup: str | None,
                                          args: list[str], code: int, message: str) -> None:
    if setup == "folder":
        (here / "folder").mkdir()
    elif setup == "binary":
        (here / "blob.bin").write_bytes(b"\x00\x01\x02\xff" * 10)
    elif setup == "big":
        with open(here / "big.png", "wb") as fh:
            fh.write(PNG)
            fh.truncate(20_000_001)
    elif setup == "two":  # each under 20 MB, together over the 50 MB body limit once encoded
        for name in ("one.png", "two.png"):
            with open(here / name, "wb") as fh:
                fh.write(PNG)
                fh.truncate(19_000_000)
    r = cli(["ask", "--no-stdin", *args, "x"])
    assert (r.exit_code, r.stdout) == (code, "")
    assert r.stderr.startswith(message)
    if setup == "two":
        assert "over the 50 MB limit (50,000,000 bytes); attached: one.png, two.png" in r.stderr
    assert api_env.requests == []


def test_stdin_cannot_be_both_prompt_and_attachment(cli: Any, api_env: FakeServer) -> None:
    r = cli(["ask", "-a", "-", "-"], input="x")
    assert (r.exit_code, r.stderr) == (
        2, "evocli: error: -a - reads an attachment from stdin, so the prompt cannot come from it\n")
    r = cli(["ask", "--no-stdin", "-a", "-", "x"])
    assert (r.exit_code, r.stderr) == (2, "evocli: error: -a - reads stdin, which --no-stdin forbids\n")
    assert api_env.requests == []


def test_dry_run_shortens_base64(cli: Any, here: Path) -> None:
    with open(here / "shot.png", "wb") as fh:
        fh.write(PNG)
        fh.truncate(5_000_000)
    r = cli(["ask", "--dry-run", "--no-stdin", "-a", "shot.png", "-a", "https://e.test/x.png", "What is wrong?"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["body"]["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is wrong?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,<base64: 5000000 bytes>"}},
        {"type": "image_url", "image_url": {"url": "https://e.test/x.png"}},
    ]}]
    assert len(r.stdout) < 1200


def test_chat_file_attachments_and_conversation_parts(cli: Any, api_env: FakeServer, here: Path) -> None:
    folder = here / "conv"
    folder.mkdir()
    (folder / "chart.png").write_bytes(PNG)
    (folder / "notes.txt").write_text("notes\n")
    (folder / "c.yaml").write_text(
        "messages:\n  - role: user\n    content:\n      - text: Look at these\n      - image: chart.png\n"
        "      - file: notes.txt\n"
    )
    (here / "extra.gif").write_bytes(GIF)
    r = cli(["chat-file", "--no-stdin", "-a", "extra.gif", "conv/c.yaml"])
    assert r.exit_code == 0, r.stderr
    assert api_env.bodies[-1]["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "Look at these"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        {"type": "text", "text": '<file name="notes.txt">\nnotes\n\n</file>'},
        {"type": "image_url", "image_url": {"url": data_url("image/gif", GIF)}},
    ]}]


def test_chat_file_append_saves_attachments_as_references(cli: Any, api_env: FakeServer, here: Path) -> None:
    (here / "j.yaml").write_text("messages:\n  - role: user\n    content: hi\n")
    (here / "shot.png").write_bytes(PNG)
    r = cli(["chat-file", "--append", "-a", "shot.png", "j.yaml"], input="What about this one?\n")
    assert r.exit_code == 0, r.stderr
    assert user_content(api_env)[1] == {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}
    saved = yaml.safe_load((here / "j.yaml").read_text())["messages"]
    assert saved[1:] == [
        {"role": "user", "content": [{"text": "What about this one?"}, {"image": "shot.png"}]},
        {"role": "assistant", "content": "Hello from the test server."},
    ]
    r = cli(["chat-file", "--append", "--no-stdin", "-a", "shot.png", "j.yaml"])
    assert r.exit_code == 2
    assert r.stderr.startswith("evocli: error: -a with --append attaches to the turn piped on stdin")


# ---------------------------------------------------------------------------------------------
# ask -c


def test_ask_c_creates_then_continues(cli: Any, api_env: FakeServer, here: Path) -> None:
    api_env.script(Reply(body=completion_body("First answer.")), Reply(body=completion_body("Second answer.")))
    r = cli(["ask", "-c", "review.yaml", "-s", "Be terse.", "Review this"], input="diff --git a/x b/x\n")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "First answer.\n", "")
    assert api_env.bodies[0]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "diff --git a/x b/x\n\nReview this"},
    ]
    assert yaml.safe_load((here / "review.yaml").read_text()) == {
        "system": "Be terse.",
        "messages": [
            {"role": "user", "content": "diff --git a/x b/x\n\nReview this"},
            {"role": "assistant", "content": "First answer."},
        ],
    }
    r = cli(["ask", "-c", "review.yaml", "--no-stdin", "Now write the commit message"])
    assert (r.exit_code, r.stdout) == (0, "Second answer.\n")
    assert api_env.bodies[1]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "diff --git a/x b/x\n\nReview this"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Now write the commit message"},
    ]
    assert yaml.safe_load((here / "review.yaml").read_text())["messages"][2:] == [
        {"role": "user", "content": "Now write the commit message"},
        {"role": "assistant", "content": "Second answer."},
    ]


def test_ask_c_system_with_a_conversation_already_there_is_2(cli: Any, api_env: FakeServer, here: Path) -> None:
    (here / "c.yaml").write_text("system: Old.\nmessages: []\n")
    r = cli(["ask", "-c", "c.yaml", "-s", "New.", "--no-stdin", "x"])
    assert (r.exit_code, r.stderr) == (
        2, "evocli: error: -s: c.yaml already holds a conversation; its system message is set when it is "
           "created\nhint: edit c.yaml to change it\n")
    assert api_env.requests == []


def test_ask_c_a_failed_call_appends_nothing(cli: Any, api_env: FakeServer, here: Path) -> None:
    api_env.script(Reply(status=400, body={"error": {"message": "bad"}}), Reply(status=400, body={"error": {}}))
    r = cli(["ask", "-c", "new.yaml", "--no-stdin", "x"])
    assert r.exit_code == 65
    assert not (here / "new.yaml").exists()  # not even created
    (here / "old.yaml").write_text("# kept as it is\nmessages:\n  - {role: user, content: a}\n")
    before = (here / "old.yaml").read_bytes()
    assert cli(["ask", "-c", "old.yaml", "--no-stdin", "x"]).exit_code == 65
    assert (here / "old.yaml").read_bytes() == before
    assert sorted(p.name for p in here.iterdir()) == ["old.yaml"]


def test_ask_c_with_attachments_saves_references_and_rereads_them(cli: Any, api_env: FakeServer,
                                                                   here: Path) -> None:
    (here / "convs").mkdir()
    (here / "shot.png").write_bytes(PNG)
    (here / "log.txt").write_text("version 1\n")
    r = cli(["ask", "-c", "convs/t.yaml", "--no-stdin", "-a", "shot.png", "-a", "log.txt", "Compare"])
    assert r.exit_code == 0, r.stderr
    saved = yaml.safe_load((here / "convs" / "t.yaml").read_text())["messages"][0]
    assert saved == {"role": "user", "content": [{"text": "Compare"}, {"image": "../shot.png"},
                                                 {"file": "../log.txt"}]}
    assert "base64" not in (here / "convs" / "t.yaml").read_text()
    (here / "log.txt").write_text("version 2\n")
    assert cli(["ask", "-c", "convs/t.yaml", "--no-stdin", "And now?"]).exit_code == 0
    assert api_env.bodies[1]["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}},
        {"type": "text", "text": '<file name="../log.txt">\nversion 2\n\n</file>'},
    ]


def test_ask_c_dry_run_creates_nothing(cli: Any, here: Path) -> None:
    r = cli(["ask", "-c", "n.yaml", "--dry-run", "--no-stdin", "x"])
    assert r.exit_code == 0
    assert not (here / "n.yaml").exists()


def test_ten_concurrent_continuations_lose_no_turn(tmp_path: Path) -> None:
    conv = tmp_path / "shared.yaml"
    with FakeServer() as srv:
        env = child_env({"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": srv.base_url})
        procs = [
            subprocess.Popen([sys.executable, "-m", "evocli", "ask", "-q", "-c", str(conv), "--no-stdin", f"turn {i}"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=REPO)
            for i in range(10)
        ]
        results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, results
    saved = yaml.safe_load(conv.read_text())["messages"]
    assert len(saved) == 20
    assert sorted(m["content"] for m in saved if m["role"] == "user") == sorted(f"turn {i}" for i in range(10))
    assert [m["role"] for m in saved] == ["user", "assistant"] * 10
    # each run sent everything saved before it: the i-th request carries 2*i earlier turns
    assert sorted(len(json.loads(r.body)["messages"]) for r in srv.requests) == [2 * i + 1 for i in range(10)]
    assert sorted(os.listdir(tmp_path)) == [p for p in sorted(os.listdir(tmp_path)) if not p.startswith(".")]


def test_a_conversation_file_that_is_a_fifo_is_refused_not_waited_on(cli: Any, api_env: FakeServer,
                                                                     here: Path) -> None:
    os.mkfifo(here / "pipe.yaml")
    for args in (["ask", "-c", "pipe.yaml", "--no-stdin", "x"], ["chat-file", "--append", "--no-stdin", "pipe.yaml"]):
        r = cli(args)
        assert (r.exit_code, r.stderr) == (66, "evocli: error: cannot append to pipe.yaml: it is not a regular file\n")
    r = cli(["ask", "-c", "", "--no-stdin", "x"])
    assert (r.exit_code, r.stderr) == (66, "evocli: error: a conversation file needs a name\n")
    assert api_env.requests == []
