# The two commands: `make run` (embedded demo) and `make test` (the suite). See README.md.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-installed

.PHONY: run test lint bench-seed clean

$(DEPS_STAMP): requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11).")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	touch $@

## Set up, migrate, seed demo data, create the demo admin, run web + worker + beat on SQLite.
run: $(DEPS_STAMP)
	scripts/run-embedded

## Set up and run the test suite (DATABASE_URL / CELERY_BROKER_URL pick PostgreSQL / Redis).
# Two processes (pytest-xdist), each with its own test database and Redis database; a test file
# stays in one process (its module fixtures are built once). TEST_PROCESSES=0 runs in one.
TEST_PROCESSES ?= 2

test: $(DEPS_STAMP)
	scripts/ensure-chromium
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist load

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
