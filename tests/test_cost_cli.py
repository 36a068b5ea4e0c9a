"""A call's cost on the command line: `-o usage` and `-u` with prices, against the local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.server import FakeServer, Reply, completion_body, stream_reply
from tests.test_usage_cost import PRICES_YAML, write_config

Cli = Any
USAGE = ('{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":2},'
         '"completion_tokens_details":{"reasoning_tokens":3}')
COUNTS = "usage: prompt_tokens=12 completion_tokens=7 reasoning_tokens=3 cached_tokens=2 image_tokens=0 total_tokens=19"
# The server's usage at gpt-5.2's price: (12 - 2) * 1.75 + 2 * 0.175 + 7 * 14 = 115.85 per million.
GPT_COST = "0.00011585"


def test_output_usage_adds_the_cost_and_its_unit(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    r = cli(["ask", "-o", "usage", "x"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == USAGE + f',"cost":{GPT_COST},"price_unit":"USD"}}\n'
    assert api_env.bodies == [{"model": "gpt-5.2", "messages": [{"role": "user", "content": "x"}]}]


def test_show_usage_adds_the_cost(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML + "price_unit: EUR\n")
    r = cli(["ask", "-u", "x"])
    assert (r.exit_code, r.stdout) == (0, "Hello from the test server.\n")
    assert r.stderr == f"{COUNTS} cost={GPT_COST} EUR\n"


def test_streamed_answers_are_priced_too(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    api_env.script(stream_reply(["Hel", "lo"], finish_reason="stop"))
    r = cli(["ask", "--stream", "-u", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, "Hello\n", f"{COUNTS} cost={GPT_COST} USD\n")


def test_no_price_no_cost(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    r = cli(["ask", "-m", "claude-sonnet-4.5", "-o", "usage", "x"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, USAGE + "}\n", "")
    r = cli(["ask", "-m", "claude-sonnet-4.5", "-u", "x"])
    assert (r.exit_code, r.stderr) == (0, COUNTS + "\n")


def test_the_model_that_answered_is_priced(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    # Asked for a router, answered by gpt-5.2-mini: 12 * 0.25 + 7 * 2 = 17 per million (no cached price).
    api_env.script(Reply(body=completion_body(model="gpt-5.2-mini")))
    r = cli(["ask", "-m", "evolink/auto", "-u", "x"])
    assert (r.exit_code, r.stderr) == (0, f"{COUNTS} cost=0.000017 USD\n")
    # Asked for gpt-5.2, answered by a model without a price: as the ledger records it, no cost.
    api_env.script(Reply(body=completion_body(model="gpt-5.2-2026-01-01")))
    r = cli(["ask", "-u", "x"])
    assert (r.exit_code, r.stderr) == (0, COUNTS + "\n")
    # An answer that names no model is priced as the model asked for.
    body = completion_body()
    del body["model"]
    api_env.script(Reply(body=body))
    r = cli(["ask", "-o", "usage", "x"])
    assert (r.exit_code, r.stdout) == (0, USAGE + f',"cost":{GPT_COST},"price_unit":"USD"}}\n')


def test_exact_digits_not_a_rounded_float(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    # 3 * 0.1 is 0.30000000000000004 as floats; the cost is exactly 0.3 per million.
    write_config(isolated, "prices:\n  gpt-5.2: {input: 0.1, output: 0.2}\n")
    api_env.script(Reply(body=completion_body(usage={"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3})))
    r = cli(["ask", "-o", "usage", "x"])
    assert (r.exit_code, r.stdout) == (
        0, '{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3,"cost":0.0000003,"price_unit":"USD"}\n')


def test_usage_not_reported_has_no_cost(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    body = completion_body()
    del body["usage"]
    api_env.script(Reply(body=body), Reply(body=body))
    assert cli(["ask", "-o", "usage", "x"]).stdout == "{}\n"
    assert cli(["ask", "-u", "x"]).stderr == "usage: not reported by the server\n"


def test_a_server_cost_field_gives_way_to_the_configured_price(
    cli: Cli, api_env: FakeServer, isolated: Path
) -> None:
    write_config(isolated, PRICES_YAML)
    usage = {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10, "cost": 99, "price_unit": "credits"}
    api_env.script(Reply(body=completion_body(usage=usage)))
    r = cli(["ask", "-o", "usage", "x"])
    assert r.stdout == '{"prompt_tokens":10,"completion_tokens":0,"total_tokens":10,"cost":0.0000175,"price_unit":"USD"}\n'


def test_chat_file_output_usage_with_a_price(cli: Cli, api_env: FakeServer, isolated: Path) -> None:
    write_config(isolated, PRICES_YAML)
    conv = isolated / "c.yaml"
    conv.write_text("model: gpt-5.2-mini\nmessages:\n  - role: user\n    content: hi\n")
    r = cli(["chat-file", "--no-stdin", "-o", "usage", str(conv)])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == USAGE + ',"cost":0.000017,"price_unit":"USD"}\n'
