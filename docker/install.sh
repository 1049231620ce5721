#!/usr/bin/env bash
# Install SEP Trader on a plain Ubuntu 24.04 server without Docker, in the seed's layout:
#
#   /opt/sep-trader/app      the code (owned by root, read-only to the service)
#   /opt/sep-trader/venv     its virtual environment
#   /opt/sep-trader/{data,cache,logs}  written by the processes (user septrader)
#   /opt/sep-trader/config   septrader.env, secrets/, tls/
#   /opt/sep-trader/backups  pg_dump archives (bind-mount or link the block-storage volume here)
#
# Usage (as root, from a checkout):
#   docker/install.sh [--role droplet|local|all] [--gpu]   install or upgrade, enable the units
#   docker/install.sh secrets [--host HOST]                 create missing secret files only
#
# PostgreSQL 17 with TimescaleDB and its client programs must be installed first on the droplet
# (docs/deployment.md, "Without Docker"); this script installs Python, Redis and nginx from Ubuntu.
# It never overwrites the env file or an existing secret. Nothing is started: edit
# /opt/sep-trader/config/septrader.env, then `systemctl start septrader.target`.
set -euo pipefail

SOURCE="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/sep-trader
CONFIG="$PREFIX/config"
SECRETS="$CONFIG/secrets"
ROLE=droplet
GPU=0
# The CuPy wheel of the driver's CUDA major (pyproject.toml's gpu extras; README, "The GPU PC"): the
# CUDA 12 wheel runs on CUDA 12 and 13 drivers; SEPTRADER_CUPY="cupy-cuda13x[ctk]==14.2.0" for 13.
CUPY_PACKAGE="${SEPTRADER_CUPY:-cupy-cuda12x[ctk]==14.2.0}"
HOST=""

say() { echo "install: $*" >&2; }
die() { say "$*"; exit 1; }

random_secret() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }

# Write a secret file unless it exists: mode 0440, group septrader, in a folder only root and
# the group can enter. Compose mounts the same files into containers as secrets.
write_secret() {
  local name="$1" value="$2"
  if [ -e "$SECRETS/$name" ]; then
    return
  fi
  umask 077
  printf '%s\n' "$value" >"$SECRETS/$name"
  chgrp septrader "$SECRETS/$name"
  chmod 0440 "$SECRETS/$name"
  say "wrote $SECRETS/$name"
}

make_secrets() {
  # The database and Redis host in the URLs: 127.0.0.1 without Docker; the compose file's
  # service names with --host docker; the droplet's Tailscale address on the GPU PC.
  local db_host="${HOST:-127.0.0.1}" redis_host="${HOST:-127.0.0.1}"
  if [ "$HOST" = docker ]; then db_host=db; redis_host=redis; fi
  install -d -m 0750 -o root -g septrader "$CONFIG" "$SECRETS"
  local pg_password redis_password
  if [ -e "$SECRETS/postgres_password" ]; then
    pg_password="$(cat "$SECRETS/postgres_password")"
  else
    pg_password="$(random_secret 32)"
  fi
  if [ -e "$SECRETS/redis_auth.conf" ]; then
    redis_password="$(sed -n 's/^requirepass //p' "$SECRETS/redis_auth.conf")"
  else
    redis_password="$(random_secret 32)"
  fi
  write_secret django_secret_key "$(random_secret 64)"
  write_secret postgres_password "$pg_password"
  write_secret redis_auth.conf "requirepass $redis_password"
  write_secret database_url "postgres://septrader:$pg_password@$db_host:5432/septrader"
  write_secret celery_broker_url "redis://:$redis_password@$redis_host:6379/0"
  write_secret celery_result_backend "redis://:$redis_password@$redis_host:6379/1"
  write_secret redis_url "redis://:$redis_password@$redis_host:6379/2"
  if [ ! -e "$SECRETS/oanda_token" ]; then
    write_secret oanda_token ""
    say "put your OANDA practice token in $SECRETS/oanda_token"
  fi
  # The containers run as uid 10001 and the database images as their own users: the files are
  # readable by all inside a folder (0750) that only root and septrader can enter on the host.
  if [ "$HOST" = docker ]; then chmod 0444 "$SECRETS"/*; fi
}

ensure_user() {
  if ! id septrader >/dev/null 2>&1; then
    useradd --system --uid 10001 --user-group --home-dir "$PREFIX" --shell /usr/sbin/nologin septrader
    say "created user septrader"
  fi
}

install_code() {
  install -d -m 0755 "$PREFIX" "$PREFIX/app"
  install -d -m 0750 -o septrader -g septrader "$PREFIX/data" "$PREFIX/cache" "$PREFIX/logs"
  [ -e "$PREFIX/backups" ] || install -d -m 0750 -o septrader -g septrader "$PREFIX/backups"
  tar -C "$SOURCE" --exclude=.git --exclude=.venv --exclude=var --exclude=tests --exclude=bench \
      --exclude='__pycache__' -cf - . | tar -C "$PREFIX/app" -xf -
  chown -R root:root "$PREFIX/app"
  python3 -m venv "$PREFIX/venv"
  "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check -r "$PREFIX/app/requirements/base.txt"
  if [ "$GPU" = 1 ]; then
    "$PREFIX/venv/bin/pip" install -q --disable-pip-version-check "$CUPY_PACKAGE"
  fi
}

install_config() {
  install -d -m 0750 -o root -g septrader "$CONFIG"
  if [ ! -e "$CONFIG/septrader.env" ]; then
    install -m 0640 -o root -g septrader "$SOURCE/docker/septrader.env.example" "$CONFIG/septrader.env"
    sed -i "s/^SEPTRADER_ROLE=.*/SEPTRADER_ROLE=$ROLE/" "$CONFIG/septrader.env"
    say "wrote $CONFIG/septrader.env: edit the host names and the OANDA account"
  fi
  make_secrets
}

install_units() {
  local units=()
  case "$ROLE" in
    droplet) units=(septrader-web septrader-worker-execution septrader-beat septrader-stream septrader-monitor septrader-telegram) ;;
    local) units=(septrader-worker-qfh) ;;
    all) units=(septrader-web septrader-worker-execution septrader-beat septrader-stream septrader-monitor septrader-telegram septrader-worker-qfh) ;;
  esac
  install -m 0644 "$SOURCE/docker/systemd/septrader.target" /etc/systemd/system/
  for unit in "${units[@]}"; do
    install -m 0644 "$SOURCE/docker/systemd/$unit.service" /etc/systemd/system/
  done
  systemctl daemon-reload
  systemctl enable septrader.target "${units[@]/%/.service}"
  say "enabled: ${units[*]}"
}

install_nginx() {
  install -d -m 0750 -o root -g septrader "$CONFIG/tls"
  install -d -m 0755 "$PREFIX/data/acme"
  sed -e 's|server web:8000;|server 127.0.0.1:8000;|' \
      -e 's|/etc/nginx/tls/|/opt/sep-trader/config/tls/|' \
      -e 's|alias /srv/static/;|alias /opt/sep-trader/data/static/;|' \
      -e 's|root /srv/acme;|root /opt/sep-trader/data/acme;|' \
      "$SOURCE/docker/nginx/septrader.conf" >/etc/nginx/sites-available/septrader
  ln -sf /etc/nginx/sites-available/septrader /etc/nginx/sites-enabled/septrader
  rm -f /etc/nginx/sites-enabled/default
  usermod -a -G septrader www-data
  if [ -e "$CONFIG/tls/fullchain.pem" ]; then
    nginx -t && systemctl reload nginx
  else
    say "no certificate yet in $CONFIG/tls (fullchain.pem, privkey.pem): see docs/deployment.md, TLS"
  fi
}

# Ubuntu's Redis as the broker: a password, AOF every second, never evict (an evicted key is a lost
# task). It listens on 127.0.0.1; add the Tailscale address for a GPU node (docs/deployment.md).
configure_redis() {
  local conf=/etc/redis/redis.conf password
  password="$(sed -n 's/^requirepass //p' "$SECRETS/redis_auth.conf")"
  if ! grep -q '^# SEP Trader' "$conf"; then
    printf '\n# SEP Trader (docker/install.sh)\nappendonly yes\nappendfsync everysec\nmaxmemory-policy noeviction\nrequirepass %s\n' \
      "$password" >>"$conf"
    systemctl restart redis-server
    say "configured $conf"
  fi
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root"
  while [ $# -gt 0 ]; do
    case "$1" in
      secrets) ACTION=secrets ;;
      --role) ROLE="$2"; shift ;;
      --gpu) GPU=1 ;;
      --host) HOST="$2"; shift ;;
      *) die "unknown argument $1 (see the header of $0)" ;;
    esac
    shift
  done
  case "$ROLE" in droplet | local | all) ;; *) die "--role $ROLE: expected droplet, local or all" ;; esac
  ensure_user
  if [ "${ACTION:-install}" = secrets ]; then
    make_secrets
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3 python3-venv >/dev/null
  if [ "$ROLE" != local ]; then
    apt-get install -y -qq redis-server nginx >/dev/null
    [ -x /usr/lib/postgresql/17/bin/pg_dump ] \
      || die "PostgreSQL 17 with TimescaleDB is not installed: see docs/deployment.md, Without Docker"
  fi
  install_code
  install_config
  install_units
  if [ "$ROLE" != local ]; then
    configure_redis
    install_nginx
  fi
  say "done. Edit $CONFIG/septrader.env, then: systemctl start septrader.target"
}

main "$@"
