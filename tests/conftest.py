"""Fixtures shared by the whole suite: the real servers `make test` provides."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED_CANDLES = REPO / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"
IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip a test whose server is missing, except in CI, where a missing server is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


@pytest.fixture
def timescaledb(db: Any) -> None:
    from django.db import connection

    require(connection.vendor == "postgresql", "the tests need DATABASE_URL to PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        installed = cursor.fetchone() is not None
    require(installed, "the timescaledb extension is not installed in the test database")


@pytest.fixture(autouse=True)
def no_streamer_state_left() -> None:
    """Each test starts without a streamer state in the cache: one left by an earlier test's
    streamer (its broker clock on a replayed day) would move every later test's market, "today"
    and lag onto that day (marketdata.selectors.broker_now)."""
    from django.core.cache import cache

    from marketdata.cache_keys import STATE_KEY

    # A test without a reachable cache has no state to leave either.
    with contextlib.suppress(Exception):
        cache.delete(STATE_KEY)


@pytest.fixture(autouse=True)
def no_market_schedules_kept() -> None:
    """Each test reads the market schedules afresh: a process keeps them for a few seconds
    (trading.market), and a test's rolled-back rows or ``.update()`` calls send no signal."""
    from trading.market import schedules_forget

    schedules_forget()


@pytest.fixture
def broker_clock() -> Iterator[Any]:
    """Publish a streamer state whose newest broker message carried ``moment`` (a replayed or
    sped-up market), received and published just now on the local clock; ``pairs`` is the
    streamer's per-pair state (``marketdata.streaming.PairState`` as a dict)."""
    from django.core.cache import cache

    from marketdata.cache_keys import STATE_KEY

    def publish(
        moment: datetime,
        *,
        published_minutes_ago: float = 0.0,
        pairs: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        wall = datetime.now(UTC) - timedelta(minutes=published_minutes_ago)
        cache.set(
            STATE_KEY,
            {
                "broker_time": moment.isoformat(),
                "broker_time_received": wall.isoformat(),
                "updated": wall.isoformat(),
                "pairs": pairs or {},
            },
            timeout=None,
        )

    yield publish
    cache.delete(STATE_KEY)


@pytest.fixture(scope="session")
def seed_candles() -> list[dict[str, Any]]:
    with SEED_CANDLES.open() as handle:
        return json.load(handle)


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/3")
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        require(False, f"Redis is not reachable at {url}")
    yield url
    client.flushdb()


def worker_database_url() -> str:
    """DATABASE_URL naming the test database, for processes a test starts (workers, executors)."""
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def celery_worker_command(
    queues: str, *, name: str | None = None, pool: str = "solo", extra: tuple[str, ...] = ()
) -> list[str]:
    """The command line of a real Celery worker of the project on ``queues``."""
    import sys

    command = [sys.executable, "-m", "celery", "-A", "septrader", "worker", "-Q", queues]
    if name:
        command += ["--hostname", f"{name}@%h"]
    return [
        *command,
        *("--pool", pool, "--concurrency", "1", "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle"),
        *extra,
    ]


@pytest.fixture
def celery_worker(transactional_db: Any, django_db_serialized_rollback: Any) -> Iterator[Any]:
    """Start a real Celery worker on every queue, over Redis, against the test database.

    The worker is a separate process, so it only sees committed rows: tests using it run with
    ``transactional_db``, and the serialized rollback puts back the rows the migrations seeded
    (the pairs), which the flush after such a test would otherwise remove for later tests.
    """
    import subprocess

    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    require(bool(os.environ.get("CELERY_RESULT_BACKEND")), "CELERY_RESULT_BACKEND must be set")
    process = subprocess.Popen(
        celery_worker_command("qfh,execution,stream,default"),
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": worker_database_url(),
        },
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
