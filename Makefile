# Every target creates .venv and installs the project when needed: on a fresh machine
# `make demo` and `make test` are the only commands a user types.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# every version the tests passed with, direct and transitive: a fresh clone installs these
LOCK := requirements.lock
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install demo dev test conformance lint format bench chaos ui-check lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/etl-contacts demo

dev: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml

test: $(STAMP)
	$(BIN)/pytest -n 2 --durations=10

# every server of the zoo (make test runs a subset), with requests over the page floor per server
conformance: $(STAMP)
	$(BIN)/pytest -s -q -m 'conformance or not conformance' tests/integration/test_conformance.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg check defs

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/extraction_bench.py --contacts 20000
	$(BIN)/python benchmarks/nightly_bench.py --contacts 200000 1000000
	$(BIN)/python benchmarks/deletions_bench.py
	$(BIN)/python benchmarks/sandbox_bench.py --contacts 1000000

chaos: $(STAMP)
	$(BIN)/python benchmarks/chaos.py --kills 25

# Not part of `make test`: needs Debian's chromium, installed here when missing.
ui-check: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,ui]'
	$(BIN)/python tests/ui/ui_check.py

# After changing a dependency in pyproject.toml: resolve every extra again (uv, a maintainer's
# tool, installed here on first use), then run `make test` before committing the new lock. Not
# through $(STAMP): installing with the old lock would refuse the new pin before this could run.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.9
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra ui --extra bench --python-version 3.11 \
		--custom-compile-command 'make lock' --quiet -o $(LOCK)
