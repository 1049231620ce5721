"""Candles as arrays, and higher timeframes built from M1 minutes (pure NumPy, no ORM)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Candles:
    """One pair's candles at one timeframe, oldest first.

    ``times`` are the start times in epoch seconds; a candle closes ``seconds`` later, and its
    close is the first moment its numbers may be used by a causal signal.
    """

    times: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    seconds: int = 60
    pip: float = 0.0001

    def __len__(self) -> int:
        return int(self.times.shape[0])

    @property
    def close_times(self) -> np.ndarray:
        return self.times + self.seconds

    @property
    def range_pips(self) -> np.ndarray:
        return (self.high - self.low) / self.pip

    def slice(self, start: int, stop: int) -> Candles:
        return Candles(
            self.times[start:stop],
            self.open[start:stop],
            self.high[start:stop],
            self.low[start:stop],
            self.close[start:stop],
            self.volume[start:stop],
            self.seconds,
            self.pip,
        )

    @classmethod
    def from_bars(cls, bars: Sequence[Any], *, seconds: int, pip: float) -> Candles:
        """From ``marketdata.selectors.Bar`` tuples (Decimal prices become float64 here, inside
        the analysis, as DESIGN.md section 3 allows)."""
        return cls(
            times=np.array([int(bar.time.timestamp()) for bar in bars], dtype=np.int64),
            open=np.array([float(bar.open) for bar in bars], dtype=np.float64),
            high=np.array([float(bar.high) for bar in bars], dtype=np.float64),
            low=np.array([float(bar.low) for bar in bars], dtype=np.float64),
            close=np.array([float(bar.close) for bar in bars], dtype=np.float64),
            volume=np.array([float(bar.volume) for bar in bars], dtype=np.float64),
            seconds=seconds,
            pip=pip,
        )

    @classmethod
    def from_records(
        cls, records: Iterable[dict[str, Any]], *, seconds: int = 60, pip: float = 0.0001
    ) -> Candles:
        """From broker-style dicts (time as ISO text or datetime, prices as numbers or text)."""
        rows = list(records)

        def epoch(value: Any) -> int:
            if isinstance(value, datetime):
                return int(value.timestamp())
            text = str(value)[:19]
            return int(np.datetime64(text, "s").astype(np.int64))

        return cls(
            times=np.array([epoch(row["time"]) for row in rows], dtype=np.int64),
            open=np.array([float(row["open"]) for row in rows], dtype=np.float64),
            high=np.array([float(row["high"]) for row in rows], dtype=np.float64),
            low=np.array([float(row["low"]) for row in rows], dtype=np.float64),
            close=np.array([float(row["close"]) for row in rows], dtype=np.float64),
            volume=np.array([float(row.get("volume", 0)) for row in rows], dtype=np.float64),
            seconds=seconds,
            pip=pip,
        )


def aggregate(candles: Candles, seconds: int) -> Candles:
    """Higher-timeframe candles from lower ones, bucketed on floor(time / seconds) * seconds
    (the original RealTimeAggregator's boundary, in UTC): O first, H max, L min, C last, V sum.

    A bucket with missing minutes is still a candle, as in the original; it closes at its
    boundary + ``seconds`` whatever minutes it holds.
    """
    if seconds % candles.seconds:
        raise ValueError(f"seconds={seconds} is not a multiple of the input's {candles.seconds}")
    if len(candles) == 0:
        empty = np.zeros(0)
        return Candles(
            empty.astype(np.int64), empty, empty, empty, empty, empty, seconds, candles.pip
        )
    bucket = (candles.times // seconds) * seconds
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(candles)] - 1
    return Candles(
        times=bucket[starts],
        open=candles.open[starts],
        high=np.maximum.reduceat(candles.high, starts),
        low=np.minimum.reduceat(candles.low, starts),
        close=candles.close[ends],
        volume=np.add.reduceat(candles.volume, starts),
        seconds=seconds,
        pip=candles.pip,
    )
