# ClawDBot milestone pipeline. Needs only Python >= 3.11: every target installs what it uses.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	&& echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench

TYPECHECK_PATHS ?= clawdbot feed_app orchestrator_app

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Serve the whole pipeline (ASGI web + worker) on HOST:PORT; Ctrl-C stops everything.
run: install
	$(BIN)/python -m clawdbot.serve

## Install and run the whole test suite.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

## Type-check the application code (mypy with the Django and DRF plugins).
typecheck: install
	$(BIN)/mypy $(TYPECHECK_PATHS)

## Run the benchmarks; writes bench/results.json and prints a table.
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)
