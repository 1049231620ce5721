"""Test settings: the real servers that `make test` provisions (TimescaleDB and Redis).

`make test` exports DATABASE_URL and CELERY_BROKER_URL after starting the servers; running pytest
without them is a configuration error, named here, rather than a silent fall-back to SQLite.
"""

import os

from django.core.exceptions import ImproperlyConfigured

if not os.environ.get("DATABASE_URL"):
    raise ImproperlyConfigured(
        "DATABASE_URL is not set: run the tests with `make test`, which starts TimescaleDB and "
        "Redis and sets it, or export DATABASE_URL=postgres://... yourself."
    )
os.environ.setdefault("SEPTRADER_ENV", "test")

from septrader.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests read the pairs' status right after changing it.
API_PAIRS_STATUS_CACHE_MS = 0
