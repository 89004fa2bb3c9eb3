# Every target creates or refreshes .venv itself: `make demo` and `make test` work on a
# fresh clone with nothing installed but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck semconv semconv-check bench unit clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py

lint: $(STAMP)
	$(PY) -m ruff check mv37 tests semconv benchmarks examples
	$(PY) -m ruff format --check mv37 tests semconv benchmarks examples
	$(PY) -m mypy

semconv: $(STAMP)
	$(PY) semconv/generate.py

semconv-check: $(STAMP)
	$(PY) semconv/generate.py --check

unit: $(STAMP)
	$(PY) -m pytest

test: lint semconv-check unit

bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/export.py
	$(PY) benchmarks/privacy.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
