"""`evocli usage` with prices from the config file, two --by keys, and --calls: exact stdout, stderr
and exit codes from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evocli.cli import base as cli_module
from tests.test_ledger_read import SAMPLE, line
from tests.test_terminal import in_terminal, screen

Cli = Any
HEADER = ("requests\terrors\tprompt_tokens\tcompletion_tokens\treasoning_tokens\tcached_tokens\timage_tokens\t"
          "total_tokens\tmean_latency_ms")
CALL_HEADER = ("ts\tcommand\tmodel\ttag\tprompt_tokens\tcompletion_tokens\treasoning_tokens\tcached_tokens\t"
               "image_tokens\ttotal_tokens")
PRICES_YAML = (
    "prices:\n"
    "  gpt-5.2: {input: 1.75, cached_input: 0.175, output: 14}\n"
    "  gpt-5.2-mini: {input: 0.25, output: 2}\n"
)
WARNING = "evocli: warning: no price for claude-sonnet-4.5: their cost shows as - and the totals leave it out\n"


def write_config(isolated: Path, text: str) -> Path:
    path = isolated / "config" / "evocli" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_ledger(folder: Path, records: list[bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    for record in records:
        with open(folder / f"{json.loads(record)['ts'][:7]}.jsonl", "ab") as fh:
            fh.write(record)
    return folder


@pytest.fixture
def sample(isolated: Path) -> Path:
    """The sample ledger (2026-10-31 to 2026-12-01): gpt-5.2 and gpt-5.2-mini, and claude-sonnet-4.5."""
    return write_ledger(isolated / "ledger", SAMPLE)


@pytest.fixture
def priced(isolated: Path, sample: Path) -> Path:
    """The sample ledger, and prices for every model in it but claude-sonnet-4.5."""
    write_config(isolated, PRICES_YAML)
    return sample


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "is_terminal", lambda stream: True)


# --- the cost column, in each format ----------------------------------------------------------------


def test_tsv_with_prices_and_the_warning(cli: Cli, priced: Path) -> None:
    r = cli(["usage"])
    # gpt-5.2: (31 - 6) * 1.75 + 6 * 0.175 + 16 * 14 = 268.8 per million; mini: 5 * 0.25 + 5 * 2 = 11.25.
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        f"model\t{HEADER}\tcost\n"
        "claude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\t\n"
        "gpt-5.2\t4\t1\t31\t16\t3\t6\t0\t47\t328\t0.0002688\n"
        "gpt-5.2-mini\t1\t0\t5\t5\t0\t0\t0\t10\t50\t0.00001125\n"
    )


def test_quiet_hides_the_price_warning(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "-q"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines()[2] == "gpt-5.2\t4\t1\t31\t16\t3\t6\t0\t47\t328\t0.0002688"


def test_no_warning_when_every_model_seen_has_a_price(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--tag", "nightly"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == f"model\t{HEADER}\tcost\ngpt-5.2\t2\t0\t30\t15\t3\t6\t0\t45\t150\t0.00025305\n"


def test_csv_by_day_with_prices(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--csv", "--by", "day"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        f"day,{HEADER.replace(chr(9), ',')},cost\n"
        "2026-10-31,1,0,10,5,1,2,0,15,100,0.00008435\n"  # 8 * 1.75 + 2 * 0.175 + 5 * 14 = 84.35
        "2026-11-01,2,0,25,15,2,4,0,40,125,0.00017995\n"  # gpt-5.2's 168.7 and mini's 11.25
        "2026-11-02,1,1,0,0,0,0,0,0,1000,0\n"  # a failed call costs nothing
        "2026-11-30,1,0,100,50,10,20,0,150,300,\n"  # no price
        "2026-12-01,1,0,1,1,0,0,0,2,10,0.00001575\n"
    )


def test_json_by_tag_with_prices(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--json", "--by", "tag"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        "{\n"
        '  "by": "tag",\n'
        '  "columns": ["tag", "requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "mean_latency_ms", "cost"],\n'
        '  "rows": [\n'
        '    {"tag": "ci", "requests": 2, "errors": 1, "prompt_tokens": 100, "completion_tokens": 50, '
        '"reasoning_tokens": 10, "cached_tokens": 20, "image_tokens": 0, "total_tokens": 150, "mean_latency_ms": 650, '
        '"cost": 0},\n'
        '    {"tag": "nightly", "requests": 2, "errors": 0, "prompt_tokens": 30, "completion_tokens": 15, '
        '"reasoning_tokens": 3, "cached_tokens": 6, "image_tokens": 0, "total_tokens": 45, "mean_latency_ms": 150, '
        '"cost": 0.00025305},\n'
        '    {"tag": null, "requests": 2, "errors": 0, "prompt_tokens": 6, "completion_tokens": 6, '
        '"reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "total_tokens": 12, "mean_latency_ms": 30, '
        '"cost": 0.000027}\n'
        "  ],\n"
        '  "totals": {"requests": 6, "errors": 1, "prompt_tokens": 136, "completion_tokens": 71, '
        '"reasoning_tokens": 13, "cached_tokens": 26, "image_tokens": 0, "total_tokens": 207, '
        '"mean_latency_ms": 277, "cost": 0.00028005},\n'
        '  "price_unit": "USD"\n'
        "}\n"
    )


def test_table_with_prices_in_their_unit(cli: Cli, sample: Path, isolated: Path, terminal: None) -> None:
    write_config(isolated, PRICES_YAML + "price_unit: EUR\n")
    r = cli(["usage"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        "model              requests  errors  prompt  completion  reasoning  cached  image  total  mean ms  cost EUR\n"
        "claude-sonnet-4.5         1       0     100          50         10      20      0    150      300         -\n"
        "gpt-5.2                   4       1      31          16          3       6      0     47      328    0.0003\n"
        "gpt-5.2-mini              1       0       5           5          0       0      0     10       50   <0.0001\n"
        "total                     6       1     136          71         13      26      0    207      277    0.0003\n"
    )


def test_an_exact_cost_is_not_a_rounded_float(cli: Cli, isolated: Path) -> None:
    # 3 * 0.1 is 0.30000000000000004 in floats: the report gives the exact 0.3 per million.
    write_ledger(isolated / "ledger", [line("2026-11-01T10:00:00+00:00", tokens=(3, 0, 0, 0))])
    write_config(isolated, "prices:\n  gpt-5.2: {input: 0.1, output: 0.2}\n")
    r = cli(["usage", "--json"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert json.loads(r.stdout, parse_float=str)["rows"][0]["cost"] == "0.0000003"
    assert '"cost": 0.0000003}' in r.stdout


def test_no_prices_no_cost_column(cli: Cli, sample: Path, isolated: Path) -> None:
    write_config(isolated, "prices:\n")  # every model commented out: as if there were no prices
    r = cli(["usage", "--json"])
    assert (r.exit_code, r.stderr) == (0, "")
    doc = json.loads(r.stdout)
    assert ("price_unit" in doc, doc["columns"][-1], "cost" in doc["totals"]) == (False, "mean_latency_ms", False)
    assert cli(["usage"]).stdout.splitlines()[0] == f"model\t{HEADER}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prices:\n  gpt-5.2: {input: -1, output: 1}\n",
         "prices: gpt-5.2.input: expected a price (a number, 0 or more), got -1"),
        ("prices:\n  gpt-5.2: {input: 1}\n", "prices: gpt-5.2: output is missing"),
        ("prices:\n  gpt-5.2: {input: 1, output: 2, cache: 0.1}\n",
         "prices: gpt-5.2: unknown field 'cache' (known: input, cached_input, output)"),
        ("prices: [gpt-5.2]\n", "prices: expected a mapping of model ids to prices, got a list"),
        ("price_unit: 5\n", "price_unit: expected a label such as USD, got the number 5"),
    ],
)
def test_bad_prices_are_configuration_errors(cli: Cli, isolated: Path, text: str, message: str) -> None:
    path = write_config(isolated, text)
    for args in (["usage"], ["ask", "--no-stdin", "--dry-run", "hi"]):
        r = cli(args)
        assert (r.exit_code, r.stdout, r.stderr) == (78, "", f"evocli: error: config file {path}: {message}\n")


# --- two keys -----------------------------------------------------------------------------------------


def test_two_keys_one_row_per_pair(cli: Cli, sample: Path) -> None:
    r = cli(["usage", "--by", "tag", "--by", "model"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"tag\tmodel\t{HEADER}\n"
        "ci\tclaude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
        "ci\tgpt-5.2\t1\t1\t0\t0\t0\t0\t0\t0\t1000\n"
        "nightly\tgpt-5.2\t2\t0\t30\t15\t3\t6\t0\t45\t150\n"
        "\tgpt-5.2\t1\t0\t1\t1\t0\t0\t0\t2\t10\n"
        "\tgpt-5.2-mini\t1\t0\t5\t5\t0\t0\t0\t10\t50\n"
    )


def test_two_keys_in_json_with_prices(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--json", "--by", "tag", "--by", "MODEL"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        "{\n"
        '  "by": ["tag", "model"],\n'
        '  "columns": ["tag", "model", "requests", "errors", "prompt_tokens", "completion_tokens", '
        '"reasoning_tokens", "cached_tokens", "image_tokens", "total_tokens", "mean_latency_ms", "cost"],\n'
        '  "rows": [\n'
        '    {"tag": "ci", "model": "claude-sonnet-4.5", "requests": 1, "errors": 0, "prompt_tokens": 100, '
        '"completion_tokens": 50, "reasoning_tokens": 10, "cached_tokens": 20, "image_tokens": 0, '
        '"total_tokens": 150, "mean_latency_ms": 300, "cost": null},\n'
        '    {"tag": "ci", "model": "gpt-5.2", "requests": 1, "errors": 1, "prompt_tokens": 0, '
        '"completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, '
        '"total_tokens": 0, "mean_latency_ms": 1000, "cost": 0},\n'
        '    {"tag": "nightly", "model": "gpt-5.2", "requests": 2, "errors": 0, "prompt_tokens": 30, '
        '"completion_tokens": 15, "reasoning_tokens": 3, "cached_tokens": 6, "image_tokens": 0, '
        '"total_tokens": 45, "mean_latency_ms": 150, "cost": 0.00025305},\n'
        '    {"tag": null, "model": "gpt-5.2", "requests": 1, "errors": 0, "prompt_tokens": 1, '
        '"completion_tokens": 1, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, '
        '"total_tokens": 2, "mean_latency_ms": 10, "cost": 0.00001575},\n'
        '    {"tag": null, "model": "gpt-5.2-mini", "requests": 1, "errors": 0, "prompt_tokens": 5, '
        '"completion_tokens": 5, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, '
        '"total_tokens": 10, "mean_latency_ms": 50, "cost": 0.00001125}\n'
        "  ],\n"
        '  "totals": {"requests": 6, "errors": 1, "prompt_tokens": 136, "completion_tokens": 71, '
        '"reasoning_tokens": 13, "cached_tokens": 26, "image_tokens": 0, "total_tokens": 207, '
        '"mean_latency_ms": 277, "cost": 0.00028005},\n'
        '  "price_unit": "USD"\n'
        "}\n"
    )


def test_two_keys_table(cli: Cli, sample: Path, terminal: None) -> None:
    r = cli(["usage", "--by", "command", "--by", "day", "--since", "2026-11-01"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "command    day         requests  errors  prompt  completion  reasoning  cached  image  total  mean ms\n"
        "ask        2026-11-01         1       0      20          10          2       4      0     30      200\n"
        "ask        2026-11-02         1       1       0           0          0       0      0      0    1,000\n"
        "ask        2026-12-01         1       0       1           1          0       0      0      2       10\n"
        "batch      2026-11-30         1       0     100          50         10      20      0    150      300\n"
        "chat-file  2026-11-01         1       0       5           5          0       0      0     10       50\n"
        "total                         5       1     126          66         12      24      0    192      312\n"
    )


# --- --calls ------------------------------------------------------------------------------------------


def test_calls_piped_are_every_call_oldest_first(cli: Cli, sample: Path) -> None:
    r = cli(["usage", "--calls"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"{CALL_HEADER}\tlatency_ms\texit_code\n"
        "2026-10-31T23:59:59.999Z\task\tgpt-5.2\tnightly\t10\t5\t1\t2\t0\t15\t100\t0\n"
        "2026-11-01T00:00:00.000Z\task\tgpt-5.2\tnightly\t20\t10\t2\t4\t0\t30\t200\t0\n"
        "2026-11-01T12:00:00.000Z\tchat-file\tgpt-5.2-mini\t\t5\t5\t0\t0\t0\t10\t50\t0\n"
        "2026-11-02T08:00:00.000Z\task\tgpt-5.2\tci\t0\t0\t0\t0\t0\t0\t1000\t75\n"
        "2026-11-30T23:00:00.000Z\tbatch\tclaude-sonnet-4.5\tci\t100\t50\t10\t20\t0\t150\t300\t0\n"
        "2026-12-01T00:00:00.000Z\task\tgpt-5.2\t\t1\t1\t0\t0\t0\t2\t10\t0\n"
    )


def test_calls_filtered_and_limited_with_prices(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--calls", "--since", "2026-11-01", "--until", "2026-11-30", "--limit", "2"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        f"{CALL_HEADER}\tcost\tlatency_ms\texit_code\n"
        "2026-11-02T08:00:00.000Z\task\tgpt-5.2\tci\t0\t0\t0\t0\t0\t0\t0\t1000\t75\n"
        "2026-11-30T23:00:00.000Z\tbatch\tclaude-sonnet-4.5\tci\t100\t50\t10\t20\t0\t150\t\t300\t0\n"
    )
    r = cli(["usage", "--calls", "--tag", "nightly", "--csv"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"{CALL_HEADER.replace(chr(9), ',')},cost,latency_ms,exit_code\n"
        "2026-10-31T23:59:59.999Z,ask,gpt-5.2,nightly,10,5,1,2,0,15,0.00008435,100,0\n"
        "2026-11-01T00:00:00.000Z,ask,gpt-5.2,nightly,20,10,2,4,0,30,0.0001687,200,0\n"  # 16*1.75+4*0.175+140
    )
    r = cli(["usage", "--calls", "--limit", "0", "-q"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, f"{CALL_HEADER}\tcost\tlatency_ms\texit_code\n", "")


def test_calls_json(cli: Cli, priced: Path) -> None:
    r = cli(["usage", "--calls", "--json", "--tag", "ci"])
    assert (r.exit_code, r.stderr) == (0, WARNING)
    assert r.stdout == (
        "{\n"
        '  "columns": ["ts", "command", "model", "tag", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "cost", "latency_ms", "exit_code"],\n'
        '  "rows": [\n'
        '    {"ts": "2026-11-02T08:00:00.000Z", "command": "ask", "model": "gpt-5.2", "tag": "ci", '
        '"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, '
        '"total_tokens": 0, "cost": 0, "latency_ms": 1000, "exit_code": 75},\n'
        '    {"ts": "2026-11-30T23:00:00.000Z", "command": "batch", "model": "claude-sonnet-4.5", "tag": "ci", '
        '"prompt_tokens": 100, "completion_tokens": 50, "reasoning_tokens": 10, "cached_tokens": 20, '
        '"image_tokens": 0, "total_tokens": 150, "cost": null, "latency_ms": 300, "exit_code": 0}\n'
        "  ],\n"
        '  "price_unit": "USD"\n'
        "}\n"
    )
    assert json.loads(cli(["usage", "--calls", "--json", "--tag", "none-such"]).stdout) == {
        "columns": ["ts", "command", "model", "tag", "prompt_tokens", "completion_tokens", "reasoning_tokens",
                    "cached_tokens", "image_tokens", "total_tokens", "cost", "latency_ms", "exit_code"],
        "rows": [], "price_unit": "USD"}


def many_calls(isolated: Path, count: int) -> None:
    """`count` calls on 2026-11-01, a minute apart, their prompt tokens counting up from 1."""
    write_ledger(isolated / "ledger", [
        line(f"2026-11-01T{i // 60:02d}:{i % 60:02d}:00+00:00", tokens=(i + 1, 1, 0, 0)) for i in range(count)])


def test_calls_on_a_terminal_are_the_last_fifty(cli: Cli, isolated: Path, terminal: None) -> None:
    many_calls(isolated, 60)
    r = cli(["usage", "--calls"])
    assert (r.exit_code, r.stderr) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0] == ("time                      command  model    tag  prompt  completion  reasoning  cached  "
                        "image  total   ms  exit")
    assert lines[1] == ("2026-11-01T00:10:00.000Z  ask      gpt-5.2  -        11           1          0       0  "
                        "    0     12  100     0")
    assert lines[-1] == ("2026-11-01T00:59:00.000Z  ask      gpt-5.2  -        60           1          0       0  "
                         "    0     61  100     0")
    assert len(lines) == 51
    assert len(cli(["usage", "--calls", "--limit", "55"]).stdout.splitlines()) == 56


def test_calls_piped_are_all_of_them(cli: Cli, isolated: Path) -> None:
    many_calls(isolated, 60)
    lines = cli(["usage", "--calls"]).stdout.splitlines()
    assert (len(lines), lines[1].split("\t")[:5], lines[-1].split("\t")[4]) == (
        61, ["2026-11-01T00:00:00.000Z", "ask", "gpt-5.2", "", "1"], "60")


def test_calls_warn_about_corrupt_lines_after_the_listing(cli: Cli, priced: Path) -> None:
    with open(priced / "2026-11.jsonl", "ab") as fh:
        fh.write(b"garbage\n")
    r = cli(["usage", "--calls", "--since", "2026-11-30"])
    assert r.exit_code == 0
    assert r.stderr == "evocli: warning: skipped 1 corrupt ledger line\n" + WARNING
    assert r.stdout.splitlines()[1:] == [
        "2026-11-30T23:00:00.000Z\tbatch\tclaude-sonnet-4.5\tci\t100\t50\t10\t20\t0\t150\t\t300\t0",
        "2026-12-01T00:00:00.000Z\task\tgpt-5.2\t\t1\t1\t0\t0\t0\t2\t0.00001575\t10\t0",
    ]
    assert cli(["usage", "--calls", "-q"]).stderr == ""


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--by", "tag", "--by", "model", "--by", "day"],
         "evocli: error: --by takes one or two keys, got 3\nhint: --by tag --by model\n"),
        (["--by", "tag", "--by", "TAG"], "evocli: error: --by tag is given twice\n"),
        (["--limit", "5"], "evocli: error: --limit needs --calls (it limits the listing of calls)\n"),
        (["--calls", "--by", "day"], "evocli: error: --calls lists each call: it cannot be combined with --by\n"),
        (["--credits", "--calls"], "evocli: error: --credits cannot be combined with --calls\n"),
        (["--credits", "--limit", "0"], "evocli: error: --credits cannot be combined with --limit\n"),
        (["--calls", "--limit", "-1"], "evocli: error: invalid value for '--limit': -1 is not in the range x>=0\n"
                                       "hint: 'evocli usage -h' lists the options\n"),
    ],
)
def test_usage_errors(cli: Cli, sample: Path, args: list[str], stderr: str) -> None:
    r = cli(["usage", *args])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)


# --- the day chart, in a terminal ---------------------------------------------------------------------


def test_the_day_chart_in_a_pseudo_terminal(sample: Path, isolated: Path) -> None:
    code, raw = in_terminal(["usage", "--by", "day"], {})
    assert code == 0, raw
    # Total tokens, the largest day (150) filling 24 cells: 15 is 2.4 cells, 40 is 6.4, 2 is 0.32.
    assert [row for row in screen(raw) if row] == [
        "day         requests  errors  prompt  completion  reasoning  cached  image  total  mean ms",
        "2026-10-31         1       0      10           5          1       2      0     15      100  ██▍",
        "2026-11-01         2       0      25          15          2       4      0     40      125  ██████▍",
        "2026-11-02         1       1       0           0          0       0      0      0    1,000",
        "2026-11-30         1       0     100          50         10      20      0    150      300  ████████████████████████",
        "2026-12-01         1       0       1           1          0       0      0      2       10  ▍",
        "total              6       1     136          71         13      26      0    207      277",
    ]
    write_config(isolated, PRICES_YAML)
    code, raw = in_terminal(["usage", "--by", "day"], {})
    assert code == 0, raw
    # Priced, the bars chart the cost: 2026-11-01's 0.00017995 fills them; an unpriced day has none.
    assert [row for row in screen(raw) if row] == [
        "day         requests  errors  prompt  completion  reasoning  cached  image  total  mean ms  cost USD",
        "2026-10-31         1       0      10           5          1       2      0     15      100    0.0001  ███████████▎",
        "2026-11-01         2       0      25          15          2       4      0     40      125    0.0002  ████████████████████████",
        "2026-11-02         1       1       0           0          0       0      0      0    1,000    0.0000",
        "2026-11-30         1       0     100          50         10      20      0    150      300         -",
        "2026-12-01         1       0       1           1          0       0      0      2       10   <0.0001  ██▏",
        "total              6       1     136          71         13      26      0    207      277    0.0003",
        WARNING.rstrip("\n"),
    ]
    # As CSV (or TSV, or JSON) there is no chart, even on a terminal.
    code, raw = in_terminal(["usage", "--by", "day", "--csv"], {})
    assert (code, set("█▏▎▍▌▋▊▉") & set(raw.decode())) == (0, set())
