# The two commands a new user runs are `make demo` and `make test`; see README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_PORT ?= 8000
PYTEST_ARGS ?=
DEMO_ARGS ?=
LOAD_ARGS ?=

.PHONY: install demo test check lint format types migrations-check audit services services-down \
	bench bench-ingest bench-backfill bench-qfh bench-oandasim bench-train bench-latency bench-console bench-load bench-api backup chaos

$(BIN)/.installed: requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements/dev.txt
	touch $@

install: $(BIN)/.installed

# The whole system on this machine (README.md, "Run the demo"): the OANDA simulator replaying the
# bundled real EUR/USD minutes at 10x, the streamer, Celery workers for every queue, beat and the
# web server under one supervisor, in var/demo (embedded SQLite and filesystem broker unless
# DATABASE_URL / CELERY_BROKER_URL are set). It prints the admin URL and login; Ctrl-C stops it.
demo: install
	SEPTRADER_DATA_DIR=$${SEPTRADER_DATA_DIR:-$(CURDIR)/var/demo} \
	$(BIN)/python manage.py demo --fresh --port $(DEMO_PORT) $(DEMO_ARGS)

# Provision TimescaleDB, Redis (and the test-only TimescaleDB TSL server, Chromium) when they are
# missing, then run the whole suite against them.
test: install
	@env_lines=$$(scripts/services.sh env) || { echo "make test: the test servers could not be started" >&2; exit 1; }; \
	eval "$$env_lines"; \
	$(BIN)/pytest $(PYTEST_ARGS)

# The fault-injection suite with long durations, about 15 minutes in all; each run prints its
# seed, the faults injected, the recoveries and the invariant violations (must be 0):
# - tests/chaos/test_system_faults.py: the whole system (simulator, streamer, workers, beat,
#   monitor under a restarting supervisor) through CHAOS_MINUTES=10 minutes of random faults
#   (broker 429/503/latency, stream silence and closes, Redis and database restarts, SIGKILLs)
#   across a weekend and a DST change; CHAOS_SEED reproduces a fault schedule;
# - tests/chaos/test_trading_week.py: executor-level trading, CHAOS_DAYS=14 simulated days
#   (about two minutes) of broker faults and executor kills; WEEK_SEED reproduces it.
# `make test` runs both with short defaults (1 minute, 7 days).
chaos: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	CHAOS_DAYS=$${CHAOS_DAYS:-14} CHAOS_MINUTES=$${CHAOS_MINUTES:-10} \
	$(BIN)/pytest -q -s -p no:cacheprovider --timeout 2400 tests/chaos

services: install
	scripts/services.sh up

services-down:
	scripts/services.sh down

# ruff, then the architecture's contracts (pyproject.toml [tool.importlinter]): the layers, no
# import cycle inside a package, the simulator apart, the QFH engine free of Django.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

types: install
	$(BIN)/mypy .

migrations-check: install
	$(BIN)/python manage.py makemigrations --check --dry-run

# The installed packages agree with each other (offline), and none of the locked requirements has
# a known vulnerability (pip-audit; it says "skipped: no vulnerability database reachable" and
# passes when the vulnerability database cannot be reached). See README.md, "Security".
audit: install
	$(BIN)/pip check
	$(BIN)/python scripts/audit.py

check: lint types migrations-check audit test

# A pg_dump archive of the configured database into BACKUP_DIR, keeping the newest BACKUP_KEEP.
backup: install
	$(BIN)/python manage.py backup

# Every benchmark in bench/ one after another (bench/run.py), each printing name=value lines,
# then one table of all their figures, each with its command, date, machine and load average:
# var/bench/latest.md (figures in README.md). About 40 minutes, 15 of them bench-load's
# (LOAD_ARGS applies). `make test` runs each at small scale (tests/bench/test_benches_run.py).
bench: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/run.py --load-args "$(LOAD_ARGS)"

bench-ingest: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/ingest.py

bench-backfill: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/backfill.py

bench-latency: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/latency.py

# The whole system (simulator, streamer, workers, beat, monitor, web) on 28 pairs with a signal on
# every candle; LOAD_ARGS="--speed 20 --hours 24" runs the whole simulated day (72 minutes).
bench-load: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/load.py $(LOAD_ARGS)

# GET /api/pairs/status under gunicorn at 200 requests/s beside a bare view (README.md).
bench-api: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/api.py

bench-console: install
	@env_lines=$$(scripts/services.sh env) || exit 1; eval "$$env_lines"; \
	$(BIN)/python bench/console.py

bench-qfh: install
	$(BIN)/python bench/qfh.py

bench-oandasim: install
	$(BIN)/python bench/oandasim.py

bench-train: install
	$(BIN)/python bench/train.py
