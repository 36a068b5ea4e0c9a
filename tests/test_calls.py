"""`usage --calls` (pure): one row per call, newest last, filters, limits, every format."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from evocli import ledger_calls
from evocli.ledger_calls import calls, last_calls
from evocli.ledger_read import Period, make_period
from evocli.report import calls_chunks, render_calls
from tests.test_ledger_read import NOW, SAMPLE, line
from tests.test_report import PRICES

COLUMNS = ("ts\tcommand\tmodel\ttag\tprompt_tokens\tcompletion_tokens\treasoning_tokens\tcached_tokens\timage_tokens\t"
           "total_tokens")


def times(listing: ledger_calls.Calls) -> list[str]:
    return [call.ts for call in listing.rows]


def test_every_call_oldest_first_without_prices() -> None:
    listing = last_calls(SAMPLE)
    assert render_calls(listing, "tsv") == (
        f"{COLUMNS}\tlatency_ms\texit_code\n"
        "2026-10-31T23:59:59.999Z\task\tgpt-5.2\tnightly\t10\t5\t1\t2\t0\t15\t100\t0\n"
        "2026-11-01T00:00:00.000Z\task\tgpt-5.2\tnightly\t20\t10\t2\t4\t0\t30\t200\t0\n"
        "2026-11-01T12:00:00.000Z\tchat-file\tgpt-5.2-mini\t\t5\t5\t0\t0\t0\t10\t50\t0\n"
        "2026-11-02T08:00:00.000Z\task\tgpt-5.2\tci\t0\t0\t0\t0\t0\t0\t1000\t75\n"
        "2026-11-30T23:00:00.000Z\tbatch\tclaude-sonnet-4.5\tci\t100\t50\t10\t20\t0\t150\t300\t0\n"
        "2026-12-01T00:00:00.000Z\task\tgpt-5.2\t\t1\t1\t0\t0\t0\t2\t10\t0\n"
    )
    assert render_calls(listing, "table") == (
        "time                      command    model              tag      prompt  completion  reasoning  cached  image  total     ms  exit\n"
        "2026-10-31T23:59:59.999Z  ask        gpt-5.2            nightly      10           5          1       2      0     15    100     0\n"
        "2026-11-01T00:00:00.000Z  ask        gpt-5.2            nightly      20          10          2       4      0     30    200     0\n"
        "2026-11-01T12:00:00.000Z  chat-file  gpt-5.2-mini       -             5           5          0       0      0     10     50     0\n"
        "2026-11-02T08:00:00.000Z  ask        gpt-5.2            ci            0           0          0       0      0      0  1,000    75\n"
        "2026-11-30T23:00:00.000Z  batch      claude-sonnet-4.5  ci          100          50         10      20      0    150    300     0\n"
        "2026-12-01T00:00:00.000Z  ask        gpt-5.2            -             1           1          0       0      0      2     10     0\n"
    )
    assert listing.unpriced == []


def test_the_last_calls_with_prices_in_every_format() -> None:
    listing = last_calls(SAMPLE, limit=3, prices=PRICES)
    assert [c.cost for c in listing.rows] == [Decimal(0), None, Decimal("0.00001575")]
    assert listing.unpriced == ["claude-sonnet-4.5"]
    assert render_calls(listing, "tsv") == (
        f"{COLUMNS}\tcost\tlatency_ms\texit_code\n"
        "2026-11-02T08:00:00.000Z\task\tgpt-5.2\tci\t0\t0\t0\t0\t0\t0\t0\t1000\t75\n"
        "2026-11-30T23:00:00.000Z\tbatch\tclaude-sonnet-4.5\tci\t100\t50\t10\t20\t0\t150\t\t300\t0\n"
        "2026-12-01T00:00:00.000Z\task\tgpt-5.2\t\t1\t1\t0\t0\t0\t2\t0.00001575\t10\t0\n"
    )
    assert render_calls(listing, "csv") == (
        f"{COLUMNS.replace(chr(9), ',')},cost,latency_ms,exit_code\n"
        "2026-11-02T08:00:00.000Z,ask,gpt-5.2,ci,0,0,0,0,0,0,0,1000,75\n"
        "2026-11-30T23:00:00.000Z,batch,claude-sonnet-4.5,ci,100,50,10,20,0,150,,300,0\n"
        "2026-12-01T00:00:00.000Z,ask,gpt-5.2,,1,1,0,0,0,2,0.00001575,10,0\n"
    )
    assert render_calls(listing, "json") == (
        "{\n"
        '  "columns": ["ts", "command", "model", "tag", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "cost", "latency_ms", "exit_code"],\n'
        '  "rows": [\n'
        '    {"ts": "2026-11-02T08:00:00.000Z", "command": "ask", "model": "gpt-5.2", "tag": "ci", "prompt_tokens": 0, '
        '"completion_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "total_tokens": 0, '
        '"cost": 0, "latency_ms": 1000, "exit_code": 75},\n'
        '    {"ts": "2026-11-30T23:00:00.000Z", "command": "batch", "model": "claude-sonnet-4.5", "tag": "ci", '
        '"prompt_tokens": 100, "completion_tokens": 50, "reasoning_tokens": 10, "cached_tokens": 20, "image_tokens": 0, '
        '"total_tokens": 150, "cost": null, "latency_ms": 300, "exit_code": 0},\n'
        '    {"ts": "2026-12-01T00:00:00.000Z", "command": "ask", "model": "gpt-5.2", "tag": null, "prompt_tokens": 1, '
        '"completion_tokens": 1, "reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "total_tokens": 2, '
        '"cost": 0.00001575, "latency_ms": 10, "exit_code": 0}\n'
        "  ],\n"
        '  "price_unit": "USD"\n'
        "}\n"
    )
    assert render_calls(listing, "table") == (
        "time                      command  model              tag  prompt  completion  reasoning  cached  image  total  cost USD     ms  exit\n"
        "2026-11-02T08:00:00.000Z  ask      gpt-5.2            ci        0           0          0       0      0      0    0.0000  1,000    75\n"
        "2026-11-30T23:00:00.000Z  batch    claude-sonnet-4.5  ci      100          50         10      20      0    150         -    300     0\n"
        "2026-12-01T00:00:00.000Z  ask      gpt-5.2            -         1           1          0       0      0      2   <0.0001     10     0\n"
    )


def test_no_calls() -> None:
    assert render_calls(last_calls([]), "json") == (
        '{\n  "columns": ["ts", "command", "model", "tag", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "latency_ms", "exit_code"],\n  "rows": []\n}\n')
    assert render_calls(last_calls(SAMPLE, limit=0), "tsv") == f"{COLUMNS}\tlatency_ms\texit_code\n"


@pytest.mark.parametrize(
    ("period", "tags", "limit", "expected"),
    [
        (Period(), (), 2, ["2026-11-30T23:00:00.000Z", "2026-12-01T00:00:00.000Z"]),
        (Period(), (), 100, None),  # all six
        (make_period("2026-11-01", "2026-11-01", NOW), (), None, ["2026-11-01T00:00:00.000Z", "2026-11-01T12:00:00.000Z"]),
        (make_period("2026-11-01T06:00", None, NOW), ("ci",), None, ["2026-11-02T08:00:00.000Z", "2026-11-30T23:00:00.000Z"]),
        (Period(), ("nightly",), 1, ["2026-11-01T00:00:00.000Z"]),
        (make_period("2027-01-01", None, NOW), (), 5, []),
    ],
)
def test_filters_and_limits(period: Period, tags: tuple[str, ...], limit: int | None, expected: list[str] | None) -> None:
    listing = last_calls(SAMPLE, period, tags, limit)
    assert times(listing) == (expected if expected is not None else times(last_calls(SAMPLE)))


def test_calls_out_of_order_are_listed_in_time_order_ties_in_ledger_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two writers can append in the other order than their times; equal times keep the file's order.
    lines = [line("2026-11-01T10:00:02+00:00", tag="b"), line("2026-11-01T10:00:01+00:00", tag="a"),
             line("2026-11-01T10:00:02+00:00", tag="c"), b"garbage\n", line("2026-11-01T09:00:00+00:00", tag="z")]
    listing = last_calls([b"".join(lines)], limit=3)
    assert [c.tag for c in listing.rows] == ["a", "b", "c"]
    assert listing.corrupt == 1
    # Kept calls are trimmed to the limit as blocks come in: the answer does not change.
    monkeypatch.setattr(ledger_calls, "_SLACK", 0)
    assert [c.tag for c in last_calls(lines, limit=3).rows] == ["a", "b", "c"]
    assert [c.tag for c in last_calls(lines * 50, limit=2).rows] == ["b", "c"]  # the last copies of b and c
    many = last_calls(lines * 50, limit=5)
    assert ([c.tag for c in many.rows], many.corrupt) == (["c", "b", "c", "b", "c"], 50)


def test_image_tokens_and_old_records_in_the_listing() -> None:
    new = line("2026-11-01T10:00:00+00:00", tokens=(900, 10, 0, 0), image=765)
    old = line("2026-11-01T09:00:00+00:00").replace(b',"image_tokens":0}', b"}")
    assert [c.tokens["image_tokens"] for c in last_calls([old + new]).rows] == [0, 765]


def test_a_record_without_an_exit_code() -> None:
    other = b'{"ts":"2026-11-01T09:00:00Z","ok":true,"model":"m","exit_code":"x"}\n'
    [call] = last_calls([other]).rows
    assert (call.exit_code, call.command, call.latency_ms) == (None, None, 0)
    assert render_calls(last_calls([other]), "tsv").splitlines()[1] == "2026-11-01T09:00:00.000Z\t\tm\t\t0\t0\t0\t0\t0\t0\t0\t"


def test_newest_months_first_and_no_further_than_needed(tmp_path: Path) -> None:
    (tmp_path / "2026-10.jsonl").write_bytes(SAMPLE[0] + b"garbage\n")
    (tmp_path / "2026-11.jsonl").write_bytes(b"".join(SAMPLE[1:5]))
    (tmp_path / "2026-12.jsonl").write_bytes(SAMPLE[5])
    last_two = calls(tmp_path, limit=2)
    assert times(last_two) == ["2026-11-30T23:00:00.000Z", "2026-12-01T00:00:00.000Z"]
    assert last_two.corrupt == 0  # October's file was never read
    every = calls(tmp_path)
    assert (times(every), every.corrupt) == (times(last_calls(SAMPLE)), 1)
    assert times(calls(tmp_path, make_period(None, "2026-10-31", NOW), limit=5)) == ["2026-10-31T23:59:59.999Z"]
    assert list(calls(tmp_path / "missing").rows) == []


def test_every_call_is_read_month_by_month_as_it_is_written(tmp_path: Path) -> None:
    (tmp_path / "2026-10.jsonl").write_bytes(SAMPLE[0])
    (tmp_path / "2026-11.jsonl").write_bytes(b"".join(SAMPLE[1:5]) + b"garbage\n")
    (tmp_path / "2026-12.jsonl").write_bytes(SAMPLE[5])
    listing = calls(tmp_path, prices=PRICES)
    rows = iter(listing.rows)
    assert next(rows).ts == "2026-10-31T23:59:59.999Z"
    assert listing.corrupt == 0  # November not read yet
    assert next(rows).ts == "2026-11-01T00:00:00.000Z"
    assert (listing.corrupt, listing.unpriced) == (1, [])
    assert [c.ts[:10] for c in rows] == ["2026-11-01", "2026-11-02", "2026-11-30", "2026-12-01"]
    assert listing.unpriced == ["claude-sonnet-4.5"]
    # Written a line at a time, the same text as the whole listing at once.
    for fmt in ("tsv", "csv", "json"):
        pieces = list(calls_chunks(calls(tmp_path, prices=PRICES), fmt))
        assert "".join(pieces) == render_calls(last_calls(SAMPLE, prices=PRICES), fmt)
        assert len(pieces) >= 7
