"""One beat for the cluster: a scheduler that schedules only while it holds a Redis lock.

Every droplet may run ``celery beat`` (so the schedule survives losing one droplet), but only the
beat holding ``septrader:beat:leader`` sends tasks; the others tick idly and take over within
CLUSTER_BEAT_LOCK_SECONDS of the leader's death. The lock is a value only its holder knows, set
with NX and an expiry and renewed on every tick (at least every third of the expiry); a beat that
cannot renew (the key expired or Redis is unreachable) stops sending at once, so two beats never
schedule together. Settings: ``CELERY_BEAT_SCHEDULER = "septrader.beat:SingleBeatScheduler"``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery.beat import PersistentScheduler

logger = logging.getLogger(__name__)

LOCK_KEY = "septrader:beat:leader"
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class BeatLock:
    """The leader lock: ``hold()`` renews it when held, else tries to take it."""

    def __init__(self, url: str, seconds: float, key: str = LOCK_KEY) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = key
        self.milliseconds = max(1000, int(seconds * 1000))
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.held = False

    def hold(self) -> bool:
        try:
            if self.held:
                if self.client.eval(_RENEW, 1, self.key, self.token, self.milliseconds):
                    return True
                self.held = False
                logger.error("event=beat_lock_lost key=%s", self.key)
            if self.client.set(self.key, self.token, nx=True, px=self.milliseconds):
                self.held = True
                logger.warning("event=beat_lock_taken key=%s token=%s", self.key, self.token)
        except redis.RedisError as error:
            # Without Redis nobody can prove who leads: stop sending rather than risk two beats.
            if self.held:
                logger.error("event=beat_lock_unknown key=%s error=%r", self.key, error)
            self.held = False
        return self.held

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.eval(_RELEASE, 1, self.key, self.token)
        self.held = False


class SingleBeatScheduler(PersistentScheduler):
    """Celery's file-backed scheduler, sending only while this beat holds the cluster lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from django.conf import settings

        seconds = float(settings.CLUSTER_BEAT_LOCK_SECONDS)
        self.lock = BeatLock(settings.REDIS_URL, seconds) if settings.REDIS_URL else None
        # Renewed three times per expiry; a standby looks for a free lock as often.
        self.lock_interval = seconds / 3
        self.was_leader = False
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is None:
            return float(super().tick(*args, **kwargs))
        if not self.lock.hold():
            if self.was_leader:
                self.was_leader = False
            else:
                logger.debug("event=beat_standby key=%s", self.lock.key)
            return self.lock_interval
        if not self.was_leader:
            self.was_leader = True
            logger.warning("event=beat_leading token=%s", self.lock.token)
        return min(float(super().tick(*args, **kwargs)), self.lock_interval)

    def close(self) -> None:
        super().close()
        if self.lock is not None and self.lock.held:
            self.lock.release()
