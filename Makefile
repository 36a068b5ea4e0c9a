# evocli developer tasks. `make` alone lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test lint typecheck check completions smoke bench bench-typer bench-shortcuts bench-stream bench-batch bench-usage bench-attach bench-validators bench-batch-ledger bench-usage-duckdb

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/evocli: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/evocli ## Create .venv and install evocli (editable) with its dev tools

test: $(BIN)/evocli ## Run the test suite
	$(BIN)/python -m pytest

lint: $(BIN)/evocli ## Run ruff
	$(BIN)/ruff check evocli tests scripts bench

typecheck: $(BIN)/evocli ## Run mypy --strict on the package
	$(BIN)/mypy --strict evocli

check: lint typecheck test ## lint + typecheck + test

completions: $(BIN)/evocli ## Regenerate completions/ (bash, zsh, fish) from the app
	$(BIN)/python scripts/gen_completions.py

smoke: $(BIN)/evocli ## Build sdist + wheel, install the wheel in a fresh venv, run evocli there
	$(BIN)/python scripts/smoke.py

bench: $(BIN)/evocli ## Start-up, per-call and memory figures against their baselines (bench/README.md)
	$(BIN)/python bench/startup.py

bench-typer: $(BIN)/evocli ## The same evocli with typer 0.29 against the pinned 0.28
	$(BIN)/python bench/typer_versions.py

bench-shortcuts: $(BIN)/evocli ## What each start-up measure of evocli.entry buys
	$(BIN)/python bench/shortcuts.py

bench-stream: $(BIN)/evocli ## Streaming: first byte on stdout and whole call vs a requests script
	$(BIN)/python bench/stream.py

bench-batch: $(BIN)/evocli ## Batch: 200 prompts at 200 ms, --concurrency 8, vs the ideal and a shell loop
	$(BIN)/python bench/batch.py

bench-usage: $(BIN)/evocli ## Time `evocli usage` over generated 100k and 1M record ledgers, with and without prices
	$(BIN)/python bench/usage_bench.py

bench-attach: $(BIN)/evocli ## Peak memory of a call attaching a 20 MB image, against a plain call
	$(BIN)/python bench/attach_memory.py

bench-validators: $(BIN)/evocli ## --schema validators: import, compile and validation time of three libraries
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/validators.py

bench-batch-ledger: $(BIN)/evocli ## Batch per-call cost: ledger on and off, against a requests thread-pool script
	$(BIN)/python bench/batch_ledger.py

bench-usage-duckdb: $(BIN)/evocli ## `evocli usage --by model` against DuckDB's read_json over the same 1M records
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/usage_duckdb.py
