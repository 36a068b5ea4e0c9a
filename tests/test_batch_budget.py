"""`batch --max-cost` and `--max-total-tokens` against the local server, which reports known usage
(19 tokens a call; 0.00011585 USD at gpt-5.2's price): the lines that fit are sent, the others get
records, the run exits 69, and `--resume` with a new budget finishes them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evocli.batchbudget import models_in_file
from tests.conftest import KEY
from tests.server import DEFAULT_USAGE, FakeServer, Recorded, Reply, completion_body
from tests.test_usage_cost import PRICES_YAML, write_config

Cli = Any
UNSENT = "budget reached"


def echo(rec: Recorded) -> Reply:
    body = json.loads(rec.body)
    return Reply(body=completion_body(f"re: {body['messages'][-1]['content']}", model=body["model"]))


@pytest.fixture
def srv(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeServer(default=echo) as server:
        monkeypatch.setenv("EVOLINK_API_KEY", KEY)
        monkeypatch.setenv("EVOLINK_BASE_URL", server.base_url)
        yield server


def ok(id: Any, text: str) -> dict[str, Any]:
    return {"id": id, "ok": True, "content": f"re: {text}", "finish_reason": "stop", "model": "gpt-5.2",
            "usage": DEFAULT_USAGE}


def unsent(id: Any) -> dict[str, Any]:
    return {"id": id, "ok": False, "exit_code": 69, "error": UNSENT}


def prompts(server: FakeServer) -> list[str]:
    """The last user message of each request, in the order they arrived."""
    return [body["messages"][-1]["content"] for body in server.bodies]


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def write_lines(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"L{i}", "prompt": f"p{i}"}) + "\n" for i in range(1, count + 1)))
    return path


def test_token_cap_then_resume_with_new_budgets(cli: Cli, srv: FakeServer, tmp_path: Path, isolated: Path) -> None:
    src, out = write_lines(tmp_path / "in.jsonl", 6), tmp_path / "out.jsonl"
    r = cli(["batch", str(src), "-c", "1", "--out", str(out), "--max-total-tokens", "57"])
    assert (r.exit_code, r.stdout) == (69, "")
    assert r.stderr == ("evocli: error: 3 of 6 failed; budget reached: 3 not sent\n"
                        "hint: spent 57 tokens (--max-total-tokens 57); --resume with a new budget sends the rest\n")
    assert prompts(srv) == ["p1", "p2", "p3"]  # 3 * 19 = 57: the cap is reached, not one line more
    assert srv.bodies[0] == {"model": "gpt-5.2", "messages": [{"role": "user", "content": "p1"}]}
    assert records(out.read_text()) == [ok("L1", "p1"), ok("L2", "p2"), ok("L3", "p3"),
                                        unsent("L4"), unsent("L5"), unsent("L6")]
    ledger = (isolated / "ledger").glob("*.jsonl")
    assert [json.loads(line)["command"] for path in ledger for line in path.read_text().splitlines()] == ["batch"] * 3

    # A new budget counts this run's calls only: 19 < 20 sends another line, 38 stops.
    r = cli(["batch", str(src), "-c", "1", "--out", str(out), "--resume", "--max-total-tokens", "20"])
    assert (r.exit_code, r.stdout) == (69, "")
    assert r.stderr == ("evocli: error: 1 of 3 failed (3 already done); budget reached: 1 not sent\n"
                        "hint: spent 38 tokens (--max-total-tokens 20); --resume with a new budget sends the rest\n")
    assert prompts(srv)[3:] == ["p4", "p5"]
    assert records(out.read_text())[3:] == [ok("L4", "p4"), ok("L5", "p5"), unsent("L6")]

    r = cli(["batch", str(src), "-c", "1", "--out", str(out), "--resume"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "", "")
    assert prompts(srv) == ["p1", "p2", "p3", "p4", "p5", "p6"]
    assert records(out.read_text()) == [ok(f"L{i}", f"p{i}") for i in range(1, 7)]


def test_cost_cap_with_prices(cli: Cli, srv: FakeServer, tmp_path: Path, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    src = write_lines(tmp_path / "in.jsonl", 4)
    r = cli(["batch", str(src), "-c", "1", "--max-cost", "0.0002"])
    assert r.exit_code == 69
    # The first line spent 0.00011585, under the cap; the second took it over: nothing more is sent.
    assert records(r.stdout) == [ok("L1", "p1"), ok("L2", "p2"), unsent("L3"), unsent("L4")]
    assert r.stderr == ("evocli: error: 2 of 4 failed; budget reached: 2 not sent\n"
                        "hint: spent 0.0002317 USD (--max-cost 0.0002)\n")
    assert prompts(srv) == ["p1", "p2"]


def test_both_caps_the_first_reached_stops(cli: Cli, srv: FakeServer, tmp_path: Path, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML + "price_unit: EUR\n")
    src = write_lines(tmp_path / "in.jsonl", 3)
    r = cli(["batch", str(src), "-c", "1", "--max-cost", "1", "--max-total-tokens", "19"])
    assert records(r.stdout) == [ok("L1", "p1"), unsent("L2"), unsent("L3")]
    assert (r.exit_code, r.stderr) == (69, "evocli: error: 2 of 3 failed; budget reached: 2 not sent\n"
                                           "hint: spent 0.00011585 EUR (--max-cost 1) and 19 tokens "
                                           "(--max-total-tokens 19)\n")


def test_lines_in_flight_finish(cli: Cli, srv: FakeServer, tmp_path: Path) -> None:
    srv.default = lambda rec: Reply(delay=0.6, body=echo(rec).body)
    src = write_lines(tmp_path / "in.jsonl", 7)
    r = cli(["batch", str(src), "-c", "3", "--max-total-tokens", "1"])
    # Three lines were sent before any answer came back: all three finish and are counted.
    assert records(r.stdout) == [ok("L1", "p1"), ok("L2", "p2"), ok("L3", "p3"), *map(unsent, ["L4", "L5", "L6", "L7"])]
    assert (r.exit_code, r.stderr) == (69, "evocli: error: 4 of 7 failed; budget reached: 4 not sent\n"
                                           "hint: spent 57 tokens (--max-total-tokens 1)\n")
    assert sorted(prompts(srv)) == ["p1", "p2", "p3"]


def test_a_cap_of_zero_sends_nothing(cli: Cli, srv: FakeServer, tmp_path: Path) -> None:
    r = cli(["batch", str(write_lines(tmp_path / "in.jsonl", 2)), "--max-total-tokens", "0"])
    assert (r.exit_code, records(r.stdout)) == (69, [unsent("L1"), unsent("L2")])
    assert srv.requests == []


def test_what_an_answer_costs_counts_even_when_the_line_fails(cli: Cli, srv: FakeServer, tmp_path: Path) -> None:
    # A cut-off answer (exit 3) spent its tokens; a line that is not JSON was never sent and spent none.
    srv.script(Reply(body=completion_body("par", finish_reason="length")))
    src = tmp_path / "in.jsonl"
    src.write_text('not json\n"p2"\n"p3"\n')
    r = cli(["batch", str(src), "-c", "1", "-q", "--max-total-tokens", "19"])
    assert records(r.stdout) == [
        {"id": 1, "ok": False, "exit_code": 65, "error": "line 1: not valid JSON (Expecting value at column 1)"},
        {"id": 2, "ok": False, "exit_code": 3,
         "error": "the answer was cut off at the token limit (finish_reason length)",
         "content": "par", "finish_reason": "length"},
        unsent(3),
    ]
    # Whatever else failed, the run stopped short of its input: 69.
    assert (r.exit_code, r.stderr) == (69, "evocli: error: 3 of 3 failed; budget reached: 1 not sent\n"
                                           "hint: spent 19 tokens (--max-total-tokens 19)\n")


NEEDS = "hint: add them under prices: in the config file (input, cached_input, output per million tokens)\n"


def test_max_cost_needs_a_price_for_every_model_before_anything_is_sent(
    cli: Cli, srv: FakeServer, tmp_path: Path, isolated: Path
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('"a"\n{"prompt": "b", "model": "claude-sonnet-4.5"}\n{"prompt": "c", "model": "zeta"}\n')
    out.write_text('{"id":"kept","ok":true}\n')
    r = cli(["batch", str(src), "--out", str(out), "--max-cost", "1"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == ("evocli: error: --max-cost needs a price for every model; "
                        "none for claude-sonnet-4.5, gpt-5.2, zeta\n" + NEEDS)
    write_config(isolated, PRICES_YAML)
    r = cli(["batch", str(src), "--out", str(out), "--max-cost", "1"])
    assert (r.exit_code, r.stderr) == (2, "evocli: error: --max-cost needs a price for every model; "
                                          "none for claude-sonnet-4.5, zeta\n" + NEEDS)
    assert srv.requests == []
    assert out.read_text() == '{"id":"kept","ok":true}\n'  # refused before --out was rewritten


def test_lines_that_will_not_be_sent_need_no_price(cli: Cli, srv: FakeServer, tmp_path: Path, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"id": "a", "prompt": "a"}\n{"id": "d", "prompt": "d", "model": "omega"}\n'
                   '{"id": "b", "prompt": "b", "model": "zeta"}\n"e"\nnot json\n')
    out.write_text('{"id":"b","ok":true}\n')
    # In shard 1/2 (lines 1, 3 and 5), b is done already and line 5 cannot be sent: only gpt-5.2 is used.
    r = cli(["batch", str(src), "--out", str(out), "--resume", "--shard", "1/2", "--max-cost", "1"])
    assert (r.exit_code, r.stdout, r.stderr) == (65, "", "evocli: error: 1 of 2 failed (1 already done)\n")
    assert prompts(srv) == ["a"]
    assert records(out.read_text()) == [
        {"id": "b", "ok": True}, ok("a", "a"),
        {"id": 5, "ok": False, "exit_code": 65, "error": "line 5: not valid JSON (Expecting value at column 1)"}]


def test_stdin_checks_the_default_model_first_and_each_line_as_it_comes(
    cli: Cli, srv: FakeServer, isolated: Path
) -> None:
    given = '"a"\n{"prompt": "b", "model": "zeta"}\n"c"\n'
    r = cli(["batch", "-", "-c", "1", "--max-cost", "1"], input=given)
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == "evocli: error: --max-cost needs a price for every model; none for gpt-5.2\n" + NEEDS
    assert srv.requests == []
    write_config(isolated, PRICES_YAML)
    r = cli(["batch", "-", "-c", "1", "--max-cost", "1"], input=given)
    assert records(r.stdout) == [
        ok(1, "a"),
        {"id": 2, "ok": False, "exit_code": 2, "error": "line 2: --max-cost needs a price for zeta; the line is not sent"},
        ok(3, "c"),
    ]
    assert (r.exit_code, r.stderr) == (2, "evocli: error: 1 of 3 failed\n")
    assert prompts(srv) == ["a", "c"]


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--max-cost", "a lot"], "evocli: error: --max-cost expects an amount, 0 or more, got 'a lot'\n"),
        (["--max-cost", "-1"], "evocli: error: --max-cost expects an amount, 0 or more, got '-1'\n"),
        (["--max-cost", "nan"], "evocli: error: --max-cost expects an amount, 0 or more, got 'nan'\n"),
        (["--max-total-tokens", "-5"], "evocli: error: invalid value for '--max-total-tokens': -5 is not in the "
                                       "range x>=0\nhint: 'evocli batch -h' lists the options\n"),
    ],
)
def test_bad_caps_are_usage_errors(cli: Cli, srv: FakeServer, tmp_path: Path, args: list[str], stderr: str) -> None:
    r = cli(["batch", str(write_lines(tmp_path / "in.jsonl", 1)), *args])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)
    assert srv.requests == []


# --- the models of a file's lines (pure) --------------------------------------------------------------


def test_models_in_file(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('"plain"\n\n{"model": "m1", "prompt": "x"}\n{"id": 9, "model": " "}\n[1]\nnot json\n'
                   '{"id": "z", "prompt": "has \\"model\\" in its text"}\n{"model": "m2"}\n')
    assert models_in_file(str(src), None, "dflt") == {"dflt", "m1", "m2"}
    assert models_in_file(str(src), (1, 2), "dflt") == {"dflt", "m1"}  # lines 1, 3, 5 and 7
    assert models_in_file(str(src), (2, 2), "dflt") == {"dflt", "m2"}  # 4 has a blank model: the default
    # With --resume, a line whose id is done is left out; a line without an id has its number.
    done = {json.dumps("z"), json.dumps(8)}
    assert models_in_file(str(src), None, "dflt", lambda v: json.dumps(v) in done) == {"dflt", "m1"}
    assert models_in_file("-", None, "dflt") is None
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert models_in_file(str(fifo), None, "dflt") is None
    assert models_in_file(str(tmp_path / "missing"), None, "dflt") is None
