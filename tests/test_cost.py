"""Cost (pure): the prices table and its checks, exact arithmetic, the batch budget and its thread safety."""

from __future__ import annotations

import sys
import threading
from decimal import Decimal
from typing import Any

import pytest

from evocli import cost
from evocli.cost import Budget, Price, Prices
from evocli.errors import ConfigError, ExitCode, UsageError

PRICES = Prices({"gpt-5.2": Price(input=1.75, cached_input=0.175, output=14), "mini": Price(input=0.25, output=2)})


# --- arithmetic ------------------------------------------------------------------------------------


def test_cost_bills_cached_tokens_at_their_price_and_reasoning_as_output() -> None:
    # (1000 - 400) * 1.75 + 400 * 0.175 + 500 * 14 = 1050 + 70 + 7000 = 8120 per million
    assert cost.cost(PRICES.models["gpt-5.2"], prompt=1000, cached=400, completion=500) == Decimal("0.00812")
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
             "prompt_tokens_details": {"cached_tokens": 400},
             "completion_tokens_details": {"reasoning_tokens": 300}}  # part of the 500: not billed again
    assert cost.call_cost(PRICES, "gpt-5.2", usage) == Decimal("0.00812")


def test_cached_tokens_without_a_cached_price_cost_the_input_price() -> None:
    # 1000 * 0.25 + 500 * 2 = 1250 per million, whatever part of the prompt was cached
    usage = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 400}}
    assert cost.call_cost(PRICES, "mini", usage) == Decimal("0.00125")


def test_a_model_without_a_price_has_no_cost() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5}
    assert cost.call_cost(PRICES, "claude-sonnet-4.5", usage) is None
    assert cost.call_cost(PRICES, None, usage) is None
    assert cost.call_cost(None, "gpt-5.2", usage) is None
    assert cost.call_cost(PRICES, "gpt-5.2", None) == 0
    assert cost.unpriced(PRICES, ["gpt-5.2", "b", None, "a", "b"]) == ["a", "b"]
    assert cost.unpriced(None, ["a"]) == []
    assert cost.unpriced_warning([]) is None
    assert cost.unpriced_warning(["a", "b"]) == "no price for a, b: their cost shows as - and the totals leave it out"


def test_arithmetic_is_exact_decimal() -> None:
    price = Price(input=0.1, output=0.2)
    # In binary floating point 3 * 0.1 is 0.30000000000000004.
    assert cost.number_text(cost.cost(price, 3, 0, 0)) == "0.0000003"
    total = None
    for _ in range(10):
        total = cost.add(total, cost.cost(price, 1, 0, 0))
    assert total == Decimal("0.000001")
    # Sums far beyond a float's 17 digits stay exact.
    big = cost.cost(Price(input=1.75, output=14.000001), 2_181_894_155_123, 0, 999_999_999_999)
    assert cost.number_text(big) == "17818315.771451249999"


def test_number_and_display_texts() -> None:
    assert [cost.number_text(Decimal(v)) for v in ("0", "0E-6", "12.500000", "1E+2", "0.000123000")] == [
        "0", "0", "12.5", "100", "0.000123"]
    assert [cost.display_text(Decimal(v)) for v in ("0", "0.00005", "0.00004999", "1234.56785", "1E+6")] == [
        "0.0000", "0.0001", "<0.0001", "1,234.5679", "1,000,000.0000"]
    assert cost.display_text(Decimal("0.004"), places=2) == "<0.01"


def test_add() -> None:
    assert cost.add(None, None) is None
    assert cost.add(None, Decimal("0.5")) == Decimal("0.5")
    assert cost.add(Decimal("0.5"), None) == Decimal("0.5")
    assert cost.add(Decimal("0.1"), Decimal("0.2")) == Decimal("0.3")


# --- the config keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"gpt-5.2": {"input": 1.75, "cached_input": 0.175, "output": 14}}, None),
        ({"gpt-5.2": {"input": 0, "output": 0}}, None),  # free, and cached_input may be left out
        ({}, None),
        ([], "expected a mapping of model ids to prices, got a list"),
        ("gpt-5.2", "expected a mapping of model ids to prices, got the text 'gpt-5.2'"),
        ({5: {"input": 1, "output": 1}}, "model ids must be text, got 5"),
        ({"m": 1.5}, "m: expected a mapping with input, cached_input and output, got the number 1.5"),
        ({"m": None}, "m: expected a mapping with input, cached_input and output, got nothing"),
        ({"m": {"input": 1}}, "m: output is missing"),
        ({"m": {"output": 1}}, "m: input is missing"),
        ({"m": {"input": 1, "output": 1, "cache": 1}}, "m: unknown field 'cache' (known: input, cached_input, output)"),
        ({"m": {"input": -1, "output": 1}}, "m.input: expected a price (a number, 0 or more), got -1"),
        ({"m": {"input": 1, "output": float("nan")}}, "m.output: expected a price (a number, 0 or more), got nan"),
        ({"m": {"input": 1, "output": float("inf")}}, "m.output: expected a price (a number, 0 or more), got inf"),
        ({"m": {"input": "1.5", "output": 1}},
         "m.input: expected a price (a number, 0 or more), got the text '1.5'"),
        ({"m": {"input": True, "output": 1}}, "m.input: expected a price (a number, 0 or more), got true or false"),
        ({"m": {"input": 1, "output": 1, "cached_input": None}},
         "m.cached_input: expected a price (a number, 0 or more), got nothing"),
    ],
)
def test_prices_problem(value: Any, problem: str | None) -> None:
    assert cost.prices_problem(value) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("USD", None),
        ("credits", None),
        ("", "expected a label such as USD, got the text ''"),
        (" ", "expected a label such as USD, got the text ' '"),
        (5, "expected a label such as USD, got the number 5"),
        (b"USD", "expected a label such as USD, got bytes"),
        ("US\nD", "expected a label on one line, without control characters"),
    ],
)
def test_price_unit_problem(value: Any, problem: str | None) -> None:
    assert cost.price_unit_problem(value) == problem


def test_the_config_file_check_names_the_file_and_key() -> None:
    from evocli.config import parse_config_text

    parse_config_text(b"prices: {m: {input: 1, output: 2}}\nprice_unit: EUR\nmodel: x\n", "c.yaml")
    with pytest.raises(ConfigError) as err:
        parse_config_text(b"prices: {m: {input: 1, output: -2}}\n", "c.yaml")
    assert err.value.message == "config file c.yaml: prices: m.output: expected a price (a number, 0 or more), got -2"
    assert err.value.code == ExitCode.CONFIG
    with pytest.raises(ConfigError, match=r"^config file c.yaml: price_unit: expected a label such as USD, got nothing$"):
        parse_config_text(b"price_unit: null\n", "c.yaml")


def test_prices_from_config() -> None:
    assert cost.prices_from_config({}) is None
    assert cost.prices_from_config({"prices": {}, "price_unit": "EUR"}) is None
    prices = cost.prices_from_config({"prices": {"m": {"input": 1, "output": 2.5}}})
    assert prices == Prices({"m": Price(input=1, output=2.5)}, "USD")
    assert cost.prices_from_config({"prices": {"m": {"input": 1, "output": 2}}, "price_unit": "EUR"}).unit == "EUR"  # type: ignore[union-attr]


# --- budgets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("5", Decimal(5)), (" 0.50 ", Decimal("0.50")), ("0", Decimal(0)),
                                             ("1e3", Decimal(1000))])
def test_parse_max_cost(text: str, value: Decimal) -> None:
    assert cost.parse_max_cost(text) == value


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "-inf", "abc", "", "1,5"])
def test_parse_max_cost_refuses(text: str) -> None:
    with pytest.raises(UsageError) as err:
        cost.parse_max_cost(text)
    assert (err.value.message, err.value.code) == (f"--max-cost expects an amount, 0 or more, got {text!r}", 2)


def test_max_cost_needs_a_price_for_every_model() -> None:
    cost.check_budget_models(PRICES, ["gpt-5.2", "mini", "gpt-5.2"])
    with pytest.raises(UsageError) as err:
        cost.check_budget_models(PRICES, ["gpt-5.2", "z", "claude", "z"])
    assert err.value.message == "--max-cost needs a price for every model; none for claude, z"
    assert err.value.hint == "add them under prices: in the config file (input, cached_input, output per million tokens)"
    with pytest.raises(UsageError, match=r"none for gpt-5\.2$"):
        cost.check_budget_models(None, ["gpt-5.2"])


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def test_token_cap() -> None:
    budget = Budget(max_total_tokens=1000)
    assert not budget.reached()
    budget.spend("any-model", usage(400, 100))
    budget.spend("any-model", usage(400, 99))
    assert (budget.tokens, budget.reached()) == (999, False)
    budget.spend("any-model", None)  # a failed call spent nothing
    assert not budget.reached()
    budget.spend("any-model", usage(1, 0))
    assert (budget.tokens, budget.reached()) == (1000, True)  # reaching the cap is enough
    assert Budget(max_total_tokens=0).reached()
    with pytest.raises(UsageError, match="--max-total-tokens expects a count, 0 or more, got -1"):
        Budget(max_total_tokens=-1)


def test_total_tokens_fall_back_to_prompt_plus_completion() -> None:
    budget = Budget(max_total_tokens=10)
    budget.spend("m", {"prompt_tokens": 6, "completion_tokens": 4})
    assert (budget.tokens, budget.reached()) == (10, True)


def test_cost_cap() -> None:
    budget = Budget(PRICES, max_cost=Decimal("0.01"))
    budget.spend("gpt-5.2", usage(1000, 500, cached=400))  # 0.00812
    assert (budget.cost, budget.reached()) == (Decimal("0.00812"), False)
    budget.spend("mini", usage(1000, 500))  # 0.00125
    assert (budget.cost, budget.reached()) == (Decimal("0.00937"), False)
    budget.spend("mini", usage(1000, 130))  # 0.00051: 0.00988
    assert not budget.reached()
    budget.spend("mini", usage(479, 0))  # 0.00011975: 0.00999975
    assert not budget.reached()
    budget.spend("mini", usage(1, 0))  # 0.00000025: exactly 0.01
    assert (budget.cost, budget.reached()) == (Decimal("0.01"), True)


def test_cost_of_the_model_asked_for_when_the_one_that_answered_has_no_price() -> None:
    budget = Budget(PRICES, max_cost=Decimal(1))
    budget.spend("gpt-5.2-2026-01-01", usage(1_000_000, 0), requested="mini")
    assert (budget.cost, budget.unknown) == (Decimal("0.25"), False)
    # A call that cannot be priced at all: the spending is unknown, so the cap counts as reached.
    budget.spend("unpriced", usage(1, 0))
    assert (budget.cost, budget.unknown, budget.reached()) == (Decimal("0.25"), True, True)


def test_both_caps_and_no_cap() -> None:
    budget = Budget(PRICES, max_cost=Decimal(100), max_total_tokens=2000)
    budget.spend("mini", usage(1500, 500))
    assert budget.reached()  # the token cap, long before the cost cap
    free = Budget()
    free.spend("unpriced", usage(10**9, 10**9))
    assert not free.reached()


def test_budget_error_is_exit_69() -> None:
    err = Budget(max_total_tokens=0).error()
    assert (err.message, err.code) == ("budget reached", 69)


def test_budget_counts_every_spend_from_many_threads() -> None:
    # Switch threads as often as possible: an unlocked `+=` then loses updates within a few thousand.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        budget = Budget(PRICES, max_cost=Decimal(10**6), max_total_tokens=10**12)

        def spend() -> None:
            for _ in range(2000):
                budget.spend("mini", usage(3, 1))
                budget.reached()

        threads = [threading.Thread(target=spend) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    # 16,000 calls of 4 tokens, each costing (3 * 0.25 + 1 * 2) / 10**6
    assert (budget.tokens, budget.cost) == (64_000, Decimal("0.044"))
