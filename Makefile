# ClawDBot milestone pipeline. Needs only Python >= 3.11: every target installs what it uses.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	>/dev/null 2>&1 && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: `make run` needs the runtime dependencies only; tests, lint, type check and
# benchmarks add the dev extra on top.
STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-dev run test lint typecheck bench soak chaos vendor-contract

TYPECHECK_PATHS ?= clawdbot feed_app orchestrator_app clients/python/src/clawdbot_client

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "Python >= 3.11 is required" >&2; exit 1; }
	@echo "== creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "== upgrading pip"
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "== installing the runtime dependencies (about 30 s the first time)"
	$(BIN)/python -m pip install --progress-bar on -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml clients/python/pyproject.toml
	@echo "== installing the dev tools: pytest, ruff, mypy, playwright, hypothesis …"
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@echo "== installing the Python client (clients/python) for its tests"
	$(BIN)/python -m pip install -q -e ./clients/python
	@touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

## Serve the whole pipeline (ASGI web + worker) on HOST:PORT; Ctrl-C stops everything.
run: install
	$(BIN)/python -m clawdbot.serve

## Install and run the whole test suite.
test: install-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

## Type-check the application code (mypy with the Django and DRF plugins).
typecheck: install-dev
	$(BIN)/mypy $(TYPECHECK_PATHS)

## Run the benchmarks; writes bench/results.json and prints a table.
bench: install-dev
	$(BIN)/python -m bench $(BENCH_ARGS)

## Soak: 100,000 signed envelopes from 64 senders (10 % repeated, 5 % invalid) through wrk
## against the server `make run` serves; checks exactly once, rejections, no 5xx, web RSS.
## SOAK_TOTAL / SOAK_SENDERS change the size.
soak: install-dev
	$(BIN)/python -m bench.soak

## Chaos: PostgreSQL restarted under load, the worker and a web process killed with
## SIGKILL, a receiver failing half the time; each scenario checks its invariant
## (bench/chaos.py; `make chaos CHAOS_ARGS=web_kill` runs one).
chaos: install-dev
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

## Copy the milestone schema into the Python client (it must install without the server).
vendor-contract:
	cp clawdbot/contract/schema.py clawdbot/contract/storable.py \
	   clients/python/src/clawdbot_client/_contract/
