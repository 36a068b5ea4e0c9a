"""Money from token counts: the `prices:` table, the cost of calls, and a batch run's budget."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evocli.errors import BudgetError, UsageError

if TYPE_CHECKING:
    from decimal import Decimal

DEFAULT_PRICE_UNIT = "USD"
# The price fields of one model. `cached_input` may be left out: cached prompt tokens are then
# billed at the input price, which never understates what was spent.
PRICE_FIELDS = ("input", "cached_input", "output")
_REQUIRED = ("input", "output")
_CONTROL = r"[\x00-\x1f\x7f]"
# Decimal digits enough for any sum of token counts times any price: every product and sum is exact.
_PRECISION = 120


@dataclass(frozen=True)
class Price:
    """What one model costs per million tokens (as written in the config file)."""

    input: float
    output: float
    cached_input: float | None = None


@dataclass(frozen=True)
class Prices:
    """The `prices:` table and its unit; `get` is None for a model without a price."""

    models: Mapping[str, Price] = field(default_factory=dict)
    unit: str = DEFAULT_PRICE_UNIT

    def get(self, model: str | None) -> Price | None:
        return None if model is None else self.models.get(model)


def _number_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a price (a number, 0 or more), got {_kind(value)}"
    if not math.isfinite(value) or value < 0:
        return f"expected a price (a number, 0 or more), got {value}"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "a mapping"
    return type(value).__name__


def prices_problem(value: Any) -> str | None:
    """What is wrong with a `prices:` value, naming the model and field (`gpt-5.2.output: …`), or None.

    Each model maps to `input` and `output` (required) and `cached_input` (optional), prices per
    million tokens: numbers, 0 or more, finite.
    """
    if not isinstance(value, dict):
        return f"expected a mapping of model ids to prices, got {_kind(value)}"
    for model, price in value.items():
        if not isinstance(model, str) or not model:
            return f"model ids must be text, got {model!r}"
        if not isinstance(price, dict):
            return f"{model}: expected a mapping with input, cached_input and output, got {_kind(price)}"
        for name in price:
            if name not in PRICE_FIELDS:
                return f"{model}: unknown field {name!r} (known: {', '.join(PRICE_FIELDS)})"
        for name in _REQUIRED:
            if name not in price:
                return f"{model}: {name} is missing"
        for name, number in price.items():
            problem = _number_problem(number)
            if problem:
                return f"{model}.{name}: {problem}"
    return None


def price_unit_problem(value: Any) -> str | None:
    """What is wrong with a `price_unit:` value (a short label on one line), or None."""
    if not isinstance(value, str) or not value.strip():
        return f"expected a label such as USD, got {_kind(value)}"
    if re.search(_CONTROL, value):
        return "expected a label on one line, without control characters"
    return None


def prices_from_config(data: Mapping[str, Any]) -> Prices | None:
    """The prices of a checked config file's data; None when it prices no model."""
    table = data.get("prices") or {}
    if not table:
        return None
    models = {
        model: Price(input=p["input"], output=p["output"], cached_input=p.get("cached_input"))
        for model, p in table.items()
    }
    return Prices(models, data.get("price_unit") or DEFAULT_PRICE_UNIT)


def cost(price: Price, prompt: int, cached: int, completion: int) -> Decimal:
    """What tokens cost, exactly: (prompt - cached) * input + cached * cached_input + completion * output,
    per million tokens. Reasoning tokens are part of the completion tokens, so billed as output.

    The arithmetic is decimal and exact (prices are read as the digits written in the config file),
    so a sum of costs never drifts and the JSON number is the true value.
    """
    from decimal import localcontext

    cached_input = price.input if price.cached_input is None else price.cached_input
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = (
            (prompt - cached) * _decimal(price.input)
            + cached * _decimal(cached_input)
            + completion * _decimal(price.output)
        )
        return total.scaleb(-6)


def _decimal(number: float) -> Decimal:
    from decimal import Decimal

    # repr gives back the digits the config file holds (0.1, not 0.1000000000000000055…).
    return Decimal(repr(number)) if isinstance(number, float) else Decimal(number)


def call_cost(prices: Prices | None, model: str | None, usage: Mapping[str, Any] | None) -> Decimal | None:
    """The cost of one call from its API usage object; None when its model has no price."""
    from evocli.client import usage_counts

    price = prices.get(model) if prices else None
    if price is None:
        return None
    counts = usage_counts(dict(usage) if usage else None)
    return cost(price, counts["prompt_tokens"], counts["cached_tokens"], counts["completion_tokens"])


def add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    """A sum of costs where None (no price) adds nothing; None only when both are None."""
    if a is None:
        return b
    if b is None:
        return a
    return _plus(a, b)


def _plus(a: Decimal, b: Decimal) -> Decimal:
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return a + b


def number_text(value: Decimal) -> str:
    """A cost as an exact JSON number: plain digits, no exponent, no trailing zeros (0.00123, 12)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def display_text(value: Decimal, places: int = 4) -> str:
    """A cost for people: rounded half up to `places` decimals, thousands separated (1,234.5678);
    a cost above zero that would show as zero is `<0.0001`."""
    from decimal import ROUND_HALF_UP, Decimal

    step = Decimal(1).scaleb(-places)
    rounded = value.quantize(step, rounding=ROUND_HALF_UP)
    if value > 0 and not rounded:
        return f"<{step:f}"
    return format(rounded, f",.{places}f")


def unpriced(prices: Prices | None, models: Iterable[str | None]) -> list[str]:
    """The models (sorted, once each) that have no price; none when no prices are configured."""
    if prices is None:
        return []
    return sorted({m for m in models if m is not None and prices.get(m) is None})


def unpriced_warning(models: Sequence[str]) -> str | None:
    """The warning of a report with models that have no price (`-q` hides it), or None."""
    if not models:
        return None
    return f"no price for {', '.join(models)}: their cost shows as - and the totals leave it out"


# ---------------------------------------------------------------------------------------------
# Budgets for batch.


def parse_max_cost(text: str) -> Decimal:
    """A `--max-cost` value: a number, 0 or more (usage error otherwise)."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise UsageError(f"--max-cost expects an amount, 0 or more, got {text!r}")
    return value


def check_budget_models(prices: Prices | None, models: Iterable[str]) -> None:
    """Before a `--max-cost` run sends anything: every model it will use must have a price."""
    missing = sorted({m for m in models if prices is None or prices.get(m) is None})
    if missing:
        raise UsageError(
            f"--max-cost needs a price for every model; none for {', '.join(missing)}",
            hint="add them under prices: in the config file (input, cached_input, output per million tokens)",
        )


class Budget:
    """What a batch run may still spend: a cost cap, a total-tokens cap, or both. Thread-safe.

    Workers call `reached()` just before sending a line (true: do not send it) and `spend()` when
    a call has returned. Calls in flight when the cap is reached still finish and are counted, so
    the run may end a little over the cap, never by more than those calls.
    """

    def __init__(
        self,
        prices: Prices | None = None,
        max_cost: Decimal | None = None,
        max_total_tokens: int | None = None,
    ) -> None:
        import threading
        from decimal import Decimal

        if max_total_tokens is not None and max_total_tokens < 0:
            raise UsageError(f"--max-total-tokens expects a count, 0 or more, got {max_total_tokens}")
        self.prices = prices
        self.max_cost = max_cost
        self.max_total_tokens = max_total_tokens
        self.cost = Decimal(0)
        self.tokens = 0
        # A call that cannot be priced leaves the spending unknown: the cost cap then counts as reached.
        self.unknown = False
        self._lock = threading.Lock()

    def spend(self, model: str | None, usage: Mapping[str, Any] | None, requested: str | None = None) -> None:
        """Count one finished call: its total tokens, and its cost at the price of the model that
        answered, else of the model asked for (`requested`)."""
        from evocli.client import usage_counts

        counts = usage_counts(dict(usage) if usage else None)
        tokens = counts["total_tokens"] or counts["prompt_tokens"] + counts["completion_tokens"]
        amount = None
        if self.max_cost is not None:
            price = self._price(model) or self._price(requested)
            if price is not None:
                amount = cost(
                    price, counts["prompt_tokens"], counts["cached_tokens"], counts["completion_tokens"]
                )
        with self._lock:
            self.tokens += tokens
            if amount is not None:
                self.cost = _plus(self.cost, amount)
            elif self.max_cost is not None:
                self.unknown = True

    def _price(self, model: str | None) -> Price | None:
        return self.prices.get(model) if self.prices else None

    def reached(self) -> bool:
        """Whether what was spent has reached a cap: no further line may be sent."""
        with self._lock:
            if self.max_total_tokens is not None and self.tokens >= self.max_total_tokens:
                return True
            return self.max_cost is not None and (self.unknown or self.cost >= self.max_cost)

    def error(self) -> BudgetError:
        """The error each line left unsent gets (exit code 69, "budget reached")."""
        return BudgetError("budget reached")
