# The two commands the README starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/heistwatch demo $(if $(OUT),--out $(OUT))

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check heistwatch tests benchmarks
	$(BIN)/ruff format --check heistwatch tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/kb.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
