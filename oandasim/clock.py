"""The simulated clock: real time times a speed, which tests can pause, jump and speed up."""

from __future__ import annotations

import time


class ClockError(ValueError):
    """Raised for a clock change the simulator refuses, such as going back in time."""


class SimClock:
    def __init__(self, start: float, speed: float = 1.0, paused: bool = False) -> None:
        if speed <= 0:
            raise ClockError("speed must be positive")
        self._anchor_sim = start
        self._anchor_real = time.monotonic()
        self.speed = speed
        self.paused = paused

    def now(self) -> float:
        if self.paused:
            return self._anchor_sim
        return self._anchor_sim + (time.monotonic() - self._anchor_real) * self.speed

    def _rebase(self) -> None:
        self._anchor_sim = self.now()
        self._anchor_real = time.monotonic()

    def pause(self) -> None:
        self._rebase()
        self.paused = True

    def resume(self) -> None:
        self._rebase()
        self.paused = False

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ClockError("speed must be positive")
        self._rebase()
        self.speed = speed

    def jump_to(self, moment: float) -> None:
        """Move the clock forward; the past cannot be undone because orders have already filled."""
        current = self.now()
        if moment < current:
            raise ClockError("the simulated clock cannot go backwards")
        self._anchor_sim = moment
        self._anchor_real = time.monotonic()
