# The two commands of the README, and helpers. Needs Python 3.11 (PYTHON) and, for `test`, PostgreSQL.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
PGURL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: demo test test-sqlite test-postgres lint install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

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
