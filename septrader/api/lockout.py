"""Login lockout: after ``API_LOGIN_MAX_FAILURES`` failed logins for one username, further
attempts are refused (even with the right password) until ``API_LOGIN_LOCKOUT_SECONDS`` have
passed since the last failure, so a password cannot be guessed from many addresses. The count
lives in the cache (Redis), shared by every web worker; a successful login clears it.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache

_PREFIX = "api:login-failures:"


def _key(username: str) -> str:
    # Hashed: usernames may hold characters the cache backend does not accept in keys.
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return _PREFIX + digest


def login_failures(username: str) -> int:
    return int(cache.get(_key(username), 0))


def login_locked(username: str) -> bool:
    return login_failures(username) >= settings.API_LOGIN_MAX_FAILURES


def login_failure_record(username: str) -> int:
    """Count one failed login; returns the count so far in this window."""
    key = _key(username)
    timeout = settings.API_LOGIN_LOCKOUT_SECONDS
    cache.add(key, 0, timeout=timeout)
    try:
        count = int(cache.incr(key))
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=timeout)
        return 1
    cache.touch(key, timeout=timeout)
    return count


def login_failures_clear(username: str) -> None:
    cache.delete(_key(username))
