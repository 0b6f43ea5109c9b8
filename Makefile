# One entry point for set-up, run, test, lint and benchmarks. CI calls `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data
KEYS   ?= keys

.PHONY: run test lint format typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/offline-service demo --data $(DATA) --keys $(KEYS)

test: $(STAMP)
	$(BIN)/ruff check offline_service tests benchmarks
	$(BIN)/ruff format --check offline_service tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check offline_service tests benchmarks
	$(BIN)/ruff format --check offline_service tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format offline_service tests benchmarks
	$(BIN)/ruff check --fix offline_service tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.engine

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
