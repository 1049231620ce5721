"""Throttles: the API's anon and user rates counted in Redis, and the login rate per address."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
from django.conf import settings
from rest_framework import throttling
from rest_framework.request import Request

if TYPE_CHECKING:
    # DRF imports the throttle classes while it defines APIView.
    from rest_framework.views import APIView

_clients: dict[str, redis.Redis] = {}


def _redis() -> redis.Redis | None:
    """One client per process for REDIS_URL (None without it), made on first use, after
    gunicorn has forked its workers."""
    url = settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2
        )
    return client


class WindowCountThrottle(throttling.SimpleRateThrottle):
    """DRF's rate (``3000/min``) counted with one Redis INCR per request, in windows of the
    rate's period aligned on the epoch.

    DRF's own throttle keeps the time of every request of the last period in one cache entry
    that it reads and writes whole on each request: two round trips to Redis with up to
    ``rate`` pickled floats each way (about 1 ms of a ``GET /api/pairs/status``, and more the
    busier the user; bench/api.py --profile), and two web workers writing at once lose each
    other's requests. A counter is one round trip whatever the rate, and exact under any number
    of workers. The price: just after a window starts a client may again send a whole rate, so
    up to twice the rate fits in one period straddling two windows, never more.
    Without REDIS_URL (the demo's file cache) DRF's own throttle counts.
    """

    # Set by SimpleRateThrottle.__init__ from the rate.
    num_requests: int
    duration: int

    def allow_request(self, request: Request, view: APIView) -> bool:
        client = _redis()
        if client is None or self.rate is None:
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"septrader:{self.key}:{window}"
        pipeline = client.pipeline(transaction=False)
        pipeline.incr(key)
        # Past its window nobody reads the counter again; it expires a second after it.
        pipeline.expire(key, self.duration + 1)
        count, _ = pipeline.execute()
        return bool(count <= self.num_requests)

    def wait(self) -> float | None:
        if _redis() is None:
            return super().wait()
        return max(0.0, self.window_ends - self.now)


class AnonRateThrottle(WindowCountThrottle, throttling.AnonRateThrottle):
    """Requests per client address without a user (``anon`` rate)."""


class UserRateThrottle(WindowCountThrottle, throttling.UserRateThrottle):
    """Requests per user, or per address without one (``user`` rate)."""


class LoginRateThrottle(throttling.AnonRateThrottle):
    """Token requests per client address (``login`` rate), whoever is logged in or not.

    DRF's exact sliding count: at 10 a minute its cost is nothing, and a guesser gains nothing
    from a window's edge.
    """

    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
