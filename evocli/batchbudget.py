"""A batch run's budget: its models priced before anything is sent, and lines left unsent at the cap."""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from evocli import cost
from evocli.errors import BudgetError, EvocliError, UsageError

if TYPE_CHECKING:
    from evocli.batch import Job
    from evocli.client import Completion


class RunBudget:
    """The caps of one run (`--max-cost`, `--max-total-tokens`), what it has spent, and how many
    lines it left unsent. Only this run's calls count: `--resume` with a new budget carries on.

    Thread-safe: workers ask `admit` before they send a line and `spend` after each call.
    """

    def __init__(self, budget: cost.Budget) -> None:
        self.budget = budget
        self.unsent = 0
        self._lock = threading.Lock()

    @property
    def needs_prices(self) -> bool:
        return self.budget.max_cost is not None

    def check_models(self, models: Iterable[str]) -> None:
        """Before anything is sent: with --max-cost, every model the run will use has a price."""
        if self.needs_prices:
            cost.check_budget_models(self.budget.prices, models)

    def line_problem(self, job: Job, default_model: str) -> EvocliError | None:
        """Why a line read from a stream cannot be sent under --max-cost: its model has no price.

        A file's models are all checked before the run; a stream's only as its lines arrive.
        """
        model = job.model or default_model
        prices = self.budget.prices
        if not self.needs_prices or (prices is not None and prices.get(model) is not None):
            return None
        return UsageError(f"line {job.index + 1}: --max-cost needs a price for {model}; the line is not sent")

    def admit(self) -> bool:
        """Whether a line may be sent now; a line refused is counted as unsent."""
        if not self.budget.reached():
            return True
        with self._lock:
            self.unsent += 1
        return False

    def spend(self, completion: Completion, requested: str) -> None:
        """Count a call that returned an answer (an incomplete or rejected one cost tokens too)."""
        self.budget.spend(completion.model, completion.usage, requested=requested)

    def error(self) -> BudgetError:
        """The record of each line left unsent."""
        return self.budget.error()

    def spent(self) -> str:
        """What the run spent against its caps: `spent 0.0123 USD (--max-cost 0.01)`."""
        budget = self.budget
        parts = []
        if budget.max_cost is not None:
            unit = budget.prices.unit if budget.prices else cost.DEFAULT_PRICE_UNIT
            cap = cost.number_text(budget.max_cost)
            parts.append(f"{cost.number_text(budget.cost)} {unit} (--max-cost {cap})")
        if budget.max_total_tokens is not None:
            parts.append(f"{budget.tokens} tokens (--max-total-tokens {budget.max_total_tokens})")
        return "spent " + " and ".join(parts)


def models_in_file(
    file: str,
    shard: tuple[int, int] | None,
    default_model: str,
    is_done: Callable[[Any], bool] | None = None,
) -> set[str] | None:
    """The models the lines of a regular file will be sent to (lines already done left out), or
    None when the input cannot be read twice (stdin, a pipe, a FIFO).

    Read once more, line by line, before the run: only the `model` (and, when resuming, the `id`)
    of each line matter, and a line without the text `"model"` can only go to the default model.
    A line that is not JSON is never sent, so it needs no model.
    """
    try:
        if file == "-" or not stat.S_ISREG(os.stat(file).st_mode):
            return None
        handle = open(file, "rb")  # noqa: SIM115 (closed by the with below)
    except OSError:
        return None  # the run itself reports an input it cannot read
    models: set[str] = set()
    with handle:
        for index, raw in enumerate(handle):
            if not raw.strip() or (shard is not None and index % shard[1] != shard[0] - 1):
                continue
            if is_done is None and b'"model"' not in raw:
                models.add(default_model)
                continue
            model = _line_model(index, raw, default_model, is_done)
            if model is not None:
                models.add(model)
    return models


def _line_model(
    index: int, raw: bytes, default_model: str, is_done: Callable[[Any], bool] | None
) -> str | None:
    """The model one line goes to; None when it is not sent (not JSON, or done already)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, str):
        value = {}
    if not isinstance(value, dict):
        return None
    if is_done is not None and is_done(value.get("id", index + 1)):
        return None
    model = value.get("model")
    return model if isinstance(model, str) and model.strip() else default_model

