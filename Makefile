# Tollgate: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATASET ?= churn
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_LOGGING_LEVEL ?= INFO
export GX_ANALYTICS_ENABLED := false
export BENTOML_DO_NOT_TRACK := true
# How long a flow's command line waits for its temporary Prefect server (Prefect's default, 20 s, is too
# short on a loaded 2-core machine); the command prints its JSON line naming this setting if it is exceeded.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: run test test-fast lint install browser bench bench-automl data security raw telco serve clean-artifacts
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

data: install
	$(BIN)/python -m tollgate.synth.generate

## Run the monthly retrain flow end to end (Prefect's ephemeral local server).
run: data
	$(BIN)/python -m flows.retrain --dataset $(DATASET)

security:
	$(MAKE) run DATASET=security

## Security from raw log lines: writes a month of raw logs if absent, then retrains from them.
RAW_MONTH ?= 2026-03
RAW_LINES ?= 200000
raw: install
	test -f data/raw_logs/security/$(RAW_MONTH)/ground_truth.csv || $(BIN)/python -m tollgate.synth.raw_logs --month $(RAW_MONTH) --lines $(RAW_LINES)
	$(BIN)/python -m flows.retrain --dataset security --raw data/raw_logs/security/$(RAW_MONTH)/

telco: install
	$(BIN)/python -m flows.retrain --dataset churn --data ../shared/data/telco_churn.csv

## Serve the newest verified model of $(DATASET) on http://127.0.0.1:3000 (after `make run`).
serve: install
	TOLLGATE_DATASET=$(DATASET) $(BIN)/bentoml serve service.service:Tollgate --host 127.0.0.1 --port 3000

## Headless Chromium for the browser tests: Debian's chromium package, installed once if absent.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## The whole suite (unit, integration with real servers and a real browser, slow end-to-end runs).
test: install browser
	$(BIN)/python -m pytest

## Serving against the baselines a user would otherwise deploy (installs the bench extra and Debian's wrk).
bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		$(SUDO) apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	$(BIN)/python benchmarks/compare_serving.py --dataset $(DATASET)

## The searched tournament against FLAML's AutoML on the Telco export and NSL-KDD, the same split and budget.
BUDGET ?= 120
bench-automl: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/automl_compare.py --budget $(BUDGET)

## Unit tests only: no server, no full retrain.
test-fast: install
	$(BIN)/python -m pytest -m "not integration and not slow"

## ruff (lint and format check) and mypy (strict on tollgate.config, .core and .store).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean-artifacts:
	rm -rf artifacts/churn artifacts/security
