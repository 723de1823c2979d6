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
	$(BIN)/ruff check heistwatch tests benchmarks scripts
	$(BIN)/ruff format --check heistwatch tests benchmarks scripts

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	bash scripts/install_chromium.sh
	bash scripts/install_java.sh
	$(BIN)/pytest

# Benchmarks read ../shared/data (the IOC corpus, the attribution bench); the anchors come from the `bench` extra.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/kb.py
	$(BIN)/python benchmarks/ioc_extraction.py
	$(BIN)/python benchmarks/technique_tagging.py
	$(BIN)/python benchmarks/attribution.py
	$(BIN)/python benchmarks/hunt.py --size small
	bash scripts/install_java.sh
	$(BIN)/python benchmarks/trace.py --size small --spark

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
