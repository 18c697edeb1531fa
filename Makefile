# Two commands for a newcomer (see README): `make chat` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# How `make test` spreads the tests: three pytest-xdist processes keep two cores busy (most
# end-to-end tests wait on fake servers, timeouts and child processes), about 8 minutes for
# what takes over 20 in one process. `make test PYTEST_PARALLEL=` runs them in one process.
# (docs/BENCHMARKS.md, "The test run", has the figures and the teardown hang this once had.)
PYTEST_PARALLEL ?= -n 3 --dist worksteal
# Every dependency, pinned with its hashes (see "Dependencies" in README.md): what the bot runs
# on, and that plus the development tools and the build backend.
LOCK = requirements/lock.txt
DEV_LOCK = requirements/dev-lock.txt

.PHONY: setup chat run test lint typecheck catalogs lock upgrade-lock audit clean

# A virtual environment with the bot and its development tools installed (editable). Every
# dependency comes from the hash-pinned lock, so a changed or substituted file fails the install;
# then the bot itself, without dependencies and built by the locked hatchling and babel (no build
# isolation, which would fetch them unpinned). Installing compiles the catalogs (hatch_build.py).
$(BIN)/.installed: $(DEV_LOCK) pyproject.toml hatch_build.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
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
	$(BIN)/pytest $(PYTEST_PARALLEL)

# After changing user-facing strings: refresh the template and every catalog, then translate.
catalogs: setup
	$(BIN)/python -m locales.catalogs extract
	$(BIN)/python -m locales.catalogs update
	$(BIN)/python -m locales.catalogs check

# Re-resolve the locks from pyproject.toml after changing a dependency: pins that still fit are
# kept. For Python 3.11 and later on every platform (--universal). `make upgrade-lock` moves every
# pin to the newest release allowed; then run `make test` and read the changelogs of what moved.
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"

# The build requirements are locked too (setup builds without isolation), with `editables`, which
# hatchling asks for to build an editable install.
lock: | $(BIN)/uv
	$(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], "editables", sep="\n")' > $(VENV)/build-requires.in
	$(UV_COMPILE) $(UPGRADE) --extra dev pyproject.toml $(VENV)/build-requires.in -o $(DEV_LOCK)
	$(UV_COMPILE) $(UPGRADE) -c $(DEV_LOCK) pyproject.toml $(VENV)/build-requires.in -o $(LOCK)

$(BIN)/uv:  # uv comes with the development tools
	$(MAKE) setup

upgrade-lock:
	$(MAKE) lock UPGRADE=--upgrade

# Known vulnerabilities in the locked versions (PyPI's advisory data; needs to reach PyPI).
# pip-audit runs from a virtual environment of its own, so it adds nothing to the bot's.
audit:
	test -x $(VENV)/audit/bin/pip-audit || \
		($(PYTHON) -m venv $(VENV)/audit && $(VENV)/audit/bin/pip install --quiet pip-audit)
	$(VENV)/audit/bin/pip-audit --strict --require-hashes --disable-pip -r $(DEV_LOCK)

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache
