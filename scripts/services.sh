#!/usr/bin/env bash
# Make sure the servers the tests and benchmarks need are running, provisioning what is missing.
#
#   scripts/services.sh up     start Redis and TimescaleDB if they are not reachable
#   scripts/services.sh env    the same, then print the export lines for DATABASE_URL etc.
#   scripts/services.sh down   stop the TimescaleDB server this script started
#
# Both up and env also install Debian's chromium and chromium-driver when they are missing: the
# console's browser test (tests/console/test_browser.py) drives them; and they install the npm
# package of scripts/pglite-tsl (TimescaleDB with its TSL features in PGlite, test-only; see
# server.mjs there) into a cache outside the checkout, for tests/marketdata/test_timescale_tsl.py.
#
# DATABASE_URL, when already set, is used as it is (a machine that has TimescaleDB skips the
# provisioning). Redis is the one on 127.0.0.1:6379, installed and started if it is missing.
# With CI=true a server that cannot be provided is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT="${REDIS_PORT:-6379}"
say() { echo "services: $*" >&2; }

redis_up() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    return
  fi
  if ! command -v redis-server >/dev/null; then
    say "installing redis-server"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  say "starting redis-server on 127.0.0.1:$REDIS_PORT"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --logfile /tmp/septrader-redis.log >/dev/null
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  say "redis did not answer on 127.0.0.1:$REDIS_PORT; see /tmp/septrader-redis.log"
  exit 1
}

browser_up() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return
  fi
  say "installing chromium and chromium-driver (for the console's browser test)"
  if apt-get update -qq >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; then
    return
  fi
  if [ "${CI:-}" = "true" ]; then
    say "chromium could not be installed, and CI must run the browser test"
    exit 1
  fi
  say "chromium could not be installed; the browser test will be skipped"
}

PGLITE_CACHE="${SEPTRADER_CACHE:-$HOME/.cache/septrader}"

# Prints the path of server.mjs next to its installed node_modules (empty if it cannot be had).
pglite_tsl_up() {
  local lock digest dir
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    say "installing nodejs and npm (for the TimescaleDB TSL test server)"
    apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null || true
  fi
  lock=scripts/pglite-tsl/package-lock.json
  digest=$(cat scripts/pglite-tsl/package.json "$lock" | sha256sum | cut -c1-16)
  dir="$PGLITE_CACHE/pglite-tsl-$digest"
  if [ ! -f "$dir/.installed" ] && command -v npm >/dev/null; then
    say "installing the PGlite TimescaleDB TSL build into $dir (once)"
    mkdir -p "$dir"
    cp scripts/pglite-tsl/package.json "$lock" "$dir/"
    if (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null); then
      touch "$dir/.installed"
    fi
  fi
  if [ -f "$dir/.installed" ]; then
    cp scripts/pglite-tsl/server.mjs "$dir/server.mjs"
    echo "$dir/server.mjs"
  elif [ "${CI:-}" = "true" ]; then
    say "the PGlite TimescaleDB TSL build could not be installed, and CI must run its tests"
    exit 1
  else
    say "the PGlite TimescaleDB TSL build could not be installed; its tests will be skipped"
  fi
}

database_url() {
  if [ -n "${DATABASE_URL:-}" ]; then
    echo "$DATABASE_URL"
  else
    scripts/timescaledb.sh up
    scripts/timescaledb.sh url
  fi
}

case "${1:-}" in
  up)
    redis_up
    browser_up
    pglite_tsl_up >/dev/null
    database_url >/dev/null
    ;;
  env)
    redis_up
    browser_up
    tsl_server=$(pglite_tsl_up)
    url=$(database_url)
    echo "export DATABASE_URL='$url'"
    echo "export TIMESCALE_TSL_SERVER='$tsl_server'"
    echo "export CELERY_BROKER_URL='redis://127.0.0.1:$REDIS_PORT/1'"
    echo "export CELERY_RESULT_BACKEND='redis://127.0.0.1:$REDIS_PORT/2'"
    echo "export REDIS_URL='redis://127.0.0.1:$REDIS_PORT/3'"
    # The backup tests need pg_dump of the server's major version; the chroot server's own.
    if [ -z "${DATABASE_URL:-}" ] && [ -z "${PG_BIN_DIR:-}" ]; then
      echo "export PG_BIN_DIR='$(scripts/timescaledb.sh bin)'"
    fi
    ;;
  down)
    scripts/timescaledb.sh down
    ;;
  *)
    echo "usage: $0 up|env|down" >&2
    exit 2
    ;;
esac
