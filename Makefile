# evocli developer tasks. `make` alone lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test lint typecheck check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/evocli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/evocli ## Create .venv and install evocli (editable) with its dev tools

test: $(BIN)/evocli ## Run the test suite
	$(BIN)/python -m pytest

lint: $(BIN)/evocli ## Run ruff
	$(BIN)/ruff check evocli tests

typecheck: $(BIN)/evocli ## Run mypy --strict on the package
	$(BIN)/mypy --strict evocli

check: lint typecheck test ## lint + typecheck + test

.PHONY: bench-usage
bench-usage: $(BIN)/evocli ## Time `evocli usage` over generated 100k and 1M record ledgers
	$(BIN)/python bench/usage_bench.py
