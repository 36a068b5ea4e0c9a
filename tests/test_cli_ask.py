"""`evocli ask` in-process against the local server: exact stdout, stderr, exit code and request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KEY, Run, run_evocli, with_called
from tests.server import FakeServer, Reply, completion_body, free_port

Cli = Any
HINT_EMPTY = 'hint: give the prompt as arguments (evocli ask "...") or pipe it on stdin\n'


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def test_plain_answer(cli: Cli, api_env: FakeServer) -> None:
    r: Run = cli(["ask", "Say", "hello"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello from the test server.\n", "")
    [req] = api_env.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Content-Type"] == "application/json"
    assert req.json == {"model": "gpt-5.2", "messages": [user("Say hello")]}


def test_answer_ends_in_exactly_one_newline(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=completion_body("line\n\n\n")), Reply(body=completion_body("")))
    assert cli(["ask", "x"]).stdout == "line\n"
    # An empty answer is incomplete (exit 3, nothing printed); accepted, it is one line break.
    r = cli(["ask", "--allow-incomplete", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "\n", "evocli: warning: the answer has no text (3 reasoning tokens)\n")


def test_stdin_then_blank_line_then_args(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "Summarize"], input="notes line 1\nnotes line 2\n")
    assert r.exit_code == 0
    assert api_env.bodies[0]["messages"] == [user("notes line 1\nnotes line 2\n\nSummarize")]


def test_stdin_only_and_lone_dash(cli: Cli, api_env: FakeServer) -> None:
    assert cli(["ask"], input="from stdin\n").exit_code == 0
    assert cli(["ask", "-"], input="dash\n").exit_code == 0
    assert [b["messages"] for b in api_env.bodies] == [[user("from stdin")], [user("dash")]]


def test_dash_among_words_is_literal(cli: Cli, api_env: FakeServer) -> None:
    assert cli(["ask", "a", "-", "b"]).exit_code == 0
    assert api_env.bodies[0]["messages"] == [user("a - b")]


def test_no_stdin_ignores_piped_text(cli: Cli, api_env: FakeServer) -> None:
    assert cli(["ask", "--no-stdin", "just", "args"], input="ignored\n").exit_code == 0
    assert api_env.bodies[0]["messages"] == [user("just args")]


def test_dash_with_no_stdin_is_usage_error(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "--no-stdin", "-"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == "evocli: error: a lone - reads the prompt from stdin, which --no-stdin forbids\n"
    assert api_env.requests == []


@pytest.mark.parametrize(("args", "stdin"), [(["ask"], ""), (["ask", "  "], "\n\n"), (["ask", "--no-stdin"], "x")])
def test_empty_prompt_is_65(cli: Cli, api_env: FakeServer, args: list[str], stdin: str) -> None:
    r = cli(args, input=stdin)
    assert (r.exit_code, r.stdout) == (65, "")
    assert r.stderr == "evocli: error: the prompt is empty\n" + HINT_EMPTY
    assert api_env.requests == []


def test_invalid_utf8_stdin_is_65(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "x"], input=b"ok \xff\xfe")
    assert (r.exit_code, r.stderr) == (65, "evocli: error: stdin is not valid UTF-8 text (byte 3)\n")


def test_call_options_shape_the_body(cli: Cli, api_env: FakeServer) -> None:
    r = cli([
        "ask", "-s", "Be terse.", "-m", "gpt-5.5", "-t", "0.3", "--max-tokens", "50",
        "-p", "reasoning_effort=high", "-p", "seed=7", "-p", 'response_format={"type":"json_object"}',
        "-p", "user=007", "-p", "note=a=b", "Q?",
    ])
    assert r.exit_code == 0
    assert api_env.bodies[0] == {
        "model": "gpt-5.5",
        "messages": [{"role": "system", "content": "Be terse."}, user("Q?")],
        "reasoning_effort": "high",
        "seed": 7,
        "response_format": {"type": "json_object"},
        "user": "007",
        "note": "a=b",
        "temperature": 0.3,
        "max_completion_tokens": 50,
    }


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("seed", "-p expects KEY=VALUE, got 'seed'"),
        ("=3", "-p expects KEY=VALUE, got '=3'"),
        ("messages=[]", "-p cannot set 'messages': they come from the prompt, the conversation file or the batch line"),
        ("stream=true", "-p cannot set 'stream': use --stream / --no-stream"),
        ("x=NaN", "-p 'x=NaN': NaN is not a JSON number"),
        ("x=-Infinity", "-p 'x=-Infinity': -Infinity is not a JSON number"),
        ("x=1e999", "-p 'x=1e999': Infinity is not a JSON number"),
        ('logit_bias={"7": [1, NaN]}', "-p 'logit_bias={\"7\": [1, NaN]}': NaN is not a JSON number"),
    ],
)
def test_bad_params_are_usage_errors(cli: Cli, api_env: FakeServer, param: str, message: str) -> None:
    r = cli(["ask", "-p", param, "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"evocli: error: {message}\n")
    assert api_env.requests == []


def test_output_json_is_the_body_as_received(cli: Cli, api_env: FakeServer) -> None:
    raw = b'{"id":"c1",  "model":"gpt-5.2","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"total_tokens":3}}'
    api_env.script(Reply(body=raw), Reply(body=raw + b"\n"))
    assert cli(["ask", "-o", "json", "x"]).stdout == raw.decode() + "\n"
    assert cli(["ask", "-o", "json", "x"]).stdout == raw.decode() + "\n"


def test_output_usage_is_one_json_line(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "-o", "usage", "x"])
    assert r.exit_code == 0
    assert r.stdout.count("\n") == 1
    assert json.loads(r.stdout) == completion_body()["usage"]


def test_show_usage_on_stderr(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "-u", "x"])
    assert r.stdout == "Hello from the test server.\n"
    assert r.stderr == "usage: prompt_tokens=12 completion_tokens=7 reasoning_tokens=3 cached_tokens=2 image_tokens=0 total_tokens=19\n"


def test_unfinished_answers_exit_3_after_their_text_and_quiet_keeps_the_error(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=completion_body("partial", finish_reason="length")),
                   Reply(body=completion_body("partial", finish_reason="length")),
                   Reply(body=completion_body("x", finish_reason="content_filter")))
    cut = ("evocli: error: the answer was cut off at the token limit (finish_reason length)\n"
           "hint: raise --max-tokens, or lower --effort so fewer tokens go to reasoning\n")
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "partial\n", cut)
    r = cli(["ask", "-q", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "partial\n", cut)
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "x\n", (
        "evocli: error: the content filter stopped the answer (finish_reason content_filter)\n"
        "hint: rephrase the request; --allow-incomplete accepts what arrived\n"))


def test_a_tool_call_is_whole_with_a_warning(cli: Cli, api_env: FakeServer) -> None:
    body = completion_body(None, finish_reason="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    api_env.script(Reply(body=body))
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        0, "\n", "evocli: warning: the model asked to call a tool, which evocli does not run (finish_reason: tool_calls)\n")


def test_dry_run_prints_request_and_touches_nothing(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    r = cli(["ask", "--dry-run", "-s", "sys", "-p", "seed=1", "hello"], input="ctx\n")
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {
        "method": "POST",
        "url": f"{api_env.base_url}/chat/completions",
        "headers": {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": r.stdout.split('"User-Agent": "')[1].split('"')[0],
            "Authorization": "Bearer sk-…WXYZ",
        },
        "body": {"model": "gpt-5.2", "messages": [{"role": "system", "content": "sys"}, user("ctx\n\nhello")], "seed": 1},
    }
    assert KEY not in r.stdout
    assert api_env.requests == []
    assert not (isolated / "ledger").exists()


def test_dry_run_works_without_a_key(cli: Cli) -> None:
    r = cli(["ask", "--dry-run", "hi"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["headers"]["Authorization"] == "Bearer <none>"


def test_model_from_env_and_config(cli: Cli, api_env: FakeServer, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("model: from-config\nparams: {seed: 3}\n")
    cli(["ask", "x"])
    monkeypatch.setenv("EVOCLI_MODEL", "from-env")
    cli(["ask", "x"])
    cli(["ask", "-m", "from-flag", "-p", "seed=4", "x"])
    assert [(b["model"], b["seed"]) for b in api_env.bodies] == [
        ("from-config", 3), ("from-env", 3), ("from-flag", 4)]


ERRORS = [
    (400, {"error": {"code": 400, "message": "Invalid request parameters", "type": "invalid_request_error"}}, 65,
     'evocli: error: HTTP 400 Bad Request: "Invalid request parameters"\n'),
    (401, {"error": {"code": 401, "message": "Invalid or expired token", "type": "authentication_error"}}, 77,
     'evocli: error: HTTP 401 Unauthorized: "Invalid or expired token"\n'
     "hint: check EVOLINK_API_KEY (keys start with sk-; manage them at https://evolink.ai/dashboard/keys)\n"),
    (402, {"error": {"code": 402, "message": "Insufficient quota", "type": "insufficient_quota_error",
                     "fallback_suggestion": "https://evolink.ai/dashboard/billing"}}, 69,
     'evocli: error: HTTP 402 Payment Required: "Insufficient quota"\nhint: https://evolink.ai/dashboard/billing\n'),
    (403, {"error": {"message": "Access denied for this model", "param": "model"}}, 77,
     'evocli: error: HTTP 403 Forbidden: "Access denied for this model"\n'
     "hint: this key may not use this model or endpoint\n"),
    (404, {"code": "model_not_found", "message": "Model 'gpt-9' is not available"}, 65,
     "evocli: error: HTTP 404 Not Found: \"Model 'gpt-9' is not available\"\n"
     "hint: check the model name (-m) and the base URL\n"),
    (413, {"error": {"message": "Image file too large", "fallback_suggestion": "compress image to under 10MB"}}, 65,
     'evocli: error: HTTP 413 Request Entity Too Large: "Image file too large"\nhint: compress image to under 10MB\n'),
    (429, {"error": {"message": "Rate limit exceeded", "fallback_suggestion": "retry after 60 seconds"}}, 75,
     'evocli: error: HTTP 429 Too Many Requests: "Rate limit exceeded"\nhint: retry after 60 seconds\n'),
    (500, {"error": {"message": "boom"}}, 75,
     'evocli: error: HTTP 500 Internal Server Error: "boom"\nhint: the service is having trouble: try again later\n'),
]


@pytest.mark.parametrize(("status", "body", "code", "stderr"), ERRORS, ids=[str(e[0]) for e in ERRORS])
def test_api_errors(cli: Cli, api_env: FakeServer, status: int, body: Any, code: int, stderr: str) -> None:
    api_env.script(Reply(status=status, body=body))
    r = cli(["ask", "--retries", "0", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (code, "", with_called(stderr, api_env.base_url + "/chat/completions"))


def test_key_echoed_by_server_never_printed(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(status=401, body={"error": {"message": f"key {KEY} is revoked"}}))
    r = cli(["ask", "x"])
    assert r.exit_code == 77
    assert KEY not in r.stderr + r.stdout
    assert r.stderr.startswith('evocli: error: HTTP 401 Unauthorized: "key sk-…WXYZ is revoked"\n')


def test_malformed_body_is_76(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(body=b"{not json"), Reply(body={"object": "chat.completion"}))
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (
        76, "", "evocli: error: the server's answer is not valid JSON (it starts '{not json')\n")
    r = cli(["ask", "-o", "json", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (76, "", "evocli: error: the server's answer has no choices\n")


def test_refused_connection_is_75(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", f"http://127.0.0.1:{port}/v1")
    r = cli(["ask", "--retries", "0", "x"])
    assert (r.exit_code, r.stdout) == (75, "")
    assert r.stderr == f"evocli: error: cannot connect to 127.0.0.1:{port}: Connection refused\n"


def test_read_timeout_is_75(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(Reply(delay=1.0, body=completion_body()))
    r = cli(["ask", "--retries", "0", "--timeout", "0.2", "x"])
    assert (r.exit_code, r.stdout) == (75, "")
    assert r.stderr == (f"evocli: error: no answer from 127.0.0.1:{api_env.port} within 0.2 s\n"
                        "hint: raise --timeout for slow models\n")


def test_no_key_is_78(cli: Cli, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_BASE_URL", server.base_url)
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout) == (78, "")
    assert r.stderr == ("evocli: error: no API key configured\nhint: set EVOLINK_API_KEY "
                        "(keys start with sk-; create one at https://evolink.ai/dashboard/keys)\n")
    assert server.requests == []


def test_insecure_base_url_is_78(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLINK_API_KEY", KEY)
    monkeypatch.setenv("EVOLINK_BASE_URL", "http://api.example.com/v1")
    r = cli(["ask", "x"])
    assert r.exit_code == 78
    assert r.stderr == ("evocli: error: base URL 'http://api.example.com/v1' uses plain http to a non-loopback "
                        "host: the key would travel in clear\nhint: use https://\n")


def test_bad_config_is_78(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("modle: x\n")
    r = cli(["ask", "x"])
    assert r.exit_code == 78
    assert r.stderr.startswith(f"evocli: error: config file {cfg}: unknown key 'modle'\nhint: known keys: ")
    assert api_env.requests == []


@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_timeout_is_usage_error(cli: Cli, api_env: FakeServer, value: str) -> None:
    r = cli(["ask", "--timeout", value, "x"])
    assert (r.exit_code, r.stderr) == (2, "evocli: error: --timeout must be a positive number of seconds\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "--bogus", "x"], "no such option: --bogus (Possible options: --verbose)"),
        (["ask", "-o", "xml", "x"], "invalid value for '-o' / '--output': 'xml' is not one of 'text', 'json', 'jsonl', 'usage'"),
        (["ask", "-t", "warm", "x"], "invalid value for '-t' / '--temperature': 'warm' is not a valid float range"),
        (["ask", "--retries", "-1", "x"], "invalid value for '--retries': -1 is not in the range x>=0"),
    ],
)
def test_command_line_mistakes_are_one_line_and_exit_2(cli: Cli, args: list[str], message: str) -> None:
    r = cli(args)
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == f"evocli: error: {message}\nhint: 'evocli ask -h' lists the options\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "nan"], "-t/--temperature must be a finite number, got nan"),
        # -t's range (0 to 2) refuses the infinities first.
        (["--temperature", "inf"], "invalid value for '-t' / '--temperature': inf is not in the range 0<=x<=2\n"
                                   "hint: 'evocli ask -h' lists the options"),
        (["-t", "-inf"], "invalid value for '-t' / '--temperature': -inf is not in the range 0<=x<=2\n"
                         "hint: 'evocli ask -h' lists the options"),
        (["--timeout", "inf"], "--timeout must be a positive number of seconds"),
        (["--timeout", "nan"], "--timeout must be a positive number of seconds"),
        (["--connect-timeout", "inf"], "--connect-timeout must be a positive number of seconds"),
        (["--connect-timeout", "nan"], "--connect-timeout must be a positive number of seconds"),
        (["--retry-max-time", "inf"], "--retry-max-time must be a positive number of seconds"),
        (["--retry-max-time", "nan"], "--retry-max-time must be a positive number of seconds"),
    ],
)
def test_non_finite_numbers_are_usage_errors(cli: Cli, api_env: FakeServer, args: list[str], message: str) -> None:
    for extra in ([], ["--dry-run"]):
        r = cli(["ask", *extra, *args, "hi"])
        assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"evocli: error: {message}\n")
    assert api_env.requests == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("params: {temperature: .nan}\n", "params.temperature: NaN is not a JSON number"),
        ("params: {messages: [{role: user, content: x}]}\n",
         "params cannot set 'messages': they come from the prompt, the conversation file or the batch line"),
        ("params: {stream: false}\n", "params cannot set 'stream': use --stream / --no-stream"),
        ("timeout: .inf\n", "timeout: expected a positive number of seconds"),
        ("retry_max_time: .nan\n", "retry_max_time: expected a positive number of seconds"),
        ("model: a\nmodel: b\n", "2: duplicate key 'model'"),
        ('base_url: ""\n', "base_url: expected a URL, got an empty string"),
    ],
)
def test_config_values_that_cannot_be_used_are_78(
    cli: Cli, api_env: FakeServer, isolated: Path, text: str, problem: str
) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(text)
    sep = "" if problem[0].isdigit() else " "
    for extra in ([], ["--dry-run"]):
        r = cli(["ask", *extra, "hi"])
        assert (r.exit_code, r.stdout, r.stderr) == (78, "", f"evocli: error: config file {cfg}:{sep}{problem}\n")
    assert api_env.requests == []


def test_alias_bomb_in_the_config_file_is_78(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    levels = ["  l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]\n"]
    levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 10)]
    cfg.write_text("params:\n" + "".join(levels))
    for args in (["usage"], ["ask", "hi"]):  # usage first: before the guard, ask would never end
        r = cli(args)
        assert (r.exit_code, r.stdout, r.stderr) == (
            78, "", f"evocli: error: config file {cfg}: its aliases would expand it to 16,180,858,894 nodes and "
                    "characters, beyond the limit of 1,000,850: refused\n"
                    "hint: write the repeated text out, or use fewer nested aliases\n")
    assert api_env.requests == []


@pytest.mark.parametrize("flag", ["--timeout", "--connect-timeout", "--retry-max-time"])
def test_huge_timeouts_are_usage_errors(cli: Cli, api_env: FakeServer, flag: str) -> None:
    r = cli(["ask", flag, "1e12", "hi"])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"evocli: error: {flag} must be at most 604800 seconds (a week)\n")
    assert api_env.requests == []


def test_huge_timeout_in_config_is_78(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("connect_timeout: 1.0e+12\n")
    r = cli(["ask", "hi"])
    assert (r.exit_code, r.stderr) == (78, f"evocli: error: config file {cfg}: connect_timeout: at most 604800 seconds (a week)\n")


def test_prompt_argument_that_is_not_utf8_is_65_with_its_own_message(api_env: FakeServer) -> None:
    """Undecodable argument bytes reach Python as lone surrogates (byte 0xE9 here: Latin-1 é)."""
    for args, where in ((["caf\udce9"], "argument 1, byte 3"), (["fine", "h\u00e9llo \udcff"], "argument 2, byte 7")):
        r = run_evocli(["ask", *args])
        assert (r.returncode, r.stdout) == (65, "")
        assert r.stderr == (f"evocli: error: the prompt is not valid UTF-8 text ({where})\n"
                            "hint: evocli reads arguments as UTF-8: convert the text first (iconv -t UTF-8)\n")
    r = run_evocli(["ask", "--dry-run", "-s", "sys\udcff", "hi"])  # any other text: the body says why
    assert (r.returncode, r.stderr) == (65, "evocli: error: the request body cannot be sent: text holds "
                                            "'\\udcff', a lone surrogate that is not valid UTF-8\n")
    assert api_env.requests == []

