#!/usr/bin/env bash
# Provision a throw-away TimescaleDB server for the tests and benchmarks.
#
# TimescaleDB is not packaged for this Debian release (bookworm), but Debian trixie ships
# postgresql-17 and postgresql-17-timescaledb. We debootstrap a minimal trixie tree into a cache
# folder outside the checkout, install those two packages inside it, and run the server in a
# chroot on a loopback port. The first run takes about a minute; later runs reuse the tree and start
# in seconds.
#
# Usage: scripts/timescaledb.sh up|down|status|url|bin
#   bin: print a folder of pg_dump/pg_restore/psql wrappers that run the tree's PostgreSQL 17
#        client programs on this host (for PG_BIN_DIR: the host's own pg_dump is older).
# Environment: SEPTRADER_CACHE (default ~/.cache/septrader), TIMESCALEDB_PORT (default 5433).
set -euo pipefail

CACHE="${SEPTRADER_CACHE:-$HOME/.cache/septrader}"
ROOT="$CACHE/timescaledb-trixie"
PORT="${TIMESCALEDB_PORT:-5433}"
PGBIN=/usr/lib/postgresql/17/bin
PGDATA=/var/lib/septrader-pgdata
LOG="$CACHE/timescaledb.log"
URL="postgres://postgres@127.0.0.1:$PORT/septrader"

say() { echo "timescaledb: $*" >&2; }

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

as_postgres() { in_root /usr/sbin/runuser -u postgres -- "$@"; }

is_ready() { pg_isready -q -h 127.0.0.1 -p "$PORT" -U postgres 2>/dev/null; }

ensure_tree() {
  if [ -x "$ROOT$PGBIN/postgres" ] && [ -f "$ROOT/usr/share/postgresql/17/extension/timescaledb.control" ]; then
    return
  fi
  say "building a Debian trixie tree with postgresql-17-timescaledb in $ROOT (about a minute, once)"
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  mkdir -p "$CACHE"
  rm -rf "$ROOT.partial"
  debootstrap --variant=minbase trixie "$ROOT.partial" >"$CACHE/debootstrap.log" 2>&1 \
    || { say "debootstrap failed; see $CACHE/debootstrap.log"; tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
  cp /etc/resolv.conf "$ROOT.partial/etc/resolv.conf" 2>/dev/null || true
  # Keep the package's own cluster-creation hook from running: we make our cluster with initdb.
  mkdir -p "$ROOT.partial/etc/postgresql-common"
  echo "create_main_cluster = false" >"$ROOT.partial/etc/postgresql-common/createcluster.conf"
  chroot "$ROOT.partial" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-17 postgresql-17-timescaledb && apt-get clean' \
    >>"$CACHE/debootstrap.log" 2>&1 \
    || { say "installing postgresql-17-timescaledb failed; see $CACHE/debootstrap.log"; tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
  mv "$ROOT.partial" "$ROOT"
}

ensure_cluster() {
  if [ -f "$ROOT$PGDATA/PG_VERSION" ]; then
    return
  fi
  mkdir -p "$ROOT$PGDATA"
  in_root chown postgres:postgres "$PGDATA"
  as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$ROOT$PGDATA/postgresql.conf" <<CONF
# Written by scripts/timescaledb.sh for the test and benchmark server.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '/tmp'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
max_connections = 200
shared_buffers = 1GB
work_mem = 32MB
maintenance_work_mem = 512MB
# A throw-away server: durability is traded for speed (never do this in production).
fsync = off
synchronous_commit = off
full_page_writes = off
timezone = 'UTC'
CONF
}

up() {
  if is_ready; then
    say "already running on 127.0.0.1:$PORT"
  else
    ensure_tree
    ensure_cluster
    # A crashed server leaves its pid file behind; the port check above says nothing is running.
    rm -f "$ROOT$PGDATA/postmaster.pid"
    mkdir -p "$ROOT/tmp" && chmod 1777 "$ROOT/tmp"
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >/dev/null \
      || { say "the server did not start; its log:"; tail -n 30 "$ROOT$PGDATA/server.log" >&2; exit 1; }
    say "started on 127.0.0.1:$PORT"
  fi
  psql -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='septrader'" | grep -q 1 \
    || psql -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE septrader"
}

down() {
  if [ -f "$ROOT$PGDATA/postmaster.pid" ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null || true
    say "stopped"
  else
    say "not running"
  fi
}

status() {
  if is_ready; then echo "running $URL"; else echo "stopped"; return 3; fi
}

# The tree's programs need trixie's newer C library, so each wrapper starts them through the tree's
# own dynamic loader with the tree's libraries; no chroot, so they read and write host paths.
client_bin() {
  ensure_tree
  local dir="$CACHE/pg17-bin" loader="$ROOT/usr/lib64/ld-linux-x86-64.so.2"
  mkdir -p "$dir"
  for tool in pg_dump pg_restore psql; do
    cat >"$dir/$tool.tmp" <<WRAPPER
#!/bin/sh
exec "$loader" --library-path "$ROOT/usr/lib/x86_64-linux-gnu" "$ROOT$PGBIN/$tool" "\$@"
WRAPPER
    chmod 755 "$dir/$tool.tmp"
    mv "$dir/$tool.tmp" "$dir/$tool"
  done
  echo "$dir"
}

case "${1:-}" in
  up) up ;;
  bin) client_bin ;;
  down) down ;;
  status) status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 up|down|status|url|bin" >&2; exit 2 ;;
esac
