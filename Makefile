# evocli developer tasks. `make` alone lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test lint typecheck check bench-stream bench-batch

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

bench-stream: $(BIN)/evocli ## Streaming: first byte on stdout and whole call vs a requests script
	$(BIN)/python bench/stream.py

bench-batch: $(BIN)/evocli ## Batch: 200 prompts at 200 ms, --concurrency 8, vs the ideal and a shell loop
	$(BIN)/python bench/batch.py
