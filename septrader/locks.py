"""The PostgreSQL advisory lock, for the block of a ``with``: one implementation for every caller.

Session-level: it is held by the connection, across transactions, and PostgreSQL releases it when
a killed process's connection drops. Like PostgreSQL's own, it is re-entrant within a connection
(a second take on the same connection succeeds and needs its own release, which the ``with``
does). On other databases (SQLite, where the demo runs) there is nothing to take and nothing is
done: the block runs as if it held the lock. A caller that must still serialise processes there
brings its own lock (the entry lock takes a file lock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# How often a take with a time limit asks again.
POLL_SECONDS = 0.05


@contextmanager
def advisory_lock(key: int, *, wait: bool | float = False) -> Iterator[bool]:
    """Hold the advisory lock ``key`` for the block; yields whether it was taken.

    ``wait=False`` asks once, ``wait=True`` waits as long as it takes, and a number waits at most
    that many seconds (asking every ``POLL_SECONDS``). A lock taken is released on leaving the
    block, however it is left; one not taken is left alone. Always yields True on SQLite.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    taken = _take(key, wait)
    try:
        yield taken
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _take(key: int, wait: bool | float) -> bool:
    with connection.cursor() as cursor:
        if wait is True:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            return True
        deadline = time.monotonic() + float(wait)
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_SECONDS)
