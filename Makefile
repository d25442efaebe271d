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
# Two processes (pytest-xdist), each with its own test database and Redis database. Tests are
# dealt out in chunks in collection order, so a process runs its share of a file in one go and
# builds the file's module fixtures at most once; a long file may be split between the two, each
# building them once. TEST_PROCESSES=0 runs in one.
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: the run starts dozens of Python
# processes (workers, beat, gunicorn, manage.py), which would otherwise each compile the project
# again, and pytest would rewrite every test module's asserts again on every run.
TEST_PROCESSES ?= 2

test: $(DEPS_STAMP)
	scripts/ensure-chromium
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_PROCESSES) --dist load

lint: $(DEPS_STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
