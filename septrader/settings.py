"""Settings for every role of SEP Trader, read from the environment.

With no environment at all the project runs embedded: SQLite in WAL mode and Celery's filesystem
broker, both under ``SEPTRADER_DATA_DIR`` (default ``./var``), so ``make demo`` needs no server.
``DATABASE_URL`` switches to PostgreSQL + TimescaleDB and ``CELERY_BROKER_URL`` to Redis.
``SEPTRADER_ENV=production`` makes every setting a production deployment needs mandatory.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from septrader.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_optional,
    env_str,
    install_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent

SEPTRADER_ENV = env_choice("SEPTRADER_ENV", "development", ("development", "test", "production"))
PRODUCTION = SEPTRADER_ENV == "production"
# Which processes this machine runs (DESIGN.md section 1): the cloud server, the GPU PC, or both.
SEPTRADER_ROLE = env_choice("SEPTRADER_ROLE", "all", ("droplet", "local", "all"))
DATA_DIR = Path(env_str("SEPTRADER_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
# SECRET_KEY signs sessions and, unless API_JWT_SIGNING_KEY is set, the API's tokens. Production
# takes it from the environment. Elsewhere it is made at random on the first start and kept in
# the data directory (mode 0600), so every process of one install agrees on it and every install
# has its own: a key written in the code would let anyone forge an admin token for every
# development install and demo.
if PRODUCTION:
    SECRET_KEY = env_str("DJANGO_SECRET_KEY", required=True)
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be a random string of at least 50 characters in production."
        )
else:
    SECRET_KEY = env_optional("DJANGO_SECRET_KEY") or install_secret(DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must list the server's host names.")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # Django's admin, with the operator console's dashboard as its front page.
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    # The login lockout shared by the console and the API (septrader/lockout.py).
    "axes",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    # django-csp: its system checks (the middleware below sends the header).
    "csp",
    # The project's plumbing and shared records (settings, audit log, roles, nodes' rows).
    "septrader",
    # The layers, lowest first (README, "Architecture"): each imports only those above it here.
    "marketdata",
    "qfh",
    "trading",
    "monitoring",
    # The daily shadow replay (issue #20): live against the evaluation code, per day and pair.
    "parity",
    "nodes",
    "sync",
    "backups",
    "telegrambot",
    "console",
]

MIDDLEWARE = [
    # First, so the request metrics time everything below it.
    "monitoring.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The Content-Security-Policy header on every answer (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware, as django-cors-headers asks, so its headers reach every answer.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked console login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes' backend comes first so a locked username is refused before any password is
# checked, at every door that authenticates (septrader/lockout.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "septrader.urls"
WSGI_APPLICATION = "septrader.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# Database -----------------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/
# PostgreSQL URLs use our subclass of django-timescaledb's backend (septrader/db/timescale), which
# creates the candle hypertable when the timescaledb extension is available and stays a plain
# PostgreSQL backend where it is not.
TIMESCALE_ENGINE = "septrader.db.timescale"


def database_from_url(url: str) -> dict[str, object]:
    scheme = urlsplit(url).scheme
    if scheme in {"postgres", "postgresql", "pgsql", "timescale", "timescaledb"}:
        normalised = url.replace(f"{scheme}://", "postgres://", 1)
        config = dj_database_url.parse(normalised, conn_max_age=60, conn_health_checks=True)
        config["ENGINE"] = TIMESCALE_ENGINE
        # Django turns prepared statements off for the sake of connection poolers. Its own cursors
        # bind parameters client-side and never prepare anyway; the candle reads on the analysis
        # hot path do prepare, saving the planning over every chunk of the hypertable (28 ms cold,
        # measured on 10 million rows). Set DATABASE_PREPARED_STATEMENTS=false behind a pooler in
        # transaction mode (pgbouncer), which cannot keep prepared statements.
        if env_bool("DATABASE_PREPARED_STATEMENTS", True):
            config.setdefault("OPTIONS", {})["prepare_threshold"] = 5
        return dict(config)
    if scheme == "sqlite":
        config = dj_database_url.parse(url)
        return _sqlite_database(Path(str(config["NAME"])))
    raise ImproperlyConfigured(
        f"DATABASE_URL has the scheme {scheme!r}; expected postgres://, timescale:// or sqlite://."
    )


def _sqlite_database(path: Path) -> dict[str, object]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": path,
        "OPTIONS": {
            # WAL lets the web server read while a worker writes; IMMEDIATE transactions take the
            # write lock up front so concurrent writers wait (up to the timeout) instead of failing
            # with "database is locked" half-way through a transaction.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        },
    }


_database_url = env_optional("DATABASE_URL")
if PRODUCTION and not _database_url:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL + TimescaleDB in production.")
DATABASES = {
    "default": database_from_url(_database_url)
    if _database_url
    else _sqlite_database(DATA_DIR / "septrader.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Backups -----------------------------------------------------------------------------------------
# `manage.py backup` and the nightly beat task write pg_dump archives (custom format) here and keep
# the newest BACKUP_KEEP. pg_dump must be of the server's major version (17): PG_BIN_DIR names the
# folder holding pg_dump/pg_restore; unset, /usr/lib/postgresql/17/bin is used when it exists, else
# whatever is on PATH (docs/deployment.md, "Backups").
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(DATA_DIR / "backups"))).resolve()
BACKUP_KEEP = env_int("BACKUP_KEEP", 14, minimum=1)
BACKUP_HOUR_UTC = env_int("BACKUP_HOUR_UTC", 22, minimum=0)
if BACKUP_HOUR_UTC > 23:
    raise ImproperlyConfigured(f"BACKUP_HOUR_UTC={BACKUP_HOUR_UTC} must be an hour from 0 to 23.")
PG_BIN_DIR = env_optional("PG_BIN_DIR")


# QFH analysis ------------------------------------------------------------------------------------
# The array module of every analysis run (README, "QFH engine"): auto takes CuPy when a CUDA device
# answers and otherwise NumPy, logging why; cupy refuses to run without a device (the qfh worker
# and the commands stop at start, naming this setting); numpy never touches a GPU. Commands take
# --backend to override it for one run.
QFH_BACKEND = env_choice("QFH_BACKEND", "auto", ("auto", "numpy", "cupy"))


# Celery -------------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
# The embedded default is the filesystem transport, which needs no server; Redis in every real
# deployment.
CELERY_BROKER_URL = env_str(
    "CELERY_BROKER_URL", "" if not PRODUCTION else None, required=PRODUCTION
)
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
_broker_scheme = urlsplit(CELERY_BROKER_URL).scheme
if _broker_scheme not in {"filesystem", "redis", "rediss", "memory"}:
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL has the scheme {_broker_scheme!r}; expected redis://, rediss:// "
        "or filesystem://."
    )
CELERY_BROKER_DIR = DATA_DIR / "celery"
if _broker_scheme == "filesystem":
    for _sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        # Without this kombu writes its exchange tables to ./control in the working directory.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env_optional("CELERY_RESULT_BACKEND")
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Reliability (docs/celery.md): a task is acknowledged only once it has finished, so a worker that
# dies mid-task (the machine, the process, or a pool child killed by the OOM killer) leaves it on
# the broker to be delivered again; every task is therefore written to be idempotent. Each worker
# process reserves one task at a time, so a slow task never holds others hostage in its prefetch.
# https://docs.celeryq.dev/en/stable/userguide/tasks.html#how-it-works
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers keep their real stdout/stderr. Celery's default replaces them with a proxy to its logger
# before Django configures logging (LOGGING below), so the root handler was bound to that proxy and
# every line logged after start-up, task failures included, vanished from the worker's output.
CELERY_WORKER_REDIRECT_STDOUTS = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Every task gets the default hard limit; the soft limit, a minute earlier, raises
# SoftTimeLimitExceeded inside the task so it can stop cleanly. The long jobs below have their own.
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 10 * 60, minimum=2)
CELERY_TASK_SOFT_TIME_LIMIT = max(1, CELERY_TASK_TIME_LIMIT - min(60, CELERY_TASK_TIME_LIMIT // 2))
# Walk-forward training took 287 s for 1,000 sets x 7 pairs x a year of M1 on 2 CPU cores (README,
# bench-train); two hours leaves room for bigger searches on CPU, a year's backfill and pg_dump.
LONG_TASKS = (
    "qfh.train_pair_model_task",
    "qfh.evaluate_rule_task",
    "marketdata.backfill_candles_task",
    "septrader.backup_database_task",
)
CELERY_LONG_TASK_TIME_LIMIT = env_int("CELERY_LONG_TASK_TIME_LIMIT", 2 * 3600, minimum=2)
CELERY_TASK_ANNOTATIONS = {
    name: {
        "time_limit": CELERY_LONG_TASK_TIME_LIMIT,
        "soft_time_limit": max(1, CELERY_LONG_TASK_TIME_LIMIT - 60),
    }
    for name in LONG_TASKS
}
CELERY_LONGEST_TASK_SECONDS = max(CELERY_TASK_TIME_LIMIT, CELERY_LONG_TASK_TIME_LIMIT)

if _broker_scheme in {"redis", "rediss"}:
    # Redis has no real acknowledgements: a delivered task that is not acknowledged within the
    # visibility timeout is handed to another worker, even while the first one still runs it. The
    # timeout must therefore outlast the longest task; it is also how long a task lost with its
    # whole machine waits before it runs again (execution tasks are harmless late: the signal's
    # claim and the client order id stop a duplicate).
    # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
    CELERY_VISIBILITY_TIMEOUT = env_int(
        "CELERY_VISIBILITY_TIMEOUT", CELERY_LONGEST_TASK_SECONDS + 3600, minimum=2
    )
    if CELERY_VISIBILITY_TIMEOUT <= CELERY_LONGEST_TASK_SECONDS:
        raise ImproperlyConfigured(
            f"CELERY_VISIBILITY_TIMEOUT={CELERY_VISIBILITY_TIMEOUT} must be longer than the "
            f"longest task time limit ({CELERY_LONGEST_TASK_SECONDS} s), or Redis hands running "
            "tasks to a second worker."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # How often a worker looks for tasks whose worker vanished (seconds, then every Nth look
        # scans Redis): a minute, instead of kombu's 100 s, at the cost of one small query.
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10, minimum=1),
        "unacked_restore_throttle": 6,
    }
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}

# One beat for the cluster (septrader/beat.py): every droplet may run `celery beat`, but only the
# one holding a Redis lock sends tasks; a standby takes over within CLUSTER_BEAT_LOCK_SECONDS.
CLUSTER_BEAT_LOCK_SECONDS = env_int("CLUSTER_BEAT_LOCK_SECONDS", 30, minimum=3)
# How often a node's worker (SEPTRADER_NODE) writes its heartbeat; cluster.node_silence_seconds
# (SystemConfig) says how long a node may be silent before its pairs move (nodes/services.py).
CLUSTER_HEARTBEAT_SECONDS = env_int("CLUSTER_HEARTBEAT_SECONDS", 5, minimum=1)
if _broker_scheme in {"redis", "rediss"} or env_optional("REDIS_URL"):
    CELERY_BEAT_SCHEDULER = "septrader.beat:SingleBeatScheduler"

# Periodic tasks, run by one `celery beat` process. A beat entry expires before the next one is due,
# so a worker that was down does not run a backlog of stale copies when it comes back
# (https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html).
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "backup-database": {
        "task": "septrader.backup_database_task",
        "schedule": crontab(hour=BACKUP_HOUR_UTC, minute=15),
        "options": {"expires": 12 * 3600},
    },
    # On the minute, so the 16:58 New York daily break is seen within seconds of starting.
    "trading.refresh_market_state": {
        "task": "trading.refresh_market_state_task",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    # Our orders, trades and P&L made equal to the broker's (the streams keep them current
    # between passes; this catches what a dropped stream or a killed executor left behind).
    "trading.reconcile_account": {
        "task": "trading.reconcile_account_task",
        "schedule": env_int("RECONCILE_EVERY_SECONDS", 120, minimum=10),
        "options": {"expires": 100},
    },
    # Demotion of live pairs whose results fell far below their model (trading/demotion.py). The
    # ledger also enqueues the check when a trade closes; this catches closes it did not see.
    "trading.check_demotions": {
        "task": "trading.check_demotions_task",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # The stops of open paper trades, followed on the broker's complete minutes (trading/
    # paper_trades.py): a minute closes once a minute; a late run catches up from where the last
    # one stopped, so an expired one loses nothing.
    "trading.follow_paper_trades": {
        "task": "trading.follow_paper_trades_task",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # A node silent beyond cluster.node_silence_seconds is down and its pairs move (septrader/
    # cluster.py); on the execution queue, which every node consumes.
    "septrader.failover_nodes": {
        "task": "septrader.failover_nodes_task",
        "schedule": 10.0,
        "options": {"expires": 10},
    },
    "monitoring.evaluate_alerts": {
        "task": "monitoring.evaluate_alerts_task",
        "schedule": 20.0,
        "options": {"expires": 20},
    },
    # The daily parity report (parity/): every minute the task looks whether the last New York
    # trading day has ended on the market's clock (the simulator's in the demo) and replays it for
    # each pair that has no report of it yet; once done, it reads three counts until the next.
    "parity.run_parity_reports": {
        "task": "parity.run_parity_reports_task",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # Daily, after the New York close in either season: the live analysis log (one row per pair
    # and minute, read by the parity report) beyond SystemConfig parity.live_analysis_days.
    "parity.prune_live_analyses": {
        "task": "parity.prune_live_analyses_task",
        "schedule": crontab(hour=23, minute=7),
        "options": {"expires": 12 * 3600},
    },
    # Hourly: the task itself sends the summary once, in the hour that starts at 17:00 New York
    # (beat's crontab follows CELERY_TIMEZONE, UTC, which moves against New York twice a year).
    "monitoring.send_daily_summary": {
        "task": "monitoring.send_daily_summary_task",
        "schedule": crontab(minute=1),
        "options": {"expires": 50 * 60},
    },
}


# Monitoring (DESIGN.md section 8) -----------------------------------------------------------------
# Workers and beat write a heartbeat this often; monitoring.heartbeat_stale_seconds (SystemConfig)
# says how old one may get before the component is reported missing.
MONITORING_HEARTBEAT_SECONDS = env_int("MONITORING_HEARTBEAT_SECONDS", 15, minimum=1)
# A bearer token for Prometheus to scrape /metrics (staff sessions may read it too).
METRICS_TOKEN = env_optional("METRICS_TOKEN")
# Alert channels' secrets; which severities go where is SystemConfig (alerts.*).
ALERT_WEBHOOK_URL = env_optional("ALERT_WEBHOOK_URL")
TELEGRAM_BOT_TOKEN = env_optional("TELEGRAM_BOT_TOKEN")
TELEGRAM_API_URL = env_str("TELEGRAM_API_URL", "https://api.telegram.org")
# Control from a phone (telegrambot/, README "Telegram control"): the same bot answers commands
# from the Telegram accounts linked to project users. Each account may send this many commands and
# button presses a minute; more are refused, so a stuck phone or a leaked account cannot hammer
# the broker through the kill switch, closes or flattens.
TELEGRAM_COMMANDS_PER_MINUTE = env_int("TELEGRAM_COMMANDS_PER_MINUTE", 20, minimum=1)
ALERT_DELIVERY_TIMEOUT = float(env_int("ALERT_DELIVERY_TIMEOUT", 10, minimum=1))

# E-mail for alerts and the daily summary.
# https://docs.djangoproject.com/en/5.2/topics/email/
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "septrader@localhost")


# Cache and the latest prices ----------------------------------------------------------------------
# The streamer publishes each pair's latest price and its stream state here for the executors and
# the console: Redis in any real deployment, files under SEPTRADER_DATA_DIR in the embedded demo.
REDIS_URL = env_optional("REDIS_URL") or (
    CELERY_BROKER_URL if _broker_scheme in {"redis", "rediss"} else None
)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "septrader",
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    )
}


# OANDA -------------------------------------------------------------------------------------------
# https://developer.oanda.com/rest-live-v20/introduction/ — practice and live hosts are built into
# oandapyV20; OANDA_API_URL names any other host, such as the bundled simulator (oandasim/).
OANDA_ENVIRONMENT = env_choice("OANDA_ENVIRONMENT", "practice", ("practice", "live"))
OANDA_API_URL = env_optional("OANDA_API_URL")
OANDA_STREAM_URL = env_optional("OANDA_STREAM_URL")
OANDA_TOKEN = env_optional("OANDA_TOKEN") or ""
OANDA_ACCOUNT_ID = env_optional("OANDA_ACCOUNT_ID") or ""
OANDA_CONNECT_TIMEOUT = float(env_int("OANDA_CONNECT_TIMEOUT", 5, minimum=1))
OANDA_READ_TIMEOUT = float(env_int("OANDA_READ_TIMEOUT", 15, minimum=6))
OANDA_REQUESTS_PER_SECOND = float(env_int("OANDA_REQUESTS_PER_SECOND", 100, minimum=1))
if OANDA_REQUESTS_PER_SECOND > 120:
    raise ImproperlyConfigured(
        f"OANDA_REQUESTS_PER_SECOND={OANDA_REQUESTS_PER_SECOND:g} exceeds OANDA's limit of 120."
    )
# Real money: switching to the live host needs a second, explicit setting.
if OANDA_ENVIRONMENT == "live" and env_optional("OANDA_LIVE_CONFIRM") != "yes-trade-real-money":
    raise ImproperlyConfigured(
        "OANDA_ENVIRONMENT=live trades real money: also set "
        "OANDA_LIVE_CONFIRM=yes-trade-real-money to confirm."
    )

# Air-gapped sync (DESIGN.md section 1): signed bundles written by `manage.py sync export` and
# imported from the inbox by `manage.py sync import` or POST /api/sync/pull. The secret is shared
# by the nodes that exchange bundles; syncing refuses to run without it (sync/services.py).
SEPTRADER_SYNC_SECRET = env_optional("SEPTRADER_SYNC_SECRET")
SYNC_INBOX_DIR = Path(env_str("SYNC_INBOX_DIR", str(DATA_DIR / "sync" / "inbox"))).resolve()
SYNC_OUTBOX_DIR = Path(env_str("SYNC_OUTBOX_DIR", str(DATA_DIR / "sync" / "outbox"))).resolve()
# The name this node's setting changes and bundles carry (the host name unless set). Sync keeps the
# later change of each setting; of two changes made at the same instant, the greater node name wins.
SYNC_NODE_NAME = env_str("SYNC_NODE_NAME", socket.gethostname())
if len(SYNC_NODE_NAME) > 255:
    raise ImproperlyConfigured(
        f"SYNC_NODE_NAME has {len(SYNC_NODE_NAME)} characters; expected at most 255."
    )


# Internationalisation: every time is stored in UTC; the FX day is New York's.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FX_DAY_TIME_ZONE = "America/New_York"
# The console shows times in UTC and, beside them, in the operator's own time zone.
OPERATOR_TIME_ZONE = env_str("OPERATOR_TIME_ZONE", "America/New_York")
try:
    ZoneInfo(OPERATOR_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"OPERATOR_TIME_ZONE={OPERATOR_TIME_ZONE!r} is not a time zone; expected an IANA name "
        "such as America/New_York or Europe/London."
    ) from None
# How often the console's live pages (the dashboard, a pair's chart, the lists of signals, orders
# and trades) ask the server for what changed. Five seconds is a few M1 candles' worth of news
# per minute at one small, bounded read per page (bench/console.py times the dashboard's).
CONSOLE_REFRESH_SECONDS = env_int("CONSOLE_REFRESH_SECONDS", 5, minimum=1)

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# REST API (septrader/api/, <app>/api.py) ---------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
# Every view asks for a role (viewer < operator < admin: Django groups, see
# septrader/api/permissions.py), and errors are {"error": {"code", "message", "field"}}
# (septrader/api/errors.py).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, reading the user and their role in one statement (septrader/api/).
        "septrader.api.authentication.JWTAuthentication",
        # The console's logged-in operators use the browsable API and the docs page with their
        # session (CSRF-checked for writes).
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["septrader.api.permissions.HasRole"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # DRF's JSON parser with a limit on nesting (API_MAX_JSON_DEPTH below).
    "DEFAULT_PARSER_CLASSES": ["septrader.api.parsers.BoundedJSONParser"],
    "EXCEPTION_HANDLER": "septrader.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "septrader.api.pagination.Pagination",
    "PAGE_SIZE": 100,
    # DRF's anon and user rates, counted with one Redis INCR a request (septrader/api/throttles.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "septrader.api.throttles.AnonRateThrottle",
        "septrader.api.throttles.UserRateThrottle",
    ],
    # A dashboard polling a dozen endpoints every few seconds stays far below the user rate; the
    # login rate is per client address, on top of the per-username lockout below.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/min"),
        "user": env_str("API_THROTTLE_USER", "3000/min"),
        "login": env_str("API_THROTTLE_LOGIN", "10/min"),
    },
    # How many proxies (nginx) sit in front of Django: the client address is then taken from
    # X-Forwarded-For, for the throttles and the AuditLog alike. 0 trusts no header.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 0, minimum=0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
}
# Short access tokens, longer refresh tokens that rotate, the old one blacklisted on use
# (https://django-rest-framework-simplejwt.readthedocs.io/en/latest/settings.html).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("API_ACCESS_TOKEN_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env_int("API_REFRESH_TOKEN_HOURS", 24, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    # A separate key lets tokens be revoked all at once without touching sessions.
    "SIGNING_KEY": env_str("API_JWT_SIGNING_KEY", SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
# One login lockout for the console's /admin/login/ and the API's /api/token/ alike, by django-axes
# (septrader/lockout.py): after API_LOGIN_MAX_FAILURES failed logins as one username, from any
# address, every login as that username is refused, even with the right password, until
# API_LOGIN_LOCKOUT_SECONDS have passed since the failure that locked it. The attempts are rows
# in the database, so every web worker and process sees the same count.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
API_LOGIN_MAX_FAILURES = env_int("API_LOGIN_MAX_FAILURES", 5, minimum=1)
API_LOGIN_LOCKOUT_SECONDS = env_int("API_LOGIN_LOCKOUT_SECONDS", 900, minimum=1)
AXES_HANDLER = "septrader.lockout.AuditedAxesHandler"
AXES_FAILURE_LIMIT = API_LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=API_LOGIN_LOCKOUT_SECONDS)
# By username alone: a password guessed from many addresses is stopped all the same, and the
# per-address side is the login throttle above.
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
# Attempts refused while locked are not counted, so the lock ends on time for its owner however
# often someone keeps trying.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "septrader.lockout.console_lockout_response"
# The address the throttles and the AuditLog see (API_NUM_PROXIES decides whom to believe).
AXES_CLIENT_IP_CALLABLE = "septrader.api.client.client_address"

# Request limits: a body nested or sized beyond these is refused before it is parsed, with a 400
# (API_MAX_JSON_DEPTH, septrader/api/parsers.py) or a 413 (REQUEST_MAX_BODY_BYTES,
# septrader/api/errors.py), never a 500. The largest body the API takes is a PATCH /api/config
# of every key with 400 holidays, about 6 KB and 2 levels deep: 1 MiB and 32 levels leave ample
# room. The byte limit is Django's, so it also bounds the console's forms (uploaded files aside).
# https://docs.djangoproject.com/en/5.2/ref/settings/#data-upload-max-memory-size
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REQUEST_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
API_MAX_JSON_DEPTH = env_int("API_MAX_JSON_DEPTH", 32, minimum=2)
# Largest candle and metrics read in one request (about four days of M1).
API_MAX_CANDLES = env_int("API_MAX_CANDLES", 5000, minimum=1)
# How old (ms) the answer of GET /api/pairs/status may be: dashboards poll it, and each web
# process then reads its four tables at most once per this interval (0 = always fresh).
API_PAIRS_STATUS_CACHE_MS = env_int("API_PAIRS_STATUS_CACHE_MS", 1000, minimum=0)
SPECTACULAR_SETTINGS = {
    "TITLE": "SEP Trader API",
    "DESCRIPTION": (
        "Control and read SEP Trader. Obtain a token at /api/token/ and send it as "
        "`Authorization: Bearer <access>`. Roles: viewer (read), operator (control), admin "
        '(configuration, audit log). Errors: {"error": {"code", "message", "field"}}.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api",
    # The docs page's scripts are served by us (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "septrader.api.schema.add_error_responses",
    ],
}
# Closed by default: the console is served from the same origin. List origins to open it.
CORS_ALLOWED_ORIGINS = env_list("API_CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
# End of the REST API settings ---------------------------------------------------------------------

LOG_LEVEL = env_choice("SEPTRADER_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "keyvalue": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes narrates each login at INFO with the username and address masked; what it
        # decided is in the AuditLog (septrader/lockout.py), so its warnings are enough here.
        "axes": {"level": "WARNING"},
        # httpx, python-telegram-bot's HTTP client, logs every request's URL at INFO, and a Bot
        # API URL holds the bot's token (tests/telegrambot: the token never reaches the logs).
        "httpx": {"level": "WARNING"},
    },
}

# axes.W006 asks for the client address among the lockout parameters, because a lock by a
# combination without it can be dodged by changing the user agent. The lock here is by username
# alone, which no header changes, and the address is the login throttle's business.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# Content Security Policy (django-csp) -------------------------------------------------------------
# https://django-csp.readthedocs.io/en/latest/configuration.html
# Pages load scripts, styles, images and fonts from this server only, and nothing inline: markup
# injected into a page can neither run a script nor restyle it. No CDN, no plugins, no framing,
# and forms post back here. The console keeps its styles in console/static/console/, and the
# API docs page uses drf-spectacular's split view, whose start-up script has a URL of its own
# (templates/api/swagger_ui.html). data: images are Swagger UI's icons, drawn by its stylesheet.
# One policy in every environment, so the tests see what production sends (with DEBUG on,
# django-csp leaves Django's 404 and 500 debug pages, which are styled inline, without it).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Production is served by nginx, which terminates TLS and sets X-Forwarded-Proto (docker/nginx);
# `manage.py check --deploy --fail-level WARNING` is clean with these (tests/security).
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 3600, minimum=0)
    # The host is the trader's own name (trader.example.com): its subdomains are ours too.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    # Preloading commits the whole domain to HTTPS in browsers for months and is the domain
    # owner's decision: opt in with DJANGO_SECURE_HSTS_PRELOAD=true; until then its reminder
    # (security.W021) is silenced.
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS.append("security.W021")
    SECURE_CONTENT_TYPE_NOSNIFF = True
