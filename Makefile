# Two commands for a newcomer (see README): `make chat` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup chat run test lint typecheck catalogs clean

# A virtual environment with the bot and its development tools installed (editable).
# Installing compiles the gettext catalogs (hatch_build.py).
$(BIN)/.installed: pyproject.toml hatch_build.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

# Talk to the bot in this terminal, on the embedded default (SQLite file + in-memory state).
chat: setup
	$(BIN)/wvb chat

# Run the bot with the channels configured in the environment or .env.
run: setup
	$(BIN)/wvb run

# Style, then the layering contracts of pyproject.toml [tool.importlinter] (docs/ARCHITECTURE.md).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# Lint, type-check and run every test. PostgreSQL and Redis are used when reachable
# (127.0.0.1:5432 database `test`, 127.0.0.1:6379); with CI=true their absence fails the run.
test: lint typecheck
	$(BIN)/pytest

# After changing user-facing strings: refresh the template and every catalog, then translate.
catalogs: setup
	$(BIN)/python -m locales.catalogs extract
	$(BIN)/python -m locales.catalogs update
	$(BIN)/python -m locales.catalogs check

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache
