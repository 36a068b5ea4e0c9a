"""The key never leaves evocli except in the request: not on stdout, stderr or in the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evocli import redact
from tests.conftest import KEY
from tests.server import FakeServer, Reply, chunk, completion_body, sse_event, sse_stream

Cli = Any


def test_key_echoed_in_a_whole_answer_is_masked(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(Reply(body=completion_body(f"your key is {KEY}.", id=KEY)))
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout) == (0, "your key is sk-…WXYZ.\n")
    ledger = "".join(p.read_text() for p in (isolated / "ledger").glob("*.jsonl"))
    assert KEY not in ledger and '"id":"sk-…WXYZ"' in ledger


def test_key_echoed_in_json_output_is_masked(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=completion_body(f"k={KEY}")))
    r = cli(["ask", "-o", "json", "x"])
    assert KEY not in r.stdout
    assert json.loads(r.stdout)["choices"][0]["message"]["content"] == "k=sk-…WXYZ"


@pytest.mark.parametrize("mode", ["text", "jsonl"])
def test_key_split_across_stream_chunks_is_masked(cli: Cli, api_env: FakeServer, mode: str) -> None:
    cut = 9
    api_env.script(Reply(chunks=sse_stream(["key: ", KEY[:cut], KEY[cut:] + " end"])))
    r = cli(["ask", "--stream", "-o", mode, "x"])
    assert r.exit_code == 0
    assert KEY not in r.stdout
    if mode == "text":
        assert r.stdout == "key: sk-…WXYZ end\n"
    else:
        text = "".join(json.loads(x).get("content", "") for x in r.stdout.splitlines())
        assert text == "key: sk-…WXYZ end"


def test_prefix_of_the_key_that_is_not_the_key_is_written(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=[sse_event(chunk("starts sk-te")), sse_event(chunk("n but no")),
                                 sse_event(chunk(finish_reason="stop")), b"data: [DONE]\n\n"]))
    assert cli(["ask", "--stream", "x"]).stdout == "starts sk-ten but no\n"


def test_key_at_the_cut_of_a_broken_stream(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(chunks=[sse_event(chunk("tail sk-te"))], drop=True))
    r = cli(["ask", "--stream", "x"])
    assert (r.exit_code, r.stdout) == (76, "tail sk-te\n")


@pytest.mark.parametrize("key", ["sk-abc\ndefghijklmnopqrstu", "sk-abc def-ghijklmnop", "sk-€€€€€€€€€€€€€€€€"])
def test_a_key_that_cannot_be_sent_is_78_and_not_echoed(cli: Cli, server: FakeServer,
                                                       monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", key)
    monkeypatch.setenv("EVOLINK_BASE_URL", server.base_url)
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout) == (78, "")
    assert r.stderr == ("evocli: error: the API key from EVOLINK_API_KEY has characters that cannot be sent "
                        "in a header\nhint: look for a stray space, line break, quote or non-ASCII character in it\n")
    assert server.requests == []


def test_dry_run_does_not_run_the_key_command(cli: Cli, isolated: Path) -> None:
    marker = isolated / "ran"
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"api_key_command: touch {marker}\n")
    r = cli(["ask", "--dry-run", "hi"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["headers"]["Authorization"] == (
        "Bearer <the output of api_key_command, not run by --dry-run>")
    assert not marker.exists()


def test_mask_keeps_only_a_real_prefix() -> None:
    assert redact.mask("notsk-0123456789abcdefgh") == "…efgh"
    assert redact.mask("sk-0123456789abcdefgh") == "sk-…efgh"
    assert redact.mask("short") == "…"
