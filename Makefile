# Two commands do all the set-up on a fresh machine with Python 3.11+:
#   make dev    the whole system locally (embedded moto, example Kedro project, API on :8000)
#   make test   lint + the whole test suite, in parallel (PYTEST_WORKERS processes), but for
#               the tests that wait on the template's real timings: `make test-slow` (CI runs both)
SHELL := /bin/bash
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# uv (from PyPI, bootstrapped into the venv by its pip) installs in seconds what pip takes a
# minute for; the tools' environments, `make bench` and `make acceptance` use it too.
UV := $(BIN)/uv
# uv compiles no bytecode by default (pip does): where Python may not write it as it imports
# (PYTHONDONTWRITEBYTECODE, a read-only task root), every process of a stack would compile
# boto3, moto and Kedro from source at each start (the suite ran twice as long).
export UV_COMPILE_BYTECODE := 1
SAM_TOOLS := .tools/sam/.installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export SAM_CLI_TELEMETRY := 0

.PHONY: install tools lint format test test-slow test-unit test-integration test-e2e test-infra test-localstack dev bench load clean acceptance browser

$(INSTALLED): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install -qq "uv>=0.5"
	$(UV) pip install -q --python $(BIN)/python -e ".[dev]"
	@touch $@

install: $(INSTALLED)
	@# Our own packages' bytecode, as the venv's (above): a stack start imports them in each of
	@# its processes (~0.5 CPU-s a start compiling them). Only what changed is compiled again.
	@$(BIN)/python -m compileall -q functions local >/dev/null 2>&1 || true

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

# pytest-xdist: each worker has its own moto server, local stacks, ports and folders; tests
# that share a stack run on one worker (SHARED_STACKS in tests/conftest.py). Most of the
# suite waits on servers and subprocesses, so more workers than cores still shorten it.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup

test: lint tools browser
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=15

# The tests marked slow: delivery, lease expiry and segments at the template's own timings.
test-slow: install browser
	$(BIN)/pytest -m slow $(PYTEST_PARALLEL)

test-unit: install
	$(BIN)/pytest tests/unit
test-integration: install
	$(BIN)/pytest tests/integration
test-e2e: install browser
	$(BIN)/pytest tests/e2e
test-infra: install tools
	$(BIN)/pytest tests/infra

# LocalStack without Docker: localstack-core 2026.3.0 (the last open release) needs Python
# 3.13, found as PYTHON is above or in pyenv; it lives in its own environment like the SAM CLI.
PYTHON313 ?= $(shell for p in python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null); do \
	command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && echo $$p && break; done)
# Its Step Functions (the fan-out state machine) needs four libraries of its "runtime" extra
# (antlr4 for the ASL parser, jsonpath-ng, jpype1 imported by its JSONata support, its moto
# fork for the service's models); the rest of that extra is not needed here.
LOCALSTACK_TOOLS := .tools/localstack/.installed-stepfunctions

$(LOCALSTACK_TOOLS):
	@test -n "$(PYTHON313)" || { echo "make test-localstack needs Python 3.13 (python3.13, or pyenv install 3.13)"; exit 1; }
	@test -x .tools/localstack/bin/python || $(PYTHON313) -m venv .tools/localstack
	.tools/localstack/bin/python -m pip install -qq "localstack-core[base-runtime]==2026.3.0" "cbor2<6" "pyopenssl<26" \
		"antlr4-python3-runtime==4.13.2" "jsonpath-ng==1.7.0" "jpype1>=1.6.0" "moto-ext>=5.1.22"
	@touch $@

# The e2e and fault suites with SQS, S3 and Step Functions on LocalStack (one per stack, on a
# random loopback port, stopped after it) and DynamoDB on the embedded moto; and one job fanned
# out by LocalStack's Step Functions.
test-localstack: install $(LOCALSTACK_TOOLS)
	KEDRO_JOBS_E2E_LOCALSTACK=$(CURDIR)/.tools/localstack/bin/python \
		$(BIN)/pytest $(PYTEST_PARALLEL) tests/e2e/test_local_stack.py tests/e2e/test_faults.py \
		tests/e2e/test_fan_out.py::test_a_job_fans_out_over_the_local_consumers

bench: install
	$(UV) pip install -q --python $(BIN)/python -e ".[bench]"
	$(BIN)/python bench/run.py

load: install
	$(BIN)/python bench/load.py

dev: install
	$(BIN)/python -m kedro_jobs_local.dev $(if $(FRESH),--fresh) $(ARGS)

# Debian's Chromium and its chromedriver, for the web page's browser test
# (tests/e2e/test_web_page.py); apt runs only when either is missing, and a failure stops make.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

clean:
	rm -rf $(VENV) .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache

# A real Kedro project end to end: every pipeline (1 and 2 consumers), concurrent pairs, and
# a read-only run with its data on S3 (moto). REQUIREMENTS: what the project needs to run.
# Two tests at a time (each its own stack): a real project's runs keep the cores busy.
acceptance: install
	@test -n "$(PROJECT)" || { echo "usage: make acceptance PROJECT=path [REQUIREMENTS=file]"; exit 2; }
	@if [ -n "$(REQUIREMENTS)" ]; then $(UV) pip install -q --python $(BIN)/python -r "$(REQUIREMENTS)"; fi
	KEDRO_JOBS_ACCEPTANCE_PROJECT="$(abspath $(PROJECT))" $(BIN)/pytest tests/e2e/acceptance -p no:cacheprovider -n 2
