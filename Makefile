# Every target creates or refreshes .venv itself: `make demo` and `make test` work on a
# fresh clone with nothing installed but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BASE_VENV := .venv-base
BASE_STAMP := $(BASE_VENV)/.installed
E2E_VENV := .venv-phoenix
E2E_STAMP := $(E2E_VENV)/.installed

.PHONY: demo test lint typecheck semconv semconv-check bench unit unit-base e2e view clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The base install (no provider SDKs) with only what the tests need.
$(BASE_STAMP): pyproject.toml
	@test -x $(BASE_VENV)/bin/python || $(PYTHON) -m venv $(BASE_VENV)
	$(BASE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BASE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(BASE_STAMP)

# Phoenix and rotel (real receivers for the end-to-end checks) in their own venv; a
# failed install fails the build: the e2e checks never skip.
$(E2E_STAMP): e2e/requirements.txt
	@test -x $(E2E_VENV)/bin/python || $(PYTHON) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(E2E_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r e2e/requirements.txt
	@touch $(E2E_STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

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

e2e: $(STAMP) $(E2E_STAMP)
	$(PY) -m pytest -p no:cacheprovider e2e

view: $(STAMP) $(E2E_STAMP)
	$(PY) -m e2e.view

test: lint semconv-check unit unit-base e2e

bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/privacy.py
	$(PY) benchmarks/providers.py
	$(PY) benchmarks/bytes.py

clean:
	rm -rf $(VENV) $(BASE_VENV) $(E2E_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
