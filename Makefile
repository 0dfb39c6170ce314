# nightshift — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= small
# Most of the suite's time is spent waiting on servers and subprocesses it starts, so two
# workers finish sooner even on 2 cores (6:51 against 8:54 there); 0 runs it in one process.
PYTEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup browser run test lint format bench clean services services-stop serve

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup: ## create .venv and install nightshift with its dev tools
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"

browser: ## install Debian's chromium for the report's browser test (skipped without it)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "warning: could not install chromium; the report's browser test will be skipped"; }

run: ## generate the synthetic `small` shop if no data landed, then run the nightly flow
	$(BIN)/nightshift generate --profile $(PROFILE) --if-missing
	$(BIN)/nightshift run

test: ## run the test suite (what CI runs), whole files spread over PYTEST_WORKERS processes
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

lint: ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: ## run the benchmarks in bench/ (slow; prints comparisons against peers)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/recommender.py
	$(BIN)/python bench/demand.py
	$(BIN)/python bench/inventory.py
	$(BIN)/python bench/segments.py
	$(BIN)/python bench/nightly.py
	$(BIN)/python bench/pricing.py
	$(BIN)/python bench/query.py

services: ## start a Prefect server, MLflow server and worker on loopback, with the deployments
	$(BIN)/nightshift services start

services-stop: ## stop what `make services` started
	$(BIN)/nightshift services stop

serve: ## serve the deployments from this process (nightly at 02:00, retrain, backfill)
	$(BIN)/nightshift serve

clean: ## remove the local home (.nightshift) — all generated data, warehouse and marts
	rm -rf .nightshift
