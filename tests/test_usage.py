"""`evocli usage`: every grouping, filter and format, with exact stdout, stderr and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evocli.cli import base as cli_module
from tests.conftest import run_evocli
from tests.server import FakeServer
from tests.test_ledger_read import SAMPLE, line

Cli = Any
HEADER = "requests\terrors\tprompt_tokens\tcompletion_tokens\treasoning_tokens\tcached_tokens\timage_tokens\ttotal_tokens\tmean_latency_ms"
COLUMNS = HEADER.split("\t")


@pytest.fixture
def sample(isolated: Path) -> Path:
    """The sample ledger: records from 2026-10-31 to 2026-12-01, in their monthly files."""
    folder = isolated / "ledger"
    folder.mkdir()
    for record in SAMPLE:
        month = json.loads(record)["ts"][:7]
        with open(folder / f"{month}.jsonl", "ab") as fh:
            fh.write(record)
    return folder


def test_default_is_by_model_tab_separated_when_piped(cli: Cli, sample: Path) -> None:
    r = cli(["usage"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"model\t{HEADER}\n"
        "claude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
        "gpt-5.2\t4\t1\t31\t16\t3\t6\t0\t47\t328\n"
        "gpt-5.2-mini\t1\t0\t5\t5\t0\t0\t0\t10\t50\n"
    )


def test_by_day(cli: Cli, sample: Path) -> None:
    assert cli(["usage", "--by", "day"]).stdout == (
        f"day\t{HEADER}\n"
        "2026-10-31\t1\t0\t10\t5\t1\t2\t0\t15\t100\n"
        "2026-11-01\t2\t0\t25\t15\t2\t4\t0\t40\t125\n"
        "2026-11-02\t1\t1\t0\t0\t0\t0\t0\t0\t1000\n"
        "2026-11-30\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
        "2026-12-01\t1\t0\t1\t1\t0\t0\t0\t2\t10\n"
    )


def test_by_tag_untagged_last_and_empty(cli: Cli, sample: Path) -> None:
    assert cli(["usage", "--by", "TAG"]).stdout == (
        f"tag\t{HEADER}\n"
        "ci\t2\t1\t100\t50\t10\t20\t0\t150\t650\n"
        "nightly\t2\t0\t30\t15\t3\t6\t0\t45\t150\n"
        "\t2\t0\t6\t6\t0\t0\t0\t12\t30\n"
    )


def test_by_command(cli: Cli, sample: Path) -> None:
    assert cli(["usage", "--by", "command"]).stdout == (
        f"command\t{HEADER}\n"
        "ask\t4\t1\t31\t16\t3\t6\t0\t47\t328\n"
        "batch\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
        "chat-file\t1\t0\t5\t5\t0\t0\t0\t10\t50\n"
    )


def test_json_document(cli: Cli, sample: Path) -> None:
    r = cli(["usage", "--json", "--by", "tag"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "{\n"
        '  "by": "tag",\n'
        '  "columns": ["tag", "requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "mean_latency_ms"],\n'
        '  "rows": [\n'
        '    {"tag": "ci", "requests": 2, "errors": 1, "prompt_tokens": 100, "completion_tokens": 50, '
        '"reasoning_tokens": 10, "cached_tokens": 20, "image_tokens": 0, "total_tokens": 150, "mean_latency_ms": 650},\n'
        '    {"tag": "nightly", "requests": 2, "errors": 0, "prompt_tokens": 30, "completion_tokens": 15, '
        '"reasoning_tokens": 3, "cached_tokens": 6, "image_tokens": 0, "total_tokens": 45, "mean_latency_ms": 150},\n'
        '    {"tag": null, "requests": 2, "errors": 0, "prompt_tokens": 6, "completion_tokens": 6, '
        '"reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "total_tokens": 12, "mean_latency_ms": 30}\n'
        "  ],\n"
        '  "totals": {"requests": 6, "errors": 1, "prompt_tokens": 136, "completion_tokens": 71, '
        '"reasoning_tokens": 13, "cached_tokens": 26, "image_tokens": 0, "total_tokens": 207, "mean_latency_ms": 277}\n'
        "}\n"
    )
    doc = json.loads(r.stdout)
    assert doc["columns"] == ["tag", *COLUMNS]
    assert [list(row) for row in doc["rows"]] == [doc["columns"]] * 3


def test_csv(cli: Cli, sample: Path, isolated: Path) -> None:
    with open(sample / "2026-11.jsonl", "ab") as fh:
        fh.write(line("2026-11-03T00:00:00+00:00", model='odd, "model"', tokens=(1, 1, 1, 1), latency=7))
    r = cli(["usage", "--csv"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"model,{HEADER.replace(chr(9), ',')}\n"
        "claude-sonnet-4.5,1,0,100,50,10,20,0,150,300\n"
        "gpt-5.2,4,1,31,16,3,6,0,47,328\n"
        "gpt-5.2-mini,1,0,5,5,0,0,0,10,50\n"
        '"odd, ""model""",1,0,1,1,1,1,0,2,7\n'
    )


def test_table_on_a_terminal(cli: Cli, sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "is_terminal", lambda stream: True)
    r = cli(["usage", "--by", "tag"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        "tag      requests  errors  prompt  completion  reasoning  cached  image  total  mean ms\n"
        "ci              2       1     100          50         10      20      0    150      650\n"
        "nightly         2       0      30          15          3       6      0     45      150\n"
        "(none)          2       0       6           6          0       0      0     12       30\n"
        "total           6       1     136          71         13      26      0    207      277\n"
    )


def test_table_groups_thousands(cli: Cli, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "is_terminal", lambda stream: True)
    folder = isolated / "ledger"
    folder.mkdir()
    (folder / "2026-11.jsonl").write_bytes(
        line("2026-11-01T00:00:00+00:00", tokens=(1_234_567, 8_900, 0, 1_000), latency=12_345) * 2
    )
    assert cli(["usage"]).stdout == (
        "model    requests  errors     prompt  completion  reasoning  cached  image      total  mean ms\n"
        "gpt-5.2         2       0  2,469,134      17,800          0   2,000      0  2,486,934   12,345\n"
        "total           2       0  2,469,134      17,800          0   2,000      0  2,486,934   12,345\n"
    )


def test_since_and_until_read_only_the_months_they_touch(cli: Cli, sample: Path) -> None:
    # Corrupt lines in October and December are never seen when the period is November.
    for month in ("2026-10", "2026-12"):
        with open(sample / f"{month}.jsonl", "ab") as fh:
            fh.write(b"garbage\n")
    r = cli(["usage", "--since", "2026-11-01", "--until", "2026-11-30", "--by", "day"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout == (
        f"day\t{HEADER}\n"
        "2026-11-01\t2\t0\t25\t15\t2\t4\t0\t40\t125\n"
        "2026-11-02\t1\t1\t0\t0\t0\t0\t0\t0\t1000\n"
        "2026-11-30\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
    )
    r = cli(["usage", "--since", "2026-11-30T12:00", "--by", "day"])
    assert r.stderr == "evocli: warning: skipped 1 corrupt ledger line\n"
    assert r.stdout.splitlines()[1:] == ["2026-11-30\t1\t0\t100\t50\t10\t20\t0\t150\t300", "2026-12-01\t1\t0\t1\t1\t0\t0\t0\t2\t10"]


def test_relative_periods(cli: Cli, isolated: Path) -> None:
    folder = isolated / "ledger"
    folder.mkdir()
    now = datetime.now(UTC)
    for hours_ago, tag in ((1, "recent"), (30, "yesterday"), (24 * 9, "last-week")):
        when = now - timedelta(hours=hours_ago)
        with open(folder / f"{when:%Y-%m}.jsonl", "ab") as fh:
            fh.write(line(when.isoformat(), tag=tag))
    tags = lambda args: [row.split("\t")[0] for row in cli(["usage", "--by", "tag", *args]).stdout.splitlines()[1:]]  # noqa: E731
    assert tags(["--since", "24h"]) == ["recent"]
    assert tags(["--since", "7d"]) == ["recent", "yesterday"]
    assert tags(["--until", "7d"]) == ["last-week"]
    assert tags(["--since", "10d", "--until", "24h"]) == ["last-week", "yesterday"]


def test_tag_filter(cli: Cli, sample: Path) -> None:
    assert cli(["usage", "--tag", "ci"]).stdout == (
        f"model\t{HEADER}\n"
        "claude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\n"
        "gpt-5.2\t1\t1\t0\t0\t0\t0\t0\t0\t1000\n"
    )
    r = cli(["usage", "--tag", "ci", "--tag", "nightly", "--json"])
    assert json.loads(r.stdout)["totals"]["requests"] == 4
    assert cli(["usage", "--tag", "nope"]).stdout == f"model\t{HEADER}\n"


def test_corrupt_lines_are_counted_on_stderr(cli: Cli, sample: Path) -> None:
    with open(sample / "2026-11.jsonl", "ab") as fh:
        fh.write(b'{"ts": "2026-11-05T00:00:00Z", "ok": tru\n\x00\x00\n{"half": \n\n')
    r = cli(["usage", "--by", "command"])
    assert (r.exit_code, r.stderr) == (0, "evocli: warning: skipped 3 corrupt ledger lines\n")
    assert r.stdout.splitlines()[1] == "ask\t4\t1\t31\t16\t3\t6\t0\t47\t328"
    assert cli(["usage", "-q"]).stderr == ""


def test_empty_ledger_is_an_empty_report(cli: Cli, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not (isolated / "ledger").exists()
    r = cli(["usage"])
    assert (r.exit_code, r.stdout, r.stderr) == (0, f"model\t{HEADER}\n", "")
    assert cli(["usage", "--csv", "--by", "day"]).stdout == f"day,{HEADER.replace(chr(9), ',')}\n"
    doc = json.loads(cli(["usage", "--json"]).stdout)
    assert doc == {"by": "model", "columns": ["model", *COLUMNS], "rows": [],
                   "totals": {**dict.fromkeys(COLUMNS, 0), "mean_latency_ms": None}}
    monkeypatch.setattr(cli_module, "is_terminal", lambda stream: True)
    assert cli(["usage"]).stdout == (
        "model  requests  errors  prompt  completion  reasoning  cached  image  total  mean ms\n")


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--since", "7x"], "evocli: error: --since: cannot read '7x' as a time\n"
         "hint: use a date (2026-11-01), a UTC time (2026-11-01T09:30), days (7d) or hours (24h)\n"),
        (["--until", "2026-02-30"], "evocli: error: --until: cannot read '2026-02-30' as a time\n"
         "hint: use a date (2026-11-01), a UTC time (2026-11-01T09:30), days (7d) or hours (24h)\n"),
        (["--since", "2026-11-05", "--until", "2026-11-01"],
         "evocli: error: --since 2026-11-05 is after --until 2026-11-01\n"),
        (["--json", "--csv"], "evocli: error: --json and --csv cannot be used together\n"),
        (["--credits", "--since", "7d"], "evocli: error: --credits cannot be combined with --since\n"),
        (["--credits", "--csv"], "evocli: error: --credits cannot be combined with --csv\n"),
    ],
)
def test_usage_errors(cli: Cli, sample: Path, args: list[str], stderr: str) -> None:
    r = cli(["usage", *args])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)


RANGE_HINT = "hint: times go from 0001-01-01 to 9999-12-31 (UTC)\n"


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["--since", "0001-01-01T00:00+05:00"],
         "evocli: error: --since: '0001-01-01T00:00+05:00' is out of range\n" + RANGE_HINT),
        (["--since", "9999-12-31T23:00-05:00"],
         "evocli: error: --since: '9999-12-31T23:00-05:00' is out of range\n" + RANGE_HINT),
        (["--until", "0001-01-01T00:00+00:01"],
         "evocli: error: --until: '0001-01-01T00:00+00:01' is out of range\n" + RANGE_HINT),
        (["--since", "999999d"], "evocli: error: --since: '999999d' is out of range\n" + RANGE_HINT),
    ],
)
def test_times_out_of_range_are_usage_errors(cli: Cli, sample: Path, args: list[str], stderr: str) -> None:
    r = cli(["usage", *args])
    assert (r.exit_code, r.stdout, r.stderr) == (2, "", stderr)


@pytest.mark.parametrize(
    ("args", "requests"),
    [
        (["--until", "9999-12-31"], "6"),  # the whole last day: the period ends at the end of time
        (["--since", "9999-12-31", "--until", "9999-12-31"], "0"),
        (["--until", "9999-12-31T23:59:59.999999"], "6"),
        (["--until", "0001-01-01T00:00:00.000001"], "0"),
        (["--since", "0001-01-01", "--until", "0001-01-01"], "0"),
        (["--since", "0001-01-01T00:00Z"], "6"),
    ],
)
def test_periods_at_the_edges_of_time(cli: Cli, sample: Path, args: list[str], requests: str) -> None:
    r = cli(["usage", "--csv", *args])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0] == f"model,{HEADER.replace(chr(9), ',')}"
    assert str(sum(int(row.split(",")[1]) for row in r.stdout.splitlines()[1:])) == requests


def test_unknown_grouping_is_a_usage_error(cli: Cli) -> None:
    r = cli(["usage", "--by", "user"])
    assert (r.exit_code, r.stdout) == (2, "")
    assert "'user' is not one of 'model', 'day', 'tag', 'command'" in r.stderr


def test_unreadable_ledger_is_66(cli: Cli, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated / "ledger" / "2026-11.jsonl").mkdir(parents=True)
    r = cli(["usage"])
    assert (r.exit_code, r.stdout) == (66, "")
    assert r.stderr == f"evocli: error: cannot read the usage ledger file {isolated}/ledger/2026-11.jsonl: Is a directory\n"
    monkeypatch.setenv("EVOCLI_LEDGER_DIR", str(isolated / "config.yaml"))
    (isolated / "config.yaml").write_text("")
    r = cli(["usage"])
    assert (r.exit_code, r.stderr) == (66, f"evocli: error: cannot read the usage ledger in {isolated}/config.yaml: Not a directory\n")


def test_report_needs_no_key_and_runs_no_key_command(
    cli: Cli, sample: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVOCLI_LEDGER_DIR")
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"api_key_command: touch {isolated / 'ran'}\nledger_dir: {sample}\n")
    r = cli(["usage", "--by", "command"])
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.startswith("command\t")
    assert len(r.stdout.splitlines()) == 4
    assert not (isolated / "ran").exists()


def test_bad_config_still_fails(cli: Cli, isolated: Path) -> None:
    cfg = isolated / "config" / "evocli" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("ledgr_dir: /tmp\n")
    r = cli(["usage"])
    assert (r.exit_code, r.stdout) == (78, "")
    assert r.stderr.startswith(f"evocli: error: config file {cfg}: unknown key 'ledgr_dir'\n")


def test_calls_then_report_end_to_end(api_env: FakeServer, isolated: Path) -> None:
    for args in (["--tag", "nightly"], ["--tag", "nightly"], ["-m", "gpt-5.2-mini"]):
        assert run_evocli(["ask", "--no-stdin", *args, "hi"]).returncode == 0
    r = run_evocli(["usage", "--by", "tag", "--since", "1h"])
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines()[0] == f"tag\t{HEADER}"
    rows = [row.split("\t")[:9] for row in r.stdout.splitlines()[1:]]
    assert rows == [["nightly", "2", "0", "24", "14", "6", "4", "0", "38"], ["", "1", "0", "12", "7", "3", "2", "0", "19"]]
