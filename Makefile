# `make run` and `make test` work on a fresh clone: the first one creates .venv and installs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test lint format bench spaces-check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,scale]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/startup.py

# A fresh venv from requirements.txt alone (as a Space builds it) imports, builds and serves the
# app; about a minute and a half here. Needs no .venv of its own.
spaces-check:
	bash scripts/check_spaces_install.sh

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache .ruff_cache
