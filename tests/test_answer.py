"""The answer contract: corrective turns, code blocks, incomplete answers, refusals, gpt-5 controls, and lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from evocli.answer import (
    Contract,
    Incomplete,
    Judgement,
    code_blocks,
    compact,
    corrective_turns,
    extract_block,
    incomplete,
    judge,
    no_block_error,
    refusal,
    schema_failure,
)
from evocli.body import control_problem, param_problem, parse_params
from evocli.client import Completion, StreamAssembler, parse_completion
from evocli.errors import ExitCode, IncompleteError, RejectedError, UsageError
from evocli.schema import Loaded, from_option, prepare
from tests.conftest import KEY, REPO, child_env
from tests.server import FakeServer, Reply, completion_body


def test_compact_is_one_line_without_escapes() -> None:
    assert compact({"a": "é ☃", "b": [1, 2.5, None, True], "c": {}}) == '{"a":"é ☃","b":[1,2.5,null,true],"c":{}}'


def test_corrective_turns() -> None:
    assert corrective_turns('{"age": "3"}', ['$.age: "3" is not of type "integer"', '$: "name" is a required property']) == [
        {"role": "assistant", "content": '{"age": "3"}'},
        {
            "role": "user",
            "content": "Your answer does not match the required JSON schema:\n"
            '- $.age: "3" is not of type "integer"\n'
            '- $: "name" is a required property\n'
            "Reply with only the corrected JSON document.",
        },
    ]


def test_corrective_turns_list_at_most_five_issues() -> None:
    turns = corrective_turns("x", [f"$[{i}]: bad" for i in range(7)])
    assert turns[1]["content"] == (
        "Your answer does not match the required JSON schema:\n"
        "- $[0]: bad\n- $[1]: bad\n- $[2]: bad\n- $[3]: bad\n- $[4]: bad\n- and 2 more\n"
        "Reply with only the corrected JSON document."
    )


@pytest.mark.parametrize(
    ("issues", "attempts", "hint"),
    [
        (["$.a: bad"], 1, "1 attempt made: raise --schema-retries, or look at the answer with -o json"),
        (["$.a: bad", "$.b: bad"], 2, "1 more problem; 2 attempts made: raise --schema-retries, or look at the answer with -o json"),
        (["$.a: bad", "$.b: bad", "$.c: bad"], 3, "2 more problems; 3 attempts made: raise --schema-retries, or look at the answer with -o json"),
    ],
)
def test_schema_failure(issues: list[str], attempts: int, hint: str) -> None:
    error = schema_failure(issues, attempts)
    assert (type(error), error.code, error.message, error.hint) == (
        RejectedError,
        ExitCode.REJECTED,
        "the answer does not match the schema: $.a: bad",
        hint,
    )


# ---------------------------------------------------------------------------------------------
# Fenced code blocks

SEVERAL = """Here you go:

```python
print("first")
```

Then:

~~~ sh
echo second
~~~
And finally ```inline``` text, and
````markdown title="x.md"
```js
inner
```
````
"""


def test_first_and_last_of_several_blocks() -> None:
    assert code_blocks(SEVERAL) == ['print("first")', "echo second", "```js\ninner\n```"]
    assert extract_block(SEVERAL) == 'print("first")'
    assert extract_block(SEVERAL, last=True) == "```js\ninner\n```"


@pytest.mark.parametrize(
    ("answer", "blocks"),
    [
        ("```c++\nint x;\n```", ["int x;"]),
        ('``` python title="a.py" {.numberLines}\nx = 1\n```', ["x = 1"]),
        ("~~~ `odd` info ~~~\nok\n~~~", ["ok"]),
        ("```\n\n```", [""]),
        ("```\n```", [""]),
        ("~~~~\n```\nstill inside\n~~~\n~~~~~  \nafter", ["```\nstill inside\n~~~"]),
        ("```\nnot closed by ``` python\n```python\n```", ["not closed by ``` python\n```python"]),
        ("```sh\nrm -rf build\n", ["rm -rf build"]),
        ("```sh\nrm -rf build", ["rm -rf build"]),
        ("text\n```", [""]),
        ("```sh\r\na\r\n\r\nb\r\n```\r\n", ["a\n\nb"]),
        ("```\n  two spaces kept\n\ttab kept\n```", ["  two spaces kept\n\ttab kept"]),
        ("1. Install:\n\n   ```sh\n   pip install x\n     --pre\n  y\n   ```\n2. Run", ["pip install x\n  --pre\ny"]),
        ("      ```\n      deep\n      ```", ["deep"]),
        ("``x``\n```x``` is inline code\n`` ` ``\nUse ```x``` here", []),
        ("no block here", []),
        ("", []),
    ],
)
def test_code_blocks(answer: str, blocks: list[str]) -> None:
    assert code_blocks(answer) == blocks
    assert extract_block(answer) == (blocks[0] if blocks else None)
    assert extract_block(answer, last=True) == (blocks[-1] if blocks else None)


def test_no_block_is_exit_4() -> None:
    for last, option in ((False, "-x/--extract"), (True, "--extract-last")):
        error = no_block_error(last=last)
        assert (error.code, error.message, error.hint) == (
            ExitCode.REJECTED,
            f"the answer has no fenced code block for {option}",
            "run without it to see the whole answer, or ask for the code in a ``` block",
        )


# ---------------------------------------------------------------------------------------------
# Incomplete answers and refusals


def answer(content: str = "", finish: str | None = "stop", reasoning: int | None = None, **more: Any) -> Completion:
    usage = None if reasoning is None else {"completion_tokens_details": {"reasoning_tokens": reasoning}}
    return Completion(content, finish, usage, "id-1", "gpt-5.2", **more)


LENGTH_HINT = "raise --max-tokens, or lower --effort so fewer tokens go to reasoning"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (answer("Hi."), None),
        (answer("Hi.", finish=None), None),
        (answer("", finish="tool_calls", tool_calls=True), None),
        (answer("", tool_calls=True), None),
        (answer("", refusal="I can't."), None),
        (answer("Hi.", finish="length"), Incomplete("length", "the answer was cut off at the token limit (finish_reason length)", LENGTH_HINT)),
        (
            answer("", finish="length", reasoning=1024),
            Incomplete("length", "the answer has no text: it reached the token limit after 1,024 reasoning tokens (finish_reason length)", LENGTH_HINT),
        ),
        (
            answer("Partial", finish="content_filter"),
            Incomplete(
                "content_filter",
                "the content filter stopped the answer (finish_reason content_filter)",
                "rephrase the request; --allow-incomplete accepts what arrived",
            ),
        ),
        (
            answer("Hi.", finish="insufficient_system_resource"),
            Incomplete(
                "insufficient_system_resource",
                "the answer did not finish normally (finish_reason insufficient_system_resource)",
                "--allow-incomplete accepts what arrived",
            ),
        ),
        (answer(""), Incomplete("empty", "the answer has no text (0 reasoning tokens)", "raise --max-tokens or lower --effort, then try again")),
        (answer("", reasoning=1), Incomplete("empty", "the answer has no text (1 reasoning token)", "raise --max-tokens or lower --effort, then try again")),
        (answer("", refusal="  "), Incomplete("empty", "the answer has no text (0 reasoning tokens)", "raise --max-tokens or lower --effort, then try again")),
    ],
)
def test_incomplete(completion: Completion, expected: Incomplete | None) -> None:
    assert incomplete(completion) == expected


def test_incomplete_is_exit_3() -> None:
    found = incomplete(answer(finish="length", reasoning=5))
    assert found is not None
    error = found.error()
    assert (type(error), error.code, error.message, error.hint) == (
        IncompleteError,
        ExitCode.INCOMPLETE,
        "the answer has no text: it reached the token limit after 5 reasoning tokens (finish_reason length)",
        LENGTH_HINT,
    )


def test_a_refusal_is_exit_4_quoted_on_one_line() -> None:
    error = refusal(answer("", refusal="I can't help\n  with that."))
    assert error is not None
    assert (error.code, error.message, error.hint) == (ExitCode.REJECTED, "the model refused: I can't help with that.", None)
    assert refusal(answer("fine")) is None
    assert refusal(answer("fine", refusal=" \n")) is None


def test_completions_carry_refusal_and_tool_calls() -> None:
    def body(message: dict[str, Any]) -> bytes:
        return json.dumps({"choices": [{"message": {"role": "assistant", **message}, "finish_reason": "stop"}]}).encode()

    plain = parse_completion(body({"content": "Hi"}))
    assert (plain.refusal, plain.tool_calls) == (None, False)
    refused = parse_completion(body({"content": None, "refusal": "No."}))
    assert (refused.content, refused.refusal, refused.tool_calls) == ("", "No.", False)
    called = parse_completion(body({"content": None, "tool_calls": [{"id": "c1", "type": "function"}]}))
    assert (called.refusal, called.tool_calls) == (None, True)
    legacy = parse_completion(body({"content": None, "function_call": {"name": "f"}, "refusal": ""}))
    assert (legacy.refusal, legacy.tool_calls) == (None, True)


def test_streams_assemble_refusal_and_tool_calls() -> None:
    stream = StreamAssembler()
    pieces = [
        {"choices": [{"delta": {"role": "assistant", "content": None, "refusal": None}}]},
        {"choices": [{"delta": {"refusal": "I can't "}}]},
        {"choices": [{"delta": {"refusal": "do that."}}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
    ]
    assert [stream.add(json.dumps(p)) for p in pieces] == ["", "", "", ""]
    done = stream.result()
    assert (done.content, done.refusal, done.tool_calls) == ("", "I can't do that.", False)

    tools = StreamAssembler()
    tools.add(json.dumps({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1"}]}}]}))
    tools.add(json.dumps({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}))
    assert (tools.result().refusal, tools.result().tool_calls) == (None, True)


# ---------------------------------------------------------------------------------------------
# gpt-5 controls


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("reasoning_effort", "xhigh", None),
        ("reasoning_effort", "none", None),
        (
            "reasoning_effort",
            "minimal",
            'reasoning_effort must be one of none, low, medium, high, xhigh, not "minimal" (gpt-5.2 rejects minimal)',
        ),
        ("reasoning_effort", "High", 'reasoning_effort must be one of none, low, medium, high, xhigh, not "High"'),
        ("reasoning_effort", None, "reasoning_effort must be one of none, low, medium, high, xhigh, not null"),
        ("verbosity", "low", None),
        ("verbosity", "xhigh", 'verbosity must be one of low, medium, high, not "xhigh"'),
        ("verbosity", ["low"], 'verbosity must be one of low, medium, high, not ["low"]'),
        ("seed", 7, None),
        ("seed", -(2**70), None),
        ("seed", True, "seed must be an integer, not true"),
        ("seed", 7.0, "seed must be an integer, not 7.0"),
        ("seed", "7", 'seed must be an integer, not "7"'),
        ("temperature", "hot", None),
    ],
)
def test_control_problem(key: str, value: Any, problem: str | None) -> None:
    assert control_problem(key, value) == problem


def test_the_controls_are_one_rule_for_every_settings_layer() -> None:
    assert param_problem("seed", "7") == 'params.seed must be an integer, not "7"'
    assert param_problem("reasoning_effort", "minimal") == (
        'params.reasoning_effort must be one of none, low, medium, high, xhigh, not "minimal" (gpt-5.2 rejects minimal)')
    assert param_problem("verbosity", "high") is None
    assert parse_params(["seed=7", "verbosity=low", "reasoning_effort=xhigh"]) == {
        "seed": 7, "verbosity": "low", "reasoning_effort": "xhigh"}
    with pytest.raises(UsageError) as exc:
        parse_params(["seed=seven"])
    assert exc.value.message == "-p 'seed=seven': seed must be an integer, not \"seven\""


# ---------------------------------------------------------------------------------------------
# The verdict: refusal, then incomplete, then the schema or the block

NAME = prepare(from_option("name", open))
FENCED = "See:\n```sh\necho one\n```\n~~~\necho two\n~~~\n"


def test_a_refusal_comes_first() -> None:
    verdict = judge(Contract(NAME, allow_incomplete=True), answer("", finish="length", refusal="No."))
    assert (verdict.code, verdict.retry, verdict.output) == (4, None, None)
    assert verdict.error is not None and verdict.error.message == "the model refused: No."


def test_an_incomplete_answer_is_not_corrected_and_prints_no_document() -> None:
    verdict = judge(Contract(NAME, retries=3), answer('{"name": "A', finish="length"))
    assert (verdict.code, verdict.retry, verdict.output, verdict.valid) == (3, None, None, False)
    # With -x, what arrived is the (cut) block.
    verdict = judge(Contract(extract="last"), answer("```\nhalf", finish="length"))
    assert (verdict.code, verdict.output) == (3, "half")


def test_allowed_incomplete_answers_warn_and_still_meet_the_schema() -> None:
    verdict = judge(Contract(NAME, allow_incomplete=True), answer('{"name": "A"}', finish="content_filter"))
    assert verdict == Judgement(warning="the content filter stopped the answer (finish_reason content_filter)",
                                output='{"name":"A"}', valid=True, document={"name": "A"})
    assert verdict.code == 0


def test_a_mismatch_is_corrected_while_attempts_remain() -> None:
    contract = Contract(NAME, retries=1)
    assert (contract.attempts, contract.holds_text) == (2, True)
    first = judge(contract, answer("{}"), attempt=1)
    assert first == Judgement(
        retry=corrective_turns("{}", ['$: "name" is a required property']),
        notice='the answer does not match the schema: $: "name" is a required property; '
               "asking for a correction (attempt 2 of 2)",
    )
    assert first.code == 4
    last = judge(contract, answer("{}"), attempt=2)
    assert (last.code, last.retry, last.output) == (4, None, None)
    assert last.error is not None and last.error.message == schema_failure(['$: "name" is a required property'], 2).message


def test_a_valid_null_document_is_printed() -> None:
    verdict = judge(Contract(prepare(Loaded({"type": "null"}))), answer(" null "))
    assert (verdict.code, verdict.valid, verdict.document, verdict.output) == (0, True, None, "null")


def test_extraction_and_plain_answers() -> None:
    assert judge(Contract(extract="first"), answer(FENCED)) == Judgement(output="echo one")
    assert judge(Contract(extract="last"), answer(FENCED)) == Judgement(output="echo two")
    missing = judge(Contract(extract="first"), answer("prose"))
    assert missing.code == 4 and missing.error is not None
    assert missing.error.message == no_block_error().message
    assert judge(Contract(), answer("prose")) == Judgement()
    assert (Contract().attempts, Contract(retries=5).attempts, Contract().holds_text) == (1, 1, False)
    assert Contract().params() == {}
    assert Contract(NAME).params() == {"response_format": NAME.response_format()}


# ---------------------------------------------------------------------------------------------
# Start-up: no validator is loaded until a schema is prepared.

VALIDATORS = ("jsonschema_rs", "jsonschema", "fastjsonschema")
PROBE = "import sys\n{code}\nsys.stderr.write('\\nLOADED:' + ','.join(m for m in {mods!r} if m in sys.modules))\n"


def loaded(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = PROBE.format(code=code, mods=VALIDATORS)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=child_env(env), check=True)
    return [m for m in out.stderr.rsplit("LOADED:", 1)[1].split(",") if m]


def test_importing_the_cli_and_the_answer_modules_loads_no_validator() -> None:
    assert loaded("import evocli.cli, evocli.schema, evocli.validation, evocli.answer") == []
    assert loaded("import evocli.schema as s\ns.from_option('name, age int', open)") == []
    assert loaded("import evocli.schema as s\ns.prepare(s.from_option('name', open))") == ["jsonschema_rs"]


def test_a_plain_ask_loads_no_validator() -> None:
    code = (
        "from evocli.cli import app\n"
        "try:\n"
        "    app(['ask', '--no-stdin', 'hi'], prog_name='evocli')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    with FakeServer() as server:
        assert loaded(code, {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url}) == []
        assert len(server.bodies) == 1


@pytest.mark.parametrize(
    ("argv", "content", "validators"),
    [
        (["ask", "--no-stdin", "-x", "--effort", "low", "hi"], "```\ncode\n```", []),
        (["batch", "{lines}"], "hi", []),
        (["ask", "--no-stdin", "--schema", "n", "hi"], '{"n": "x"}', ["jsonschema_rs"]),
    ],
)
def test_only_a_schema_loads_the_validator(tmp_path: Any, argv: list[str], content: str, validators: list[str]) -> None:
    lines = tmp_path / "in.jsonl"
    lines.write_text('"hi"\n')
    args = [str(lines) if a == "{lines}" else a for a in argv]
    code = (
        "from evocli.cli import app\n"
        "try:\n"
        f"    app({args!r}, prog_name='evocli')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    with FakeServer() as server:
        server.script(Reply(body=completion_body(content)))
        assert loaded(code, {"EVOLINK_API_KEY": KEY, "EVOLINK_BASE_URL": server.base_url}) == validators
        assert len(server.bodies) == 1
