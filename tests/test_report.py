"""Usage reports (pure): the cost column in every format, two keys, the day chart, image tokens."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from evocli import ledger_sum
from evocli.cost import Price, Prices
from evocli.ledger_sum import summarize
from evocli.report import bar, render
from tests.test_ledger_read import SAMPLE, line

PRICES = Prices({"gpt-5.2": Price(input=1.75, cached_input=0.175, output=14), "gpt-5.2-mini": Price(input=0.25, output=2)})
HEADER = ("requests\terrors\tprompt_tokens\tcompletion_tokens\treasoning_tokens\tcached_tokens\timage_tokens\t"
          "total_tokens\tmean_latency_ms")
TOTALS = ('"totals": {"requests": 6, "errors": 1, "prompt_tokens": 136, "completion_tokens": 71, "reasoning_tokens": 13, '
          '"cached_tokens": 26, "image_tokens": 0, "total_tokens": 207, "mean_latency_ms": 277')


# --- cost ------------------------------------------------------------------------------------------


def test_cost_per_model_and_the_models_without_a_price() -> None:
    report = summarize(SAMPLE, "model", prices=PRICES)
    # gpt-5.2: (31 - 6) * 1.75 + 6 * 0.175 + 16 * 14 = 268.8 per million (its reasoning is in the 16);
    # gpt-5.2-mini: 5 * 0.25 + 5 * 2 = 11.25 per million (no cached price: cached would cost the input price).
    assert [(key, t.cost) for key, t in report.rows] == [
        (("claude-sonnet-4.5",), None), (("gpt-5.2",), Decimal("0.0002688")), (("gpt-5.2-mini",), Decimal("0.00001125"))]
    assert report.totals.cost == Decimal("0.00028005")  # the priced calls only
    assert report.unpriced == ["claude-sonnet-4.5"]
    assert summarize(SAMPLE, "model").unpriced == []
    assert summarize(SAMPLE, "model").totals.cost is None


def test_tsv_csv_and_json_with_prices() -> None:
    report = summarize(SAMPLE, "model", prices=PRICES)
    assert render(report, "tsv") == (
        f"model\t{HEADER}\tcost\n"
        "claude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\t\n"
        "gpt-5.2\t4\t1\t31\t16\t3\t6\t0\t47\t328\t0.0002688\n"
        "gpt-5.2-mini\t1\t0\t5\t5\t0\t0\t0\t10\t50\t0.00001125\n"
    )
    assert render(report, "csv") == (
        f"model,{HEADER.replace(chr(9), ',')},cost\n"
        "claude-sonnet-4.5,1,0,100,50,10,20,0,150,300,\n"
        "gpt-5.2,4,1,31,16,3,6,0,47,328,0.0002688\n"
        "gpt-5.2-mini,1,0,5,5,0,0,0,10,50,0.00001125\n"
    )
    assert render(report, "json") == (
        "{\n"
        '  "by": "model",\n'
        '  "columns": ["model", "requests", "errors", "prompt_tokens", "completion_tokens", "reasoning_tokens", '
        '"cached_tokens", "image_tokens", "total_tokens", "mean_latency_ms", "cost"],\n'
        '  "rows": [\n'
        '    {"model": "claude-sonnet-4.5", "requests": 1, "errors": 0, "prompt_tokens": 100, "completion_tokens": 50, '
        '"reasoning_tokens": 10, "cached_tokens": 20, "image_tokens": 0, "total_tokens": 150, "mean_latency_ms": 300, '
        '"cost": null},\n'
        '    {"model": "gpt-5.2", "requests": 4, "errors": 1, "prompt_tokens": 31, "completion_tokens": 16, '
        '"reasoning_tokens": 3, "cached_tokens": 6, "image_tokens": 0, "total_tokens": 47, "mean_latency_ms": 328, '
        '"cost": 0.0002688},\n'
        '    {"model": "gpt-5.2-mini", "requests": 1, "errors": 0, "prompt_tokens": 5, "completion_tokens": 5, '
        '"reasoning_tokens": 0, "cached_tokens": 0, "image_tokens": 0, "total_tokens": 10, "mean_latency_ms": 50, '
        '"cost": 0.00001125}\n'
        "  ],\n"
        f"  {TOTALS}, \"cost\": 0.00028005}},\n"
        '  "price_unit": "USD"\n'
        "}\n"
    )


def test_table_with_prices() -> None:
    lines = [
        line("2026-11-01T10:00:00+00:00", tokens=(1_000_000, 100_000, 40_000, 200_000)),  # 1.4 + 0.035 + 1.4
        line("2026-11-01T11:00:00+00:00", model="gpt-5.2-mini", tokens=(400_000, 49_999, 0, 0)),  # 0.1 + 0.099998
        line("2026-11-02T09:00:00+00:00", model="claude-sonnet-4.5", tokens=(10_000, 1_000, 0, 0)),
    ]
    report = summarize(lines, "model", prices=Prices(PRICES.models, "EUR"))
    assert render(report, "table") == (
        "model              requests  errors     prompt  completion  reasoning   cached  image      total  mean ms  cost EUR\n"
        "claude-sonnet-4.5         1       0     10,000       1,000          0        0      0     11,000      100         -\n"
        "gpt-5.2                   1       0  1,000,000     100,000     40,000  200,000      0  1,100,000      100    2.8350\n"
        "gpt-5.2-mini              1       0    400,000      49,999          0        0      0    449,999      100    0.2000\n"
        "total                     3       0  1,410,000     150,999     40,000  200,000      0  1,560,999      100    3.0350\n"
    )
    assert render(summarize(lines, "model"), "table").splitlines()[0].endswith("total  mean ms")


def test_cost_is_summed_per_model_inside_each_day() -> None:
    # On 2026-11-01 two models priced differently: each is priced on its own tokens.
    report = summarize(SAMPLE, "day", prices=PRICES)
    assert render(report, "tsv") == (
        f"day\t{HEADER}\tcost\n"
        "2026-10-31\t1\t0\t10\t5\t1\t2\t0\t15\t100\t0.00008435\n"  # 8 * 1.75 + 2 * 0.175 + 5 * 14 = 84.35
        "2026-11-01\t2\t0\t25\t15\t2\t4\t0\t40\t125\t0.00017995\n"  # 168.7 (gpt-5.2) + 11.25 (mini)
        "2026-11-02\t1\t1\t0\t0\t0\t0\t0\t0\t1000\t0\n"  # a failed call of a priced model costs 0
        "2026-11-30\t1\t0\t100\t50\t10\t20\t0\t150\t300\t\n"  # no price
        "2026-12-01\t1\t0\t1\t1\t0\t0\t0\t2\t10\t0.00001575\n"
    )
    assert report.totals.cost == Decimal("0.00028005")  # the same total as by model
    # With one price for both, the day would have cost 21 * 1.75 + 4 * 0.175 + 15 * 14 = 247.45.
    assert report.rows[1][1].cost != Decimal("0.00024745")


# --- two keys ----------------------------------------------------------------------------------------


def test_two_keys_one_row_per_pair() -> None:
    report = summarize(SAMPLE, ["tag", "model"], prices=PRICES)
    assert report.by == ("tag", "model")
    assert render(report, "tsv") == (
        f"tag\tmodel\t{HEADER}\tcost\n"
        "ci\tclaude-sonnet-4.5\t1\t0\t100\t50\t10\t20\t0\t150\t300\t\n"
        "ci\tgpt-5.2\t1\t1\t0\t0\t0\t0\t0\t0\t1000\t0\n"
        "nightly\tgpt-5.2\t2\t0\t30\t15\t3\t6\t0\t45\t150\t0.00025305\n"  # 24 * 1.75 + 6 * 0.175 + 15 * 14
        "\tgpt-5.2\t1\t0\t1\t1\t0\t0\t0\t2\t10\t0.00001575\n"
        "\tgpt-5.2-mini\t1\t0\t5\t5\t0\t0\t0\t10\t50\t0.00001125\n"
    )
    assert render(report, "csv").splitlines()[:2] == [
        f"tag,model,{HEADER.replace(chr(9), ',')},cost", "ci,claude-sonnet-4.5,1,0,100,50,10,20,0,150,300,"]
    assert render(report, "table") == (
        "tag      model              requests  errors  prompt  completion  reasoning  cached  image  total  mean ms  cost USD\n"
        "ci       claude-sonnet-4.5         1       0     100          50         10      20      0    150      300         -\n"
        "ci       gpt-5.2                   1       1       0           0          0       0      0      0    1,000    0.0000\n"
        "nightly  gpt-5.2                   2       0      30          15          3       6      0     45      150    0.0003\n"
        "(none)   gpt-5.2                   1       0       1           1          0       0      0      2       10   <0.0001\n"
        "(none)   gpt-5.2-mini              1       0       5           5          0       0      0     10       50   <0.0001\n"
        "total                              6       1     136          71         13      26      0    207      277    0.0003\n"
    )


def test_two_keys_in_json() -> None:
    text = render(summarize(SAMPLE, ["command", "day"]), "json")
    assert text.startswith(
        "{\n"
        '  "by": ["command", "day"],\n'
        '  "columns": ["command", "day", "requests", "errors", "prompt_tokens", "completion_tokens", '
        '"reasoning_tokens", "cached_tokens", "image_tokens", "total_tokens", "mean_latency_ms"],\n'
        '  "rows": [\n'
        '    {"command": "ask", "day": "2026-10-31", "requests": 1, "errors": 0, "prompt_tokens": 10, '
        '"completion_tokens": 5, "reasoning_tokens": 1, "cached_tokens": 2, "image_tokens": 0, "total_tokens": 15, '
        '"mean_latency_ms": 100},\n'
    )
    assert text.endswith(f"  ],\n  {TOTALS}}}\n}}\n")
    assert [re.match(r'    \{"command": "([a-z-]+)", "day": "([0-9-]+)"', row).groups()  # type: ignore[union-attr]
            for row in text.splitlines()[4:10]] == [
        ("ask", "2026-10-31"), ("ask", "2026-11-01"), ("ask", "2026-11-02"), ("ask", "2026-12-01"),
        ("batch", "2026-11-30"), ("chat-file", "2026-11-01")]


@pytest.mark.parametrize("by", [["model", "model"], ["tag", "model", "day"], ["user"], ["day", "user"]])
def test_groupings_refused(by: list[str]) -> None:
    with pytest.raises(ValueError, match="unknown grouping"):
        summarize(SAMPLE, by)


# --- the day chart -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "largest", "width", "drawn"),
    [
        (24, 24, 24, "█" * 24),
        (1, 24, 24, "█"),
        (1, 192, 24, "▏"),  # one eighth of a cell
        (3, 8, 1, "▍"),
        (5, 8, 1, "▋"),
        (7, 8, 1, "▉"),
        (9, 16, 2, "█▏"),
        (1, 10**9, 24, "▏"),  # anything above zero shows
        (0, 10, 24, ""),
        (0, 0, 24, ""),
        (Decimal("0.5"), Decimal("2.0"), 4, "█"),
        (Decimal("0.0001"), Decimal("0.0016"), 1, "▏"),  # 0.5 of an eighth rounds up
    ],
)
def test_bar(amount: int | Decimal, largest: int | Decimal, width: int, drawn: str) -> None:
    assert bar(amount, largest, width) == drawn


def test_day_table_charts_total_tokens() -> None:
    assert render(summarize(SAMPLE, "day"), "table") == (
        "day         requests  errors  prompt  completion  reasoning  cached  image  total  mean ms\n"
        "2026-10-31         1       0      10           5          1       2      0     15      100  ██▍\n"  # 15/150
        "2026-11-01         2       0      25          15          2       4      0     40      125  ██████▍\n"
        "2026-11-02         1       1       0           0          0       0      0      0    1,000\n"
        "2026-11-30         1       0     100          50         10      20      0    150      300  ████████████████████████\n"
        "2026-12-01         1       0       1           1          0       0      0      2       10  ▍\n"
        "total              6       1     136          71         13      26      0    207      277\n"
    )


def test_day_table_charts_cost_when_priced() -> None:
    assert render(summarize(SAMPLE, "day", prices=PRICES), "table") == (
        "day         requests  errors  prompt  completion  reasoning  cached  image  total  mean ms  cost USD\n"
        "2026-10-31         1       0      10           5          1       2      0     15      100    0.0001  ███████████▎\n"
        "2026-11-01         2       0      25          15          2       4      0     40      125    0.0002  ████████████████████████\n"
        "2026-11-02         1       1       0           0          0       0      0      0    1,000    0.0000\n"
        "2026-11-30         1       0     100          50         10      20      0    150      300         -\n"
        "2026-12-01         1       0       1           1          0       0      0      2       10   <0.0001  ██▏\n"
        "total              6       1     136          71         13      26      0    207      277    0.0003\n"
    )


def test_no_chart_outside_the_table_or_for_other_groupings() -> None:
    for fmt in ("tsv", "csv", "json"):
        assert not set("█▏▎▍▌▋▊▉") & set(render(summarize(SAMPLE, "day", prices=PRICES), fmt))
    assert not set("█▏▍") & set(render(summarize(SAMPLE, ["day", "model"]), "table"))
    assert not set("█▏▍") & set(render(summarize(SAMPLE, "model"), "table"))
    assert render(summarize([], "day"), "table") == (
        "day  requests  errors  prompt  completion  reasoning  cached  image  total  mean ms\n")


# --- image tokens, old records ---------------------------------------------------------------------


def test_image_tokens_are_summed() -> None:
    lines = [line("2026-11-01T10:00:00+00:00", tokens=(900, 10, 0, 0), image=765),
             line("2026-11-01T11:00:00+00:00", tokens=(100, 10, 0, 0), image=85)]
    [(key, tally)] = summarize(lines).rows
    assert (key, tally.image_tokens, tally.values()["image_tokens"]) == (("gpt-5.2",), 850, 850)


def test_records_from_before_image_tokens_read_as_zero() -> None:
    new = [line("2026-11-01T10:00:00+00:00", tokens=(900, 10, 0, 0), image=765)]
    old = [re.sub(rb',"image_tokens":[0-9]+\}', b"}", ln) for ln in SAMPLE]
    assert all(b"image_tokens" not in ln for ln in old)
    report = summarize([b"".join(old + new)], prices=PRICES)
    assert report.corrupt == 0
    assert render(report, "tsv").splitlines()[2] == "gpt-5.2\t5\t1\t931\t26\t3\t6\t765\t957\t282\t0.0019838"


def test_parallel_report_with_prices_and_two_keys_equals_the_sequential_one(tmp_path: Path) -> None:
    (tmp_path / "2026-10.jsonl").write_bytes(SAMPLE[0])
    (tmp_path / "2026-11.jsonl").write_bytes(b"".join(SAMPLE[1:5]) * 40)
    (tmp_path / "2026-12.jsonl").write_bytes(SAMPLE[5])
    one = ledger_sum.report(tmp_path, ["day", "model"], prices=PRICES, workers=1)
    many = ledger_sum.report(tmp_path, ["day", "model"], prices=PRICES, workers=3, parallel_min_bytes=1)
    assert render(many, "json") == render(one, "json")
    assert one.totals.requests == 162
    assert one.unpriced == many.unpriced == ["claude-sonnet-4.5"]
