"""Candle timeframes (OANDA granularities) that the project stores or aggregates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import models


class Timeframe(models.TextChoices):
    M1 = "M1", "1 minute"
    M5 = "M5", "5 minutes"
    M15 = "M15", "15 minutes"
    M30 = "M30", "30 minutes"
    H1 = "H1", "1 hour"


TIMEFRAME_SECONDS: dict[str, int] = {
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.M30: 1800,
    Timeframe.H1: 3600,
}

# Higher timeframes that TimescaleDB (or the plain-SQL views elsewhere) builds from M1 candles.
AGGREGATED_TIMEFRAMES: tuple[str, ...] = (Timeframe.M5, Timeframe.M15, Timeframe.H1)


def timeframe_duration(timeframe: str) -> timedelta:
    return timedelta(seconds=TIMEFRAME_SECONDS[timeframe])


def is_aligned(time: datetime, timeframe: str) -> bool:
    """Whether ``time`` is the start of a ``timeframe`` period counted from the Unix epoch (UTC)."""
    seconds = TIMEFRAME_SECONDS[timeframe]
    epoch = time.astimezone(UTC).timestamp()
    return time.microsecond == 0 and int(epoch) % seconds == 0
