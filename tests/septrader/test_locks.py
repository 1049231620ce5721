"""septrader.locks.advisory_lock: one PostgreSQL advisory lock, seen from a second connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from septrader.locks import advisory_lock
from tests.conftest import require

KEY = 0x54455354  # "TEST"


@pytest.fixture
def other(db: Any) -> Iterator[psycopg.Connection[Any]]:
    """A second session on the test database, as another process would have."""
    require(connection.vendor == "postgresql", "the tests need DATABASE_URL to PostgreSQL")
    server = connection.settings_dict
    with psycopg.connect(
        host=server["HOST"] or None,
        port=server["PORT"] or None,
        user=server["USER"] or None,
        password=server["PASSWORD"] or None,
        dbname=server["NAME"],
        autocommit=True,
    ) as session:
        yield session
        session.execute("SELECT pg_advisory_unlock_all()")


def _try(session: psycopg.Connection[Any]) -> bool:
    row = session.execute("SELECT pg_try_advisory_lock(%s)", [KEY]).fetchone()
    assert row is not None
    return bool(row[0])


def _release(session: psycopg.Connection[Any]) -> None:
    session.execute("SELECT pg_advisory_unlock(%s)", [KEY])


def _holders() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            [KEY],
        )
        return int(cursor.fetchone()[0])


def test_a_held_lock_cannot_be_taken_elsewhere_and_is_released_after_the_block(
    other: psycopg.Connection[Any],
) -> None:
    with advisory_lock(KEY) as taken:
        assert taken
        assert not _try(other)
    assert _try(other)
    _release(other)
    assert _holders() == 0


def test_a_lock_held_elsewhere_is_not_taken_and_not_released(
    other: psycopg.Connection[Any],
) -> None:
    assert _try(other)
    with advisory_lock(KEY) as taken:
        assert not taken
    began = time.monotonic()
    with advisory_lock(KEY, wait=0.2) as taken:
        assert not taken
    assert time.monotonic() - began >= 0.2
    # Leaving the blocks released nothing: the other session still holds it.
    assert _holders() == 1
    _release(other)
    with advisory_lock(KEY) as taken:
        assert taken


def test_waiting_takes_the_lock_once_it_is_released(other: psycopg.Connection[Any]) -> None:
    for wait in (5.0, True):
        assert _try(other)
        releaser = threading.Timer(0.2, _release, [other])
        releaser.start()
        began = time.monotonic()
        with advisory_lock(KEY, wait=wait) as taken:
            assert taken
            assert 0.1 < time.monotonic() - began < 5
            assert not _try(other)
        releaser.join()
        assert _holders() == 0


def test_the_lock_is_released_when_the_block_raises(other: psycopg.Connection[Any]) -> None:
    with pytest.raises(RuntimeError), advisory_lock(KEY) as taken:
        assert taken
        raise RuntimeError("the block failed")
    assert _holders() == 0
    assert _try(other)


def test_it_is_re_entrant_within_a_connection(other: psycopg.Connection[Any]) -> None:
    with advisory_lock(KEY) as outer:
        with advisory_lock(KEY) as inner:
            assert outer and inner
        # The inner block released its own take only.
        assert not _try(other)
    assert _try(other)


@pytest.mark.django_db
def test_on_sqlite_the_block_runs_as_if_it_held_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with CaptureQueriesContext(connection) as queries:
        with advisory_lock(KEY) as taken:
            assert taken
        with advisory_lock(KEY, wait=True) as taken:
            assert taken
    assert len(queries) == 0
