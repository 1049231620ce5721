# The two commands a new user runs are `make demo` and `make test`; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: install demo test check lint format types migrations-check services services-down \
	bench bench-ingest bench-backfill bench-qfh bench-oandasim bench-train backup

$(BIN)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed

# Migrate the embedded SQLite database, load the bundled real EUR/USD minutes, create an admin
# login and start the web server.
demo: install
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py load_candles marketdata/fixtures/eur_usd_m1_48h.json --pair EUR_USD --timeframe M1
	$(BIN)/python manage.py demo_admin
	@echo "Admin console: http://127.0.0.1:$(DEMO_PORT)/admin/"
	$(BIN)/python manage.py runserver 127.0.0.1:$(DEMO_PORT)

# Provision TimescaleDB and Redis when they are missing, then run the whole suite against them.
test: install
	@env_lines=$$(scripts/services.sh env) || { echo "make test: the test servers could not be started" >&2; exit 1; }; \
	eval "$$env_lines"; \
	$(BIN)/pytest $(PYTEST_ARGS)

services: install
	scripts/services.sh up

services-down:
	scripts/services.sh down

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: install
	$(BIN)/mypy .

migrations-check: install
	$(BIN)/python manage.py makemigrations --check --dry-run

check: lint types migrations-check test

# A pg_dump archive of the configured database into BACKUP_DIR, keeping the newest BACKUP_KEEP.
backup: install
	$(BIN)/python manage.py backup

# Every benchmark in bench/, each printing name=value lines (figures in README.md).
bench: bench-ingest bench-backfill bench-qfh bench-oandasim bench-train

bench-ingest: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/ingest.py

bench-backfill: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/backfill.py

bench-qfh: install
	$(BIN)/python bench/qfh.py

bench-oandasim: install
	$(BIN)/python bench/oandasim.py

bench-train: install
	$(BIN)/python bench/train.py
