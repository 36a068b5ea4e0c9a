"""Hostile answers from the server, through the real `evocli` process: the documented exit code or
the text with replacement characters, never an internal error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import invoke, run_evocli
from tests.server import FakeServer, Reply, chunk, completion_body, sse_event

DEEP = b"[" * 100_000 + b"]" * 100_000
SURROGATE_BODY = (
    b'{"id":"c-1","model":"gpt\\ud800","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"A\\ud800B"},"finish_reason":"stop"}],"usage":{"total_tokens":3}}'
)


@pytest.fixture
def evo(api_env: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run evocli against the local server after scripting its replies: in-process, or as a real
    process with process=True (a few cases, to pin what a shell sees)."""
    monkeypatch.setenv("EVOLINK_CREDITS_URL", f"{api_env.url}/v1/credits")

    def run(args: list[str], *replies: Reply, process: bool = False) -> Any:
        api_env.script(*replies)
        if process:
            return run_evocli(args)
        done = invoke(args)
        return subprocess.CompletedProcess(args, done.exit_code, done.stdout, done.stderr)

    return run


@pytest.fixture
def conv(tmp_path: Path) -> Path:
    path = tmp_path / "talk.yaml"
    path.write_text("messages:\n  - role: user\n    content: hi\n")
    return path


def _deep_stream() -> Reply:
    return Reply(chunks=[b"data: " + DEEP + b"\n\n"])


@pytest.mark.parametrize(
    ("args", "reply", "stderr"),
    [
        (["ask", "--no-stream", "x"], Reply(body=b'{"choices":' + DEEP + b"}"),
         "evocli: error: the server's answer is nested more than 200 levels deep\n"),
        (["ask", "-o", "json", "x"], Reply(body=DEEP),
         "evocli: error: the server's answer is nested more than 200 levels deep\n"),
        (["ask", "--stream", "x"], _deep_stream(),
         "evocli: error: the stream sent a chunk that is nested more than 200 levels deep\n"),
        (["ask", "-o", "jsonl", "x"], _deep_stream(),
         "evocli: error: the stream sent a chunk that is nested more than 200 levels deep\n"),
        (["usage", "--credits"], Reply(body=DEEP),
         "evocli: error: the server's answer is nested more than 200 levels deep\n"),
    ],
)
def test_answer_nested_100000_levels_deep_is_76(evo: Any, args: list[str], reply: Reply, stderr: str) -> None:
    r = evo(args, reply, process=args[:2] in (["ask", "--no-stream"], ["ask", "--stream"]))
    assert (r.returncode, r.stdout, r.stderr) == (76, "", stderr)


def test_error_body_nested_100000_levels_deep_is_quoted_not_parsed(evo: Any, api_env: FakeServer) -> None:
    r = evo(["ask", "--retries", "0", "x"], Reply(status=500, body=DEEP))
    assert (r.returncode, r.stdout) == (75, "")
    assert r.stderr == ('evocli: error: HTTP 500 Internal Server Error: "' + "[" * 119 + '…"\n'
                        f"hint: the service is having trouble: try again later; called {api_env.base_url}"
                        "/chat/completions\n")


def test_answer_nested_100000_levels_deep_in_a_chat_file_run_is_76(evo: Any, conv: Path) -> None:
    before = conv.read_text()
    r = evo(["chat-file", "--append", str(conv)], Reply(body=b'{"choices":' + DEEP + b"}"))
    assert (r.returncode, r.stdout) == (76, "")
    assert r.stderr == "evocli: error: the server's answer is nested more than 200 levels deep\n"
    assert conv.read_text() == before


@pytest.mark.parametrize("text", [5, None, ["a"], {"t": 1}])
def test_text_part_whose_text_is_not_a_string_is_76(evo: Any, text: Any) -> None:
    r = evo(["ask", "x"], Reply(body=completion_body([{"type": "text", "text": text}])))
    assert (r.returncode, r.stdout) == (76, "")
    assert r.stderr == "evocli: error: the answer's content has a text part whose text is not a string\n"


def test_text_part_whose_text_is_not_a_string_in_a_stream_is_76(evo: Any) -> None:
    r = evo(["ask", "--stream", "x"], Reply(chunks=[
        sse_event(chunk("ok ")),
        sse_event({"choices": [{"index": 0, "delta": {"content": [{"type": "text", "text": 5}]}}]}),
    ]))
    assert (r.returncode, r.stdout) == (76, "ok \n")
    assert r.stderr == "evocli: error: the answer's content has a text part whose text is not a string\n"


def test_lone_surrogates_in_content_model_and_finish_reason_print_as_replacement_characters(evo: Any) -> None:
    body = SURROGATE_BODY.replace(b'"stop"', b'"stop\\udc00"')
    r = evo(["ask", "x"], Reply(body=body), process=True)
    # An unknown finish_reason is an incomplete answer (exit 3): the text, readable, is still printed.
    assert (r.returncode, r.stdout) == (3, "A\ufffdB\n")
    assert "stop\ufffd" in r.stderr


def test_lone_surrogates_in_jsonl_and_usage_output(evo: Any) -> None:
    r = evo(["ask", "-o", "jsonl", "x"], Reply(chunks=[
        b'data: {"id":"c-1","model":"gpt\\ud800","choices":[{"index":0,"delta":{"content":"A\\ud800B"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
        b'data: {"choices":[],"usage":{"total_tokens":3,"note":"\\udfff"}}\n\n',
        b"data: [DONE]\n\n",
    ]))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == (
        '{"type":"delta","content":"A\ufffdB"}\n'
        '{"type":"done","id":"c-1","model":"gpt\ufffd","finish_reason":"stop","usage":{"total_tokens":3,"note":"\ufffd"}}\n'
    )


def test_lone_surrogate_answer_saved_by_chat_file_append(evo: Any, conv: Path) -> None:
    r = evo(["chat-file", "--append", str(conv)], Reply(body=SURROGATE_BODY))
    assert (r.returncode, r.stdout, r.stderr) == (0, "A\ufffdB\n", "")
    assert conv.read_text(encoding="utf-8") == (
        "messages:\n  - role: user\n    content: hi\n  - role: assistant\n    content: A\ufffdB\n")


def test_lone_surrogate_in_a_credits_message_is_replaced(evo: Any) -> None:
    r = evo(["usage", "--credits"], Reply(body=b'{"success":false,"message":"no \\ud83d credits"}'))
    assert (r.returncode, r.stdout) == (76, "")
    assert r.stderr == 'evocli: error: the credits query failed: "no \ufffd credits"\n'


def test_batch_answer_with_a_lone_surrogate_stays_that_lines_record(evo: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(f"p{i}") + "\n" for i in range(5)))
    ok = Reply(body=completion_body("fine"))
    r = evo(["batch", str(src), "-c", "1"], ok, ok, Reply(body=SURROGATE_BODY), ok, ok, process=True)
    assert (r.returncode, r.stderr) == (0, "")
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["content"] for rec in records] == ["fine", "fine", "A\ufffdB", "fine", "fine"]
    assert records[2] == {"id": 3, "ok": True, "content": "A\ufffdB", "finish_reason": "stop",
                          "model": "gpt\ufffd", "usage": {"total_tokens": 3}}


@pytest.mark.parametrize(
    ("args", "body", "shown"),
    [
        (["ask", "-o", "usage", "x"], b'"usage":{"prompt_tokens":NaN}', "holds NaN, which is not a JSON number"),
        (["ask", "-o", "json", "x"], b'"usage":{"prompt_tokens":Infinity}',
         "holds Infinity, which is not a JSON number"),
        (["ask", "x"], b'"usage":{"prompt_tokens":-Infinity}', "holds -Infinity, which is not a JSON number"),
        (["ask", "-o", "usage", "x"], b'"usage":{"prompt_tokens":1e999}', "holds a number out of range (1e999)"),
    ],
)
def test_nan_or_infinity_from_the_server_is_76_never_printed_bare(
    evo: Any, args: list[str], body: bytes, shown: str
) -> None:
    raw = b'{"choices":[{"message":{"content":"A"},"finish_reason":"stop"}],' + body + b"}"
    r = evo(args, Reply(body=raw), process=args[:3] == ["ask", "-o", "json"])
    assert (r.returncode, r.stdout, r.stderr) == (76, "", f"evocli: error: the server's answer {shown}\n")


def test_nan_in_the_jsonl_done_line_is_76_after_the_text(evo: Any) -> None:
    r = evo(["ask", "-o", "jsonl", "x"], Reply(chunks=[
        sse_event(chunk("hi")), sse_event(chunk(finish_reason="stop")),
        b'data: {"choices":[],"usage":{"total_tokens":NaN}}\n\n', b"data: [DONE]\n\n",
    ]))
    assert (r.returncode, r.stdout) == (76, '{"type":"delta","content":"hi"}\n')
    assert r.stderr == "evocli: error: the stream sent a chunk that holds NaN, which is not a JSON number\n"


def test_infinity_in_the_credits_answer_is_76(evo: Any) -> None:
    r = evo(["usage", "--credits", "--json"], Reply(body=(
        b'{"success":true,"data":{"token":{"remaining_credits":Infinity,"used_credits":1},'
        b'"user":{"remaining_credits":1,"used_credits":2}}}')))
    assert (r.returncode, r.stdout) == (76, "")
    assert r.stderr == "evocli: error: the server's answer holds Infinity, which is not a JSON number\n"
