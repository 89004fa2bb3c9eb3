# Every target creates or refreshes the venv it needs itself: `make demo` and `make test`
# work on a fresh clone with nothing installed but Python 3.10+. The test and dev tools are
# PEP 735 dependency groups (`--group`, pip >= 25.1: each venv upgrades its pip first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BASE_VENV := .venv-base
BASE_STAMP := $(BASE_VENV)/.installed
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
E2E_VENV := .venv-phoenix
E2E_STAMP := $(E2E_VENV)/.installed
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed
PIP_QUIET := --quiet --disable-pip-version-check
# The interpreters `make pythons` runs the base suite on (those found on PATH).
PYTHONS := 3.10 3.11 3.12 3.13

.PHONY: demo test lint typecheck semconv semconv-check bench unit unit-base pythons e2e view clean

# Everything for working on the package: the provider extras and the dev group.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --upgrade pip
	$(PY) -m pip install $(PIP_QUIET) -e '.[openai,anthropic,openai-agents]' --group dev
	@touch $(STAMP)

# The base install (no provider SDKs) with only what the tests need.
$(BASE_STAMP): pyproject.toml
	@test -x $(BASE_VENV)/bin/python || $(PYTHON) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	$(BASE_VENV)/bin/python -m pip install $(PIP_QUIET) -e . --group test
	@touch $(BASE_STAMP)

# What the demo needs and nothing else: the package and its four dependencies.
$(DEMO_STAMP): pyproject.toml
	@test -x $(DEMO_VENV)/bin/python || $(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install $(PIP_QUIET) -e .
	@touch $(DEMO_STAMP)

# Phoenix and rotel (real receivers for the end-to-end checks) in their own venv; a
# failed install fails the build: the e2e checks never skip.
$(E2E_STAMP): e2e/requirements.txt
	@test -x $(E2E_VENV)/bin/python || $(PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	$(E2E_VENV)/bin/python -m pip install $(PIP_QUIET) -r e2e/requirements.txt
	@touch $(E2E_STAMP)

# A real MLflow tracking server (the feedback-sink checks) in a venv of its own: its
# dependencies conflict with Phoenix's. A failed install fails the build too.
$(MLFLOW_STAMP): e2e/requirements-mlflow.txt
	@test -x $(MLFLOW_VENV)/bin/python || $(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip install $(PIP_QUIET) --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip install $(PIP_QUIET) -r e2e/requirements-mlflow.txt
	@touch $(MLFLOW_STAMP)

demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/python examples/quickstart.py

lint: $(STAMP)
	$(PY) -m ruff check mv37 tests semconv benchmarks examples e2e
	$(PY) -m ruff format --check mv37 tests semconv benchmarks examples e2e
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

semconv: $(STAMP)
	$(PY) semconv/generate.py

semconv-check: $(STAMP)
	$(PY) semconv/generate.py --check

unit: $(STAMP)
	$(PY) -m pytest

# The suite again without openai/anthropic/openai-agents: the provider tests skip
# (saying why) and everything else must pass.
unit-base: $(BASE_STAMP)
	$(BASE_VENV)/bin/python -m pytest -p no:cacheprovider -rs -x

# The base suite on every Python the package claims (PYTHONS), each in its own .venv-py3.X
# (base install + test group). An interpreter is python3.X on PATH, else pyenv's newest
# 3.X (whose shims answer only for the active version); a missing one is skipped by name.
# Runs them all, then fails if any suite failed.
PYENV_VERSIONS := $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions
pythons:
	@failed=""; \
	for v in $(PYTHONS); do \
	  py=""; \
	  if python$$v -c "" >/dev/null 2>&1; then py=python$$v; \
	  else py=$$(ls -d $(PYENV_VERSIONS)/$$v.*/bin/python$$v 2>/dev/null | sort -V | tail -n 1); fi; \
	  if test -z "$$py"; then echo "skipped: python$$v not found"; continue; fi; \
	  venv=.venv-py$$v; \
	  echo "== python$$v ($$($$py -c 'import platform; print(platform.python_version())'), $$py) in $$venv"; \
	  if { test -x $$venv/bin/python || $$py -m venv $$venv; } \
	    && $$venv/bin/python -m pip install $(PIP_QUIET) --upgrade pip \
	    && $$venv/bin/python -m pip install $(PIP_QUIET) -e . --group test \
	    && $$venv/bin/python -m pytest -p no:cacheprovider; then \
	    echo "python$$v: passed"; \
	  else \
	    echo "python$$v: FAILED"; failed="$$failed $$v"; \
	  fi; \
	done; \
	test -z "$$failed" || { echo "failed on:$$failed"; exit 1; }

e2e: $(STAMP) $(E2E_STAMP) $(MLFLOW_STAMP)
	$(PY) -m pytest -p no:cacheprovider e2e

view: $(STAMP) $(E2E_STAMP)
	$(PY) -m e2e.view

test: lint semconv-check unit unit-base e2e

bench: $(STAMP) $(BASE_STAMP)
	$(BASE_VENV)/bin/python benchmarks/import_time.py
	$(PY) benchmarks/run.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/privacy.py
	$(PY) benchmarks/providers.py
	$(PY) benchmarks/bytes.py

clean:
	rm -rf $(VENV) $(BASE_VENV) $(DEMO_VENV) $(E2E_VENV) $(MLFLOW_VENV) $(PYTHONS:%=.venv-py%) .mypy_cache .ruff_cache .pytest_cache .hypothesis
