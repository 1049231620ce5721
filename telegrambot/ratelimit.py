"""A sliding-window limit on commands per Telegram user, kept in the bot's process.

One bot process answers every command (Telegram hands each update to one poller), so the counts
need no shared store. Pure: no Django imports.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    # True for the first refusal of a burst only: the bot says so once, then stays quiet.
    tell: bool = False
    retry_after: float = 0.0


class RateLimiter:
    def __init__(
        self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit={limit} is not valid; expected at least 1 a period.")
        self.limit = limit
        self.period = period
        self.clock = clock
        self._times: dict[int, deque[float]] = defaultdict(deque)
        self._told: set[int] = set()

    def check(self, key: int) -> Verdict:
        """Count one command of ``key`` if the window has room for it."""
        now = self.clock()
        times = self._times[key]
        while times and now - times[0] >= self.period:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._told.discard(key)
            return Verdict(allowed=True)
        tell = key not in self._told
        self._told.add(key)
        return Verdict(allowed=False, tell=tell, retry_after=self.period - (now - times[0]))
