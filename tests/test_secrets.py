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


# A key the server sent back in escaped JSON: masked however the JSON spells it.

def _escape_all(text: str, upper: bool = False) -> str:
    escaped = "".join(f"\\u{ord(c):04x}" for c in text)
    return escaped.upper().replace("\\U", "\\u") if upper else escaped


@pytest.mark.parametrize(
    "spelled",
    [
        KEY.replace("-", "\\u002d"),  # what a JSON encoder escaping '-' writes
        KEY.replace("-", "\\u002D", 1),
        _escape_all(KEY),
        _escape_all(KEY, upper=True),
        KEY[:5] + _escape_all(KEY[5:9]) + KEY[9:],
    ],
)
def test_key_escaped_in_a_json_answer_is_masked_in_json_output(cli: Cli, api_env: FakeServer, spelled: str) -> None:
    raw = completion_body("placeholder", id="placeholder-id")
    body = json.dumps(raw).replace("placeholder-id", spelled).replace('"placeholder"', f'"k={spelled}"')
    api_env.script(Reply(body=body.encode()))
    r = cli(["ask", "-o", "json", "x"])
    assert r.exit_code == 0
    doc = json.loads(r.stdout)  # still JSON, as jq reads it: the key is nowhere
    assert (doc["id"], doc["choices"][0]["message"]["content"]) == ("sk-…WXYZ", "k=sk-…WXYZ")
    assert KEY not in json.dumps(doc) and spelled not in r.stdout
    assert r.stdout == json.dumps(raw).replace("placeholder-id", "sk-…WXYZ").replace(
        '"placeholder"', '"k=sk-…WXYZ"') + "\n"


def test_scrub_masks_every_json_spelling_and_leaves_the_rest_byte_for_byte() -> None:
    redact.add_secret(KEY)
    other = '{"a": "caf\\u00e9 \\/ \\"q\\"", "n": [1, 2.50, true]}'
    for spelled in (KEY, KEY.replace("-", "\\u002d"), _escape_all(KEY), _escape_all(KEY, upper=True)):
        data = f'{{"{spelled}": "x {spelled} y", "o": {other}}}'.encode()
        out = redact.scrub(data)
        assert json.loads(out) == {"sk-…WXYZ": "x sk-…WXYZ y", "o": json.loads(other)}
        assert out.endswith(f', "o": {other}}}'.encode())
    # A string the key does not appear in keeps its escapes exactly.
    assert redact.scrub(other.encode()) == other.encode()


def test_scrub_masks_a_key_holding_characters_json_escapes_itself() -> None:
    odd = 'sk-slash/quote"back\\slash-0123456789'
    redact.add_secret(odd)
    data = json.dumps({"c": f"<{odd}>"}).encode()  # '/' may be '\/' too
    for spelled in (data, data.replace(b"/", b"\\/"), data.replace(b"s", b"\\u0073")):
        assert json.loads(redact.scrub(spelled)) == {"c": "<sk-…6789>"}


def test_scrub_keeps_an_escaped_lone_surrogate_escaped() -> None:
    redact.add_secret(KEY)
    data = ('["\\ud800 ' + KEY.replace("-", "\\u002d") + '"]').encode()
    assert redact.scrub(data) == b'["\\ud800 sk-\\u2026WXYZ"]'


def test_scrub_value_and_scrub_text_mask_the_key_in_decoded_values() -> None:
    redact.add_secret(KEY)
    record = {"id": 1, "content": f"k={KEY}", "usage": {KEY: [KEY, 2, None]}, "esc": KEY.replace("-", "\\u002d")}
    assert redact.scrub_value(record) == {
        "id": 1, "content": "k=sk-…WXYZ", "usage": {"sk-…WXYZ": ["sk-…WXYZ", 2, None]}, "esc": "sk-…WXYZ"}
    assert record["content"] == f"k={KEY}"  # a copy: the original is untouched
    assert redact.scrub_text(f"a {KEY} b") == "a sk-…WXYZ b"
    # Only the key: other key-shaped text in an answer is the answer's own business.
    assert redact.scrub_text("sk-someoneelses0123456") == "sk-someoneelses0123456"


def test_redact_masks_a_key_spelled_with_json_escapes_in_diagnostics() -> None:
    redact.add_secret(KEY)
    assert redact.redact(f"it starts '{{\"k\": \"{_escape_all(KEY)}\"'") == "it starts '{\"k\": \"sk-…WXYZ\"'"


def test_key_escaped_in_a_malformed_answer_is_masked_in_the_error(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=('{"x": "' + KEY.replace("-", "\\u002d") + '"').encode()))
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout) == (76, "")
    assert r.stderr == "evocli: error: the server's answer is not valid JSON (it starts '{\"x\": \"sk-…WXYZ\"')\n"


# Credentials in a base URL are never shown.

USER, PASSWORD = "alice", "s3cr3t-pw"


def _with_credentials(url: str, password: str = PASSWORD) -> str:
    return url.replace("http://", f"http://{USER}:{password}@")


def _assert_hidden(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text and USER not in text, text


def test_base_url_credentials_never_appear_in_errors(server: FakeServer) -> None:
    from tests.conftest import run_evocli
    from tests.server import free_port

    port = free_port()
    env = {"EVOLINK_API_KEY": KEY}
    cases = [
        (f"http://127.0.0.1:{port}/v1", 75, f"evocli: error: cannot connect to 127.0.0.1:{port}: Connection refused\n"),
        ("http://127.0.0.1:99999/v1", 78, "evocli: error: invalid URL 'http://***@127.0.0.1:99999/v1/chat/completions': "
                                          "Failed to parse: http://***@127.0.0.1:99999/v1/chat/completions\n"),
        ("http://example.com/v1", 78, "evocli: error: base URL 'http://***@example.com/v1' uses plain http to a "
                                      "non-loopback host: the key would travel in clear\nhint: use https://\n"),
    ]
    for url, code, stderr in cases:
        r = run_evocli(["ask", "--retries", "0", "x"], env={**env, "EVOLINK_BASE_URL": _with_credentials(url)})
        assert (r.returncode, r.stdout, r.stderr) == (code, "", stderr)


def test_base_url_credentials_never_appear_in_notices_or_dry_run(
    cli: Cli, server: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server import free_port

    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"base_url: {_with_credentials(dead)}\n"
                   f"fallback_base_url: {_with_credentials(server.base_url, 'an0ther-pw')}\n")
    r = cli(["ask", "--retries", "0", "x"])
    assert (r.exit_code, r.stdout) == (0, "Hello from the test server.\n")
    dead_host = dead.split("/")[2]
    assert r.stderr == (f"evocli: {dead_host} failed (cannot connect to {dead_host}: Connection refused); "
                        f"trying 127.0.0.1:{server.port}\n")
    r = cli(["ask", "--dry-run", "x"])
    assert json.loads(r.stdout)["url"] == f"http://***@{dead_host}/v1/chat/completions"
    _assert_hidden(r.stdout)


def test_base_url_password_echoed_by_the_server_is_masked(cli: Cli, server: FakeServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", _with_credentials(server.base_url))
    server.script(Reply(status=400, body={"error": {"message": f"no entry with password {PASSWORD}"}}))
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stderr) == (65, 'evocli: error: HTTP 400 Bad Request: "no entry with password ***"\n'
                                           f"hint: called {server.base_url}/chat/completions\n")


def test_redact_url_and_url_secrets() -> None:
    assert redact.redact_url("see https://u:p@h.example:8/v1?a=b@c and ftp://x@y/") == (
        "see https://***@h.example:8/v1?a=b@c and ftp://***@y/")
    assert redact.redact("https://us@er:p@ss@host/v1") == "https://***@host/v1"
    redact.add_url_secrets("https://u:p%40ssw0rd!@host/v1")
    assert redact.redact("p%40ssw0rd! and p@ssw0rd!") == "*** and ***"
    redact.add_url_secrets("https://u:abc@host/v1")  # too short to hunt in free text
    assert redact.redact("abc") == "abc"
    assert redact.scrub_text("p@ssw0rd!") == "p@ssw0rd!"  # diagnostics only: not an answer's text
