"""`evocli ask` and the answer contract (SPEC §8), in-process against the local server: --schema,
corrective turns, refusals, incomplete answers, -x/--extract-last, the gpt-5 controls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Run
from tests.server import DEFAULT_USAGE, FakeServer, Reply, completion_body, sse_event, stream_reply
from tests.test_ledger_write import records

Cli = Any
TICKET = "printer on fire"
CONCISE = "severity, summary"
# The strict form of CONCISE, as sent.
STRICT = {
    "type": "object",
    "properties": {"severity": {"type": "string"}, "summary": {"type": "string"}},
    "required": ["severity", "summary"],
    "additionalProperties": False,
}
VALID = '{ "severity": "high",\n  "summary": "Fire: é ☃" }'
NO_SUMMARY = '{"severity": "high"}'
CORRECTION = (
    "Your answer does not match the required JSON schema:\n"
    '- $: "summary" is a required property\n'
    "Reply with only the corrected JSON document."
)
RETRY_NOTICE = ('evocli: the answer does not match the schema: $: "summary" is a required property; '
                "asking for a correction (attempt 2 of 2)\n")


def answer(content: str | None, *, finish_reason: str = "stop", refusal: str | None = None,
           usage: dict[str, Any] | None = None) -> Reply:
    body = completion_body(content, finish_reason=finish_reason, usage=usage)
    if refusal is not None:
        body["choices"][0]["message"]["refusal"] = refusal
    return Reply(body=body)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def json_schema(schema: dict[str, Any], name: str = "answer", strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": strict, "schema": schema}}


# ---------------------------------------------------------------------------------------------
# The response_format sent, and the document printed.


def test_a_concise_schema_is_sent_strict_and_the_document_printed_compact(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer('{ "severity": "high",\n  "summary": "Fire: é ☃" }'))
    r: Run = cli(["ask", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"severity":"high","summary":"Fire: é ☃"}\n', "")
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [user(TICKET)], "response_format": json_schema(STRICT)}]


def test_an_inline_schema_gets_its_optional_properties_nullable(cli: Cli, api_env: FakeServer) -> None:
    given = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
             "required": ["name"]}
    api_env.script(answer('{"name": "Ada", "age": null}'))
    r = cli(["ask", "--schema", json.dumps(given), "who?"])
    # The document as the model gave it, nulls included.
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"name":"Ada","age":null}\n', "")
    assert api_env.bodies[0]["response_format"] == json_schema({
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": ["integer", "null"]}},
        "required": ["name", "age"],
        "additionalProperties": False,
    })


def test_schema_files_are_sent_under_their_stem(cli: Cli, api_env: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "ticket.schema.json").write_text(json.dumps(STRICT))
    (tmp_path / "person.yml").write_text("type: object\nproperties:\n  name: {type: string}\n")
    api_env.script(answer('{"severity": "low", "summary": "ok"}'), answer('{"name": null}'))
    r = cli(["ask", "--schema", str(tmp_path / "ticket.schema.json"), "x"])
    assert (r.exit_code, r.stdout) == (0, '{"severity":"low","summary":"ok"}\n')
    r = cli(["ask", "--schema", str(tmp_path / "person.yml"), "x"])
    assert (r.exit_code, r.stdout) == (0, '{"name":null}\n')
    assert [b["response_format"] for b in api_env.bodies] == [
        json_schema(STRICT, "ticket_schema"),
        json_schema({"type": "object", "properties": {"name": {"type": ["string", "null"]}},
                     "required": ["name"], "additionalProperties": False}, "person"),
    ]


def test_no_strict_and_multi(cli: Cli, api_env: FakeServer) -> None:
    open_schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    api_env.script(answer('{"b": "anything"}'), answer('{"items": [{"severity": "s", "summary": "t"}]}'))
    r = cli(["ask", "--no-strict", "--schema", json.dumps(open_schema), "x"])
    assert (r.exit_code, r.stdout) == (0, '{"b":"anything"}\n')
    r = cli(["ask", "--schema-multi", "--schema", CONCISE, "x"])
    assert (r.exit_code, r.stdout) == (0, '{"items":[{"severity":"s","summary":"t"}]}\n')
    assert [b["response_format"] for b in api_env.bodies] == [
        json_schema(open_schema, strict=False),
        json_schema({"type": "object", "properties": {"items": {"type": "array", "items": STRICT}},
                     "required": ["items"], "additionalProperties": False}),
    ]


def test_dry_run_shows_the_response_format(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "--dry-run", "--schema", CONCISE, "--effort", "low", "x"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout)["body"] == {
        "model": "gpt-5.2", "messages": [user("x")], "reasoning_effort": "low", "response_format": json_schema(STRICT)}
    assert api_env.requests == []


@pytest.mark.parametrize(
    ("schema", "code", "stderr"),
    [
        ("{not json", 2, "evocli: error: --schema: not valid JSON: Expecting property name enclosed in double "
                         "quotes (line 1, column 2)\n"),
        ("name strange", 2, "evocli: error: --schema: name: unknown type 'strange' (str, int, float, bool)\n"
                            "hint: a field is NAME [str|int|float|bool] [: description]; a schema file ends in .json or .yaml\n"),
        ("missing.json", 66, "evocli: error: cannot read the schema file missing.json: No such file or directory\n"),
        ('{"type": "object"}', 2, "evocli: error: --schema: strict mode needs every object closed; the object at $ "
                                  "lists no properties\nhint: fix the schema, or send it as it is with --no-strict\n"),
    ],
)
def test_a_bad_schema_is_refused_before_any_request(
    cli: Cli, api_env: FakeServer, schema: str, code: int, stderr: str
) -> None:
    for extra in ([], ["--dry-run"]):
        r = cli(["ask", *extra, "--schema", schema, "x"])
        assert (r.exit_code, r.stdout, r.stderr) == (code, "", stderr)
    assert api_env.requests == []


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["-x", "--schema", CONCISE], "evocli: error: -x/--extract cannot be combined with --schema\n"
                                      "hint: a schema's answer is a JSON document, not text with code blocks\n"),
        (["--extract-last", "--schema", CONCISE], "evocli: error: --extract-last cannot be combined with --schema\n"
                                                  "hint: a schema's answer is a JSON document, not text with code blocks\n"),
        (["-p", 'response_format={"type":"json_object"}', "--schema", CONCISE],
         "evocli: error: -p response_format cannot be combined with --schema, which is sent as the response_format\n"),
        (["--schema-multi"], "evocli: error: --schema-multi needs --schema\n"),
        (["--no-strict"], "evocli: error: --no-strict needs --schema\n"),
        (["--schema-retries", "0"], "evocli: error: --schema-retries needs --schema\n"),
    ],
)
def test_flags_that_cannot_go_together_are_usage_errors(
    cli: Cli, api_env: FakeServer, args: list[str], stderr: str
) -> None:
    r = cli(["ask", *args, "x"], input="piped")
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)
    assert api_env.requests == []


# ---------------------------------------------------------------------------------------------
# Corrective turns


def test_invalid_then_valid_is_two_requests_the_second_with_the_correction(
    cli: Cli, api_env: FakeServer, isolated: Path
) -> None:
    api_env.script(answer(NO_SUMMARY), answer(VALID))
    r = cli(["ask", "-s", "Classify.", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"severity":"high","summary":"Fire: é ☃"}\n', RETRY_NOTICE)
    first, second = api_env.bodies
    sent = [{"role": "system", "content": "Classify."}, user(TICKET)]
    assert first["messages"] == sent
    assert second == {
        "model": "gpt-5.2",
        "messages": [*sent, {"role": "assistant", "content": NO_SUMMARY}, user(CORRECTION)],
        "response_format": json_schema(STRICT),
    }
    assert [(rec["ok"], rec["exit_code"]) for rec in records(isolated / "ledger")] == [(False, 4), (True, 0)]


def test_invalid_twice_exits_4_with_nothing_on_stdout(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(answer(NO_SUMMARY), answer("not json at all"))
    r = cli(["ask", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout) == (4, "")
    assert r.stderr == RETRY_NOTICE + (
        "evocli: error: the answer does not match the schema: $: not valid JSON: Expecting value (line 1, column 1)\n"
        "hint: 2 attempts made: raise --schema-retries, or look at the answer with -o json\n")
    # Only the latest answer is corrected: the same messages, then that answer.
    assert [b["messages"] for b in api_env.bodies] == [
        [user(TICKET)], [user(TICKET), {"role": "assistant", "content": NO_SUMMARY}, user(CORRECTION)]]
    assert [(rec["ok"], rec["exit_code"]) for rec in records(isolated / "ledger")] == [(False, 4), (False, 4)]


def test_more_retries_correct_only_the_latest_answer(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer('{"severity": 1, "summary": "s"}'), answer(NO_SUMMARY), answer(VALID))
    r = cli(["ask", "-q", "--schema-retries", "3", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stderr) == (0, "")
    third = api_env.bodies[2]["messages"]
    assert third == [user(TICKET), {"role": "assistant", "content": NO_SUMMARY}, user(CORRECTION)]
    assert len(api_env.requests) == 3


def test_no_retries_fail_at_once_and_list_the_other_problems(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer('{"severity": 1, "summary": 2}'))
    r = cli(["ask", "--schema-retries", "0", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (4, "", (
        'evocli: error: the answer does not match the schema: $.severity: 1 is not of type "string"\n'
        "hint: 1 more problem; 1 attempt made: raise --schema-retries, or look at the answer with -o json\n"))
    assert len(api_env.requests) == 1


def test_json_output_prints_the_last_body(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer(NO_SUMMARY), answer(VALID))
    r = cli(["ask", "-q", "-o", "json", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout) == completion_body(VALID)
    api_env.script(answer(NO_SUMMARY), answer("{}"))
    r = cli(["ask", "-q", "-o", "json", "--schema", CONCISE, TICKET])
    assert r.exit_code == 4
    assert json.loads(r.stdout) == completion_body("{}")


def test_streamed_text_is_held_until_the_document_is_valid(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(stream_reply(['{"severity":', ' "high"}']), stream_reply(['{"severity": "high",', ' "summary": "s"}']))
    r = cli(["ask", "--stream", "-u", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout) == (0, '{"severity":"high","summary":"s"}\n')
    assert r.stderr == RETRY_NOTICE + (
        "usage: prompt_tokens=12 completion_tokens=7 reasoning_tokens=3 cached_tokens=2 image_tokens=0 total_tokens=19\n")
    assert [b["stream"] for b in api_env.bodies] == [True, True]
    api_env.script(stream_reply(['{"severity":', ' "high"}']), stream_reply(["{}"]))
    r = cli(["ask", "-q", "--stream", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout) == (4, "")


def test_jsonl_streams_every_attempt(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(stream_reply(['{"severity":', ' "high"}']), stream_reply(['{"severity": "high", "summary": "s"}']))
    r = cli(["ask", "-q", "-o", "jsonl", "--schema", CONCISE, TICKET])
    done = {"type": "done", "id": "chatcmpl-test-1", "model": "gpt-5.2", "finish_reason": "stop", "usage": DEFAULT_USAGE}
    assert (r.exit_code, r.stderr) == (0, "")
    assert [json.loads(line) for line in r.stdout.splitlines()] == [
        {"type": "delta", "content": '{"severity":'},
        {"type": "delta", "content": ' "high"}'},
        done,
        {"type": "delta", "content": '{"severity": "high", "summary": "s"}'},
        done,
    ]


# ---------------------------------------------------------------------------------------------
# Refusals (exit 4 at once) and incomplete answers (exit 3)


@pytest.mark.parametrize("args", [["--schema", CONCISE], []], ids=["schema", "plain"])
def test_a_refusal_exits_4_after_one_request(cli: Cli, api_env: FakeServer, isolated: Path, args: list[str]) -> None:
    api_env.script(answer(None, refusal="I can't help\nwith that."))
    r = cli(["ask", *args, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (4, "", "evocli: error: the model refused: I can't help with that.\n")
    assert len(api_env.requests) == 1
    assert [(rec["ok"], rec["exit_code"]) for rec in records(isolated / "ledger")] == [(False, 4)]


def test_a_streamed_refusal_exits_4(cli: Cli, api_env: FakeServer) -> None:
    chunks = [sse_event({"id": "c", "model": "gpt-5.2", "choices": [{"index": 0, "delta": {"refusal": "No"}}]}),
              sse_event({"id": "c", "model": "gpt-5.2", "choices": [{"index": 0, "delta": {"refusal": " way."},
                                                                      "finish_reason": "stop"}]}),
              sse_event("[DONE]")]
    api_env.script(Reply(chunks=chunks))
    r = cli(["ask", "--stream", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (4, "", "evocli: error: the model refused: No way.\n")


CUT = ("evocli: error: the answer was cut off at the token limit (finish_reason length)\n"
       "hint: raise --max-tokens, or lower --effort so fewer tokens go to reasoning\n")
EMPTY = ("evocli: error: the answer has no text (1,024 reasoning tokens)\n"
         "hint: raise --max-tokens or lower --effort, then try again\n")
SPENT = {**DEFAULT_USAGE, "completion_tokens_details": {"reasoning_tokens": 1024}}


def test_a_cut_answer_exits_3_after_its_text(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(answer("The first half", finish_reason="length"))
    r = cli(["ask", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "The first half\n", CUT)
    assert [(rec["ok"], rec["exit_code"], rec["finish_reason"]) for rec in records(isolated / "ledger")] == [
        (False, 3, "length")]


def test_a_streamed_cut_answer_exits_3_after_its_text(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(stream_reply(["The first", " half"], finish_reason="length"))
    r = cli(["ask", "--stream", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "The first half\n", CUT)


@pytest.mark.parametrize("content", ["", None])
def test_an_empty_answer_exits_3_naming_its_reasoning_tokens(cli: Cli, api_env: FakeServer, content: str | None) -> None:
    api_env.script(answer(content, usage=SPENT))
    r = cli(["ask", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "", EMPTY)


def test_an_empty_answer_at_the_limit_says_so(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer("", finish_reason="length", usage=SPENT))
    r = cli(["ask", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "", (
        "evocli: error: the answer has no text: it reached the token limit after 1,024 reasoning tokens "
        "(finish_reason length)\nhint: raise --max-tokens, or lower --effort so fewer tokens go to reasoning\n"))


def test_incomplete_answers_are_not_corrected_and_print_no_document(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer('{"severity": "hi', finish_reason="length"))
    r = cli(["ask", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "", CUT)
    assert len(api_env.requests) == 1


def test_allow_incomplete_exits_0_with_the_warning(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    api_env.script(answer("The first half", finish_reason="length"), answer(None, usage=SPENT))
    r = cli(["ask", "--allow-incomplete", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "The first half\n", (
        "evocli: warning: the answer was cut off at the token limit (finish_reason length)\n"))
    r = cli(["ask", "--allow-incomplete", "-q", TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "\n", "")
    assert [(rec["ok"], rec["exit_code"]) for rec in records(isolated / "ledger")] == [(True, 0), (True, 0)]


def test_allow_incomplete_still_checks_the_schema(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer('{"severity": "high", "summary": "s"}', finish_reason="content_filter"))
    r = cli(["ask", "--allow-incomplete", "--schema", CONCISE, TICKET])
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"severity":"high","summary":"s"}\n', (
        "evocli: warning: the content filter stopped the answer (finish_reason content_filter)\n"))


# ---------------------------------------------------------------------------------------------
# -x/--extract and --extract-last

SEVERAL = (
    "Two ways:\n\n"
    "```python title=\"a.py\" {1,3}\n"
    "print('first')\n"
    "```\n\n"
    "and\n\n"
    "~~~~ sh  \n"
    "echo last\n"
    "```\n"
    "still inside\n"
    "~~~~~\n"
    "Done."
)


def test_extract_prints_the_first_or_last_block(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer(SEVERAL), answer(SEVERAL))
    r = cli(["ask", "-x", "code?"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "print('first')\n", "")
    r = cli(["ask", "--extract-last", "code?"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "echo last\n```\nstill inside\n", "")


def test_extract_an_unclosed_block_and_a_streamed_answer(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer("Here:\n````\nline one\n\n"), stream_reply(["```js\nconst a", " = 1\n```\nbye"]))
    r = cli(["ask", "--extract", "code?"])
    assert (r.exit_code, r.stdout) == (0, "line one\n")
    r = cli(["ask", "--stream", "-x", "code?"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "const a = 1\n", "")


@pytest.mark.parametrize(("flag", "option"), [("-x", "-x/--extract"), ("--extract-last", "--extract-last")])
def test_no_block_exits_4(cli: Cli, api_env: FakeServer, flag: str, option: str) -> None:
    api_env.script(answer("Just prose, and ``inline`` code."))
    r = cli(["ask", flag, "code?"])
    assert (r.exit_code, r.stdout, r.stderr) == (4, "", (
        f"evocli: error: the answer has no fenced code block for {option}\n"
        "hint: run without it to see the whole answer, or ask for the code in a ``` block\n"))


def test_extract_of_a_cut_answer_prints_the_cut_block_and_exits_3(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer("```sh\necho a\necho", finish_reason="length"))
    r = cli(["ask", "-x", "code?"])
    assert (r.exit_code, r.stdout, r.stderr) == (3, "echo a\necho\n", CUT)


def test_extract_with_json_output_prints_the_body_and_still_checks(cli: Cli, api_env: FakeServer) -> None:
    api_env.script(answer("no block"))
    r = cli(["ask", "-x", "-o", "json", "code?"])
    assert r.exit_code == 4
    assert json.loads(r.stdout) == completion_body("no block")


# ---------------------------------------------------------------------------------------------
# gpt-5 controls


def test_controls_are_sent_and_win_over_p(cli: Cli, api_env: FakeServer) -> None:
    r = cli(["ask", "-p", "reasoning_effort=high", "-p", "seed=1", "--effort", "none", "--verbosity", "LOW",
             "--seed", "-7", "x"])
    assert r.exit_code == 0
    assert api_env.bodies[0] == {"model": "gpt-5.2", "messages": [user("x")], "reasoning_effort": "none",
                                 "seed": -7, "verbosity": "low"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--effort", "minimal"], "invalid value for '--effort': 'minimal' is not one of 'none', 'low', 'medium', "
                                  "'high', 'xhigh'\nhint: 'evocli ask -h' lists the options"),
        (["--verbosity", "loud"], "invalid value for '--verbosity': 'loud' is not one of 'low', 'medium', 'high'\n"
                                  "hint: 'evocli ask -h' lists the options"),
        (["--seed", "7.5"], "invalid value for '--seed': '7.5' is not a valid int\n"
                            "hint: 'evocli ask -h' lists the options"),
        (["-p", "reasoning_effort=minimal"], "-p 'reasoning_effort=minimal': reasoning_effort must be one of none, "
                                             'low, medium, high, xhigh, not "minimal" (gpt-5.2 rejects minimal)'),
        (["-p", "verbosity=2"], "-p 'verbosity=2': verbosity must be one of low, medium, high, not 2"),
        (["-p", 'seed="7"'], "-p 'seed=\"7\"': seed must be an integer, not \"7\""),
    ],
)
def test_bad_controls_exit_2_with_no_request(cli: Cli, api_env: FakeServer, args: list[str], message: str) -> None:
    for extra in ([], ["--dry-run"]):
        r = cli(["ask", *extra, *args, "x"])
        assert (r.exit_code, r.stdout, r.stderr) == (2, "", f"evocli: error: {message}\n")
    assert api_env.requests == []


def test_bad_controls_in_the_config_file_exit_78(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("params: {verbosity: low, reasoning_effort: minimal}\n")
    r = cli(["ask", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (78, "", (
        f"evocli: error: config file {cfg}: params.reasoning_effort must be one of none, low, medium, high, xhigh, "
        'not "minimal" (gpt-5.2 rejects minimal)\n'))
    assert api_env.requests == []


# ---------------------------------------------------------------------------------------------
# The README's examples are what evocli really says.

README = (REPO / "README.md").read_text()
TRIAGE = {"type": "object",
          "properties": {"severity": {"enum": ["low", "medium", "high"]}, "summary": {"type": "string"}},
          "required": ["severity", "summary"]}


def test_the_readme_shows_the_real_corrections_and_failures(cli: Cli, api_env: FakeServer) -> None:
    assert f"```text\n{CORRECTION}\n```\n" in README
    api_env.script(answer(NO_SUMMARY), answer('{"severity": "urgent", "summary": "s"}'),
                   answer("half", finish_reason="length"))
    r = cli(["ask", "--schema", json.dumps(TRIAGE), TICKET])
    assert r.exit_code == 4
    assert f"```text\n{r.stderr}```\n" in README
    assert api_env.bodies[1]["messages"][-1] == user(CORRECTION)
    r = cli(["ask", TICKET])
    assert r.exit_code == 3
    assert f"```text\n{r.stderr}```\n" in README
    readme_schema = README.split("cat > triage.schema.json <<'END'\n", 1)[1].split("END\n", 1)[0]
    assert json.loads(readme_schema) == TRIAGE
