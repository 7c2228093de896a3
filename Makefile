# The two commands of the README, and helpers. Needs Python 3.11 (PYTHON) and, for `test`, PostgreSQL.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --upgrade --quiet --custom-compile-command "make lock"
# The shared data folder (HL7 examples, Synthea, sample extracts); the tests stop, naming it, if it is absent
SHARED ?= ../shared
PGURL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: demo test test-sqlite test-postgres lint install lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The pinned versions of requirements-test.lock (hash-checked), then the project itself, editable; done again only
# when pyproject.toml or a lock file is newer than the stamp.
$(STAMP): pyproject.toml requirements.lock requirements-test.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

## Refresh the lock files from pyproject.toml's ranges (newest versions within them), with uv from PyPI
lock: $(BIN)/python
	$(BIN)/pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra test -c requirements.lock $(LOCK_FLAGS) -o requirements-test.lock

## Quick start 1: install, load demo data, serve on SQLite at http://127.0.0.1:8080/fhir (with the
## notification worker beside it, which may deliver to local http endpoints in the demo)
DEMO_NOTIFICATIONS := SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS=true SUBSCRIPTION_ALLOW_HTTP=true
demo: install
	$(BIN)/sharedcare demo
	$(DEMO_NOTIFICATIONS) $(BIN)/sharedcare worker & worker=$$!; \
	trap 'kill $$worker' EXIT INT TERM; \
	$(DEMO_NOTIFICATIONS) $(BIN)/sharedcare serve --host 127.0.0.1 --port 8080

## Quick start 2: install and run every test on SQLite, then on PostgreSQL
test: install lint test-sqlite test-postgres

test-sqlite:
	TEST_DATABASE=sqlite SHARED_DIR=$(SHARED) $(BIN)/pytest -q

test-postgres:
	TEST_DATABASE=postgresql TEST_POSTGRES_URL=$(PGURL) SHARED_DIR=$(SHARED) $(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/run_all.py --shared $(SHARED)

clean:
	rm -rf $(VENV) var build *.egg-info
