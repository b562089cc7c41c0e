# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make dev    the whole system locally (embedded moto, example Kedro project, API on :8000)
#   make test   lint + the whole test suite
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SAM_TOOLS := .tools/sam/.installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export SAM_CLI_TELEMETRY := 0

.PHONY: install tools lint format test test-unit test-integration test-e2e test-infra dev bench load clean

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e ".[dev]"
	@touch $@

install: $(INSTALLED)

# The SAM CLI and checkov pin their own libraries, so each lives in its own environment.
$(SAM_TOOLS): infra/install-sam-cli.sh
	bash infra/install-sam-cli.sh
	@touch $@

tools: $(SAM_TOOLS)

lint: install tools
	$(BIN)/ruff format --check functions local tests bench
	$(BIN)/ruff check functions local tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -q -r functions -ll
	.tools/checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

format: install
	$(BIN)/ruff format functions local tests bench
	$(BIN)/ruff check --fix functions local tests bench

test: lint tools
	$(BIN)/pytest

test-unit: install
	$(BIN)/pytest tests/unit
test-integration: install
	$(BIN)/pytest tests/integration
test-e2e: install
	$(BIN)/pytest tests/e2e
test-infra: install tools
	$(BIN)/pytest tests/infra

bench: install
	$(BIN)/python -m pip install -qq -e ".[bench]"
	$(BIN)/python bench/run.py

load: install
	$(BIN)/python bench/load.py

dev: install
	$(BIN)/python -m kedro_jobs_local.dev $(ARGS)

# Debian's Chromium and its chromedriver, for the web page's browser test
# (tests/e2e/test_web_page.py); apt runs only when either is missing, and a failure stops make.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
