"""The answer contract (SPEC §8) in conversation files and batch lines, in-process against the local
server: `schema:` and a line's `schema`, records with `data`, exit 3 and 4 lines, the controls as
params keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.server import DEFAULT_USAGE, FakeServer
from tests.test_cli_schema import CONCISE, CORRECTION, NO_SUMMARY, STRICT, answer, json_schema, user
from tests.test_ledger_write import records

Cli = Any
DOC = {"severity": "high", "summary": "fire"}
VALID = json.dumps(DOC)


@pytest.fixture
def convs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of conversation files, and a working folder elsewhere (files are named from there)."""
    folder = tmp_path / "convs"
    folder.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


# ---------------------------------------------------------------------------------------------
# chat-file


def test_a_conversation_schema_file_is_read_from_the_files_folder(cli: Cli, api_env: FakeServer, convs: Path) -> None:
    (convs / "ticket.json").write_text(json.dumps(STRICT))
    (convs / "triage.yaml").write_text("schema: ticket.json\nmessages:\n  - {role: user, content: classify}\n")
    api_env.script(answer(VALID))
    r = cli(["chat-file", "../convs/triage.yaml"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"severity":"high","summary":"fire"}\n', "")
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [user("classify")],
                               "response_format": json_schema(STRICT, "ticket")}]


def test_a_conversation_schema_inline_and_concise(cli: Cli, api_env: FakeServer, convs: Path) -> None:
    (convs / "a.yaml").write_text("schema: {type: object, properties: {n: {type: integer}}, required: [n]}\n"
                                  "messages: [{role: user, content: count}]\n")
    (convs / "b.yaml").write_text("schema: |\n  severity\n  summary: one line, no more\n"
                                  "messages: [{role: user, content: classify}]\n")
    api_env.script(answer('{"n": 3}'), answer(VALID))
    assert cli(["chat-file", str(convs / "a.yaml")]).stdout == '{"n":3}\n'
    assert cli(["chat-file", str(convs / "b.yaml")]).stdout == '{"severity":"high","summary":"fire"}\n'
    assert [b["response_format"]["json_schema"]["schema"] for b in api_env.bodies] == [
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False},
        {"type": "object", "properties": {"severity": {"type": "string"},
                                          "summary": {"type": "string", "description": "one line, no more"}},
         "required": ["severity", "summary"], "additionalProperties": False},
    ]


def test_the_schema_flag_wins_over_the_files_which_is_not_read(cli: Cli, api_env: FakeServer, convs: Path) -> None:
    (convs / "c.yaml").write_text("schema: gone.json\nmessages: [{role: user, content: x}]\n")
    api_env.script(answer('{"n": "one"}'))
    r = cli(["chat-file", "--schema", "n", str(convs / "c.yaml")])
    assert (r.exit_code, r.stdout) == (0, '{"n":"one"}\n')
    assert api_env.bodies[0]["response_format"]["json_schema"]["schema"]["properties"] == {"n": {"type": "string"}}


@pytest.mark.parametrize(
    ("text", "args", "code", "stderr"),
    [
        ("messages: [{role: user, content: x}]\nschema: gone.json\n", [], 66,
         "evocli: error: cannot read the schema file gone.json: No such file or directory\n"),
        ("messages: [{role: user, content: x}]\nschema: [a, b]\n", [], 65,
         "evocli: error: c.yaml:2: schema: a schema is a JSON object, a file name or the concise form\n"),
        ("messages: [{role: user, content: x}]\nschema: 'a bool int'\n", [], 65,
         "evocli: error: c.yaml:2: schema: 'a bool int' is not a field (NAME [TYPE] [: description])\n"
         "hint: a field is NAME [str|int|float|bool] [: description]; a schema file ends in .json or .yaml\n"),
        ("schema: n\nparams: {response_format: {type: json_object}}\nmessages: [{role: user, content: x}]\n", [],
         65, "evocli: error: c.yaml:1: schema: cannot be combined with params.response_format, as the schema is "
             "sent as the response_format\n"),
        ("schema: n\nmessages: [{role: user, content: x}]\n", ["-x"], 2,
         "evocli: error: -x/--extract cannot be combined with the schema of c.yaml\n"
         "hint: a schema's answer is a JSON document, not text with code blocks\n"),
        ("messages: [{role: user, content: x}]\n", ["--schema-multi"], 2,
         "evocli: error: --schema-multi needs --schema, or a schema: in c.yaml\n"),
        ("params:\n  seed: 1\n  reasoning_effort: max\nmessages: [{role: user, content: x}]\n", [], 65,
         "evocli: error: c.yaml:3: params.reasoning_effort must be one of none, low, medium, high, xhigh, "
         'not "max"\n'),
    ],
)
def test_conversation_schema_problems_before_any_request(
    cli: Cli, api_env: FakeServer, convs: Path, monkeypatch: pytest.MonkeyPatch,
    text: str, args: list[str], code: int, stderr: str,
) -> None:
    monkeypatch.chdir(convs)
    (convs / "c.yaml").write_text(text)
    for extra in ([], ["--dry-run"]):
        r = cli(["chat-file", *extra, *args, "c.yaml"])
        assert (r.exit_code, r.stdout, r.stderr) == (code, "", stderr)
    assert api_env.requests == []


def test_append_saves_the_corrected_answer_only_after_success(cli: Cli, api_env: FakeServer, convs: Path) -> None:
    conv = convs / "log.yaml"
    original = f"schema: '{CONCISE}'\nmessages:\n  - role: user\n    content: first\n"
    conv.write_text(original)
    api_env.script(answer(NO_SUMMARY), answer("{}"))
    r = cli(["chat-file", "-q", "--append", str(conv)], input="second")
    assert (r.exit_code, r.stdout) == (4, "")
    assert conv.read_text() == original
    api_env.script(answer(NO_SUMMARY), answer(VALID))
    r = cli(["chat-file", "-q", "--append", str(conv)], input="second")
    assert (r.exit_code, r.stdout, r.stderr) == (0, '{"severity":"high","summary":"fire"}\n', "")
    assert api_env.bodies[-1]["messages"] == [
        user("first"), user("second"), {"role": "assistant", "content": NO_SUMMARY}, user(CORRECTION)]
    assert conv.read_text() == original + (
        "  - role: user\n    content: second\n"
        '  - role: assistant\n    content: \'{"severity": "high", "summary": "fire"}\'\n')


# ---------------------------------------------------------------------------------------------
# batch


def results(r: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.stdout.splitlines()]


def ok(id: Any, content: str, **data: Any) -> dict[str, Any]:
    return {"id": id, "ok": True, "content": content, **data, "finish_reason": "stop", "model": "gpt-5.2",
            "usage": DEFAULT_USAGE}


def test_batch_records_carry_data_and_a_lines_schema_wins(
    cli: Cli, api_env: FakeServer, tmp_path: Path, isolated: Path
) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "label.yaml").write_text("type: object\nproperties: {label: {type: string}}\nrequired: [label]\n")
    src = folder / "in.jsonl"
    src.write_text("\n".join([
        json.dumps("printer on fire"),
        json.dumps({"id": "own", "prompt": "tag it", "schema": "label.yaml"}),
        json.dumps({"prompt": "no match"}),
    ]) + "\n")
    api_env.script(answer(VALID), answer('{"label": "x"}'), answer(NO_SUMMARY), answer(VALID))
    r = cli(["batch", str(src), "-c", "1", "--schema", CONCISE, "--effort", "low"])
    assert (r.exit_code, r.stderr) == (0, 'evocli: line 3: the answer does not match the schema: $: "summary" is a '
                                          "required property; asking for a correction (attempt 2 of 2)\n")
    assert results(r) == [ok(1, VALID, data=DOC), ok("own", '{"label": "x"}', data={"label": "x"}), ok(3, VALID, data=DOC)]
    label = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"],
             "additionalProperties": False}
    assert [(b["messages"], b["reasoning_effort"], b["response_format"]) for b in api_env.bodies] == [
        ([user("printer on fire")], "low", json_schema(STRICT)),
        ([user("tag it")], "low", json_schema(label, "label")),
        ([user("no match")], "low", json_schema(STRICT)),
        ([user("no match"), {"role": "assistant", "content": NO_SUMMARY}, user(CORRECTION)], "low",
         json_schema(STRICT)),
    ]
    assert [(rec["command"], rec["exit_code"]) for rec in records(isolated / "ledger")] == [
        ("batch", 0), ("batch", 0), ("batch", 4), ("batch", 0)]


def test_batch_failed_answers_are_exit_3_and_4_records(cli: Cli, api_env: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in ["cut", "refused", "wrong", "plain"]))
    api_env.script(answer('{"severity": "hi', finish_reason="length"), answer(None, refusal="No."),
                   answer("{}"), answer(NO_SUMMARY))
    r = cli(["batch", str(src), "-c", "1", "--schema", CONCISE, "--schema-retries", "0"])
    assert r.exit_code == 3
    assert r.stderr == "evocli: error: 4 of 4 failed\n"
    assert results(r) == [
        {"id": 1, "ok": False, "exit_code": 3,
         "error": "the answer was cut off at the token limit (finish_reason length)",
         "content": '{"severity": "hi', "finish_reason": "length"},
        {"id": 2, "ok": False, "exit_code": 4, "error": "the model refused: No."},
        {"id": 3, "ok": False, "exit_code": 4,
         "error": 'the answer does not match the schema: $: "severity" is a required property'},
        {"id": 4, "ok": False, "exit_code": 4,
         "error": 'the answer does not match the schema: $: "summary" is a required property'},
    ]
    assert len(api_env.requests) == 4


def test_batch_resume_sends_incomplete_lines_again(cli: Cli, api_env: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n"b"\n')
    out = tmp_path / "out.jsonl"
    api_env.script(answer("A"), answer("half", finish_reason="length"))
    assert cli(["batch", str(src), "-c", "1", "--out", str(out)]).exit_code == 3
    api_env.script(answer("B"))
    r = cli(["batch", str(src), "-c", "1", "--out", str(out), "--resume"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert [json.loads(x) for x in out.read_text().splitlines()] == [ok(1, "A"), ok(2, "B")]
    assert [b["messages"] for b in api_env.bodies] == [[user("a")], [user("b")], [user("b")]]


def test_batch_allow_incomplete_keeps_the_line_with_a_warning(cli: Cli, api_env: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    api_env.script(answer("half", finish_reason="length"))
    r = cli(["batch", str(src), "--allow-incomplete"])
    assert (r.exit_code, r.stderr) == (0, "evocli: warning: line 1: the answer was cut off at the token limit "
                                          "(finish_reason length)\n")
    assert results(r) == [{**ok(1, "half"), "finish_reason": "length"}]


def test_batch_multi_and_no_strict_act_on_line_schemas(cli: Cli, api_env: FakeServer, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"prompt": "list", "schema": {"type": "object", "properties": {"n": {}}}}) + "\n")
    api_env.script(answer('{"items": [{"n": 1, "extra": true}]}'))
    r = cli(["batch", str(src), "--schema-multi", "--no-strict"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert results(r) == [ok(1, '{"items": [{"n": 1, "extra": true}]}', data={"items": [{"n": 1, "extra": True}]})]
    assert api_env.bodies[0]["response_format"] == json_schema(
        {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"n": {}}}}},
         "required": ["items"]}, strict=False)


def test_batch_bad_line_schemas_and_controls_are_that_lines_record(
    cli: Cli, api_env: FakeServer, tmp_path: Path
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(line) for line in [
        {"prompt": "a", "schema": "gone.json"},
        {"prompt": "b", "schema": "name oops"},
        {"prompt": "c", "schema": {"type": "object"}},
        {"prompt": "d", "schema": "n", "params": {"response_format": {"type": "json_object"}}},
        {"prompt": "e", "params": {"verbosity": "loud"}},
        "fine",
    ]) + "\n")
    api_env.script(answer("ok"))
    r = cli(["batch", str(src), "-c", "1"])
    assert r.exit_code == 66
    assert results(r) == [
        {"id": 1, "ok": False, "exit_code": 66, "error": "line 1: cannot read the schema file gone.json: "
                                                         "No such file or directory"},
        {"id": 2, "ok": False, "exit_code": 65, "error": "line 2: schema: name: unknown type 'oops' (str, int, float, bool)"},
        {"id": 3, "ok": False, "exit_code": 65, "error": "line 3: schema: strict mode needs every object closed; "
                                                         "the object at $ lists no properties"},
        {"id": 4, "ok": False, "exit_code": 65, "error": "line 4: schema cannot be combined with "
                                                         "params.response_format, as the schema is sent as the response_format"},
        {"id": 5, "ok": False, "exit_code": 65, "error": 'line 5: params.verbosity must be one of low, medium, high, not "loud"'},
        ok(6, "ok"),
    ]
    assert [b["messages"] for b in api_env.bodies] == [[user("fine")]]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--effort", "minimal"], "evocli: error: invalid value for '--effort': 'minimal' is not one of 'none', "
                                  "'low', 'medium', 'high', 'xhigh'\nhint: 'evocli batch -h' lists the options\n"),
        (["--schema", "n", "-p", "response_format={}"], "evocli: error: -p response_format cannot be combined with "
                                                        "--schema, which is sent as the response_format\n"),
        (["--schema", "n bogus"], "evocli: error: --schema: n: unknown type 'bogus' (str, int, float, bool)\n"
                             "hint: a field is NAME [str|int|float|bool] [: description]; a schema file ends in "
                             ".json or .yaml\n"),
    ],
)
def test_batch_flag_problems_exit_2_before_any_line(
    cli: Cli, api_env: FakeServer, tmp_path: Path, args: list[str], stderr: str
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"a"\n')
    r = cli(["batch", str(src), *args])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)
    assert api_env.requests == []
