"""Price data: replayed or synthetic M1 candles, the tick path inside them, spreads and candles.

Every price is an integer number of pipettes (see `Instrument.to_points`). Inside each M1 candle
the mid price moves along a fixed path, open -> nearer extreme -> other extreme -> close, reaching
the vertices at 0 s, 20 s, 40 s and 60 s of the minute and moving linearly in between. Stop-loss,
take-profit and entry triggers are found exactly on this path, so the same data and the same
orders always give the same fills, whatever the clock speed or the polling rate.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from oandasim.instruments import Instrument
from oandasim.timeutil import SCHEDULES, near_daily_roll, new_york_hour, parse_time

BUNDLED_DATA = Path(__file__).parent / "data" / "eur_usd_m1_48h.json"

# The seconds at which the path reaches each vertex of a minute candle.
VERTEX_SECONDS = (0.0, 20.0, 40.0, 60.0)

# Spreads widen this many times around the 17:00 New York roll and while the market is closed,
# as OANDA's do.
ROLL_SPREAD_FACTOR = 4

# Synthetic walks: the standard deviation of one minute's move and the number of sub-steps per
# minute that give each candle a high and a low. Half a pip a minute is close to EUR/USD's
# typical quiet-hours volatility in the bundled real data.
SYNTHETIC_MINUTE_SIGMA_PIPS = 0.5
SYNTHETIC_SUBSTEPS = 4
SYNTHETIC_EPOCH = datetime(2015, 1, 1)
# How far before the clock's start synthetic history reaches by default. Generating a day of
# minutes costs about 10 ms of pure Python, so a year would make the first daily-candle request
# take seconds; 120 days still covers 500 H4 candles (--history-days changes it).
SYNTHETIC_HISTORY_DAYS = 120

Candle = tuple[int, int, int, int, int]  # open, high, low, close, volume in pipettes


def load_candle_file(path: Path, instrument: Instrument) -> dict[int, Candle]:
    """Read the seed format (a list of {time, open, high, low, close, volume}) or OANDA candles."""
    raw: Any = json.loads(path.read_text())
    rows = raw["candles"] if isinstance(raw, dict) else raw
    candles: dict[int, Candle] = {}
    for row in rows:
        minute = int(parse_time(str(row["time"])) // 60)
        if "mid" in row:
            prices = row["mid"]
            values = [prices["o"], prices["h"], prices["l"], prices["c"]]
        elif "bid" in row and "ask" in row:
            values = [
                (Decimal(str(row["bid"][k])) + Decimal(str(row["ask"][k]))) / 2
                for k in ("o", "h", "l", "c")
            ]
        else:
            values = [row["open"], row["high"], row["low"], row["close"]]
        o, h, low, c = (instrument.to_points(Decimal(str(value))) for value in values)
        candles[minute] = (o, max(h, o, c), min(low, o, c), c, int(row.get("volume", 0)))
    return candles


class Series:
    """The M1 candles of one instrument, either replayed from a file or generated on demand."""

    def __init__(
        self,
        instrument: Instrument,
        spread_pips: Decimal,
        candles: dict[int, Candle] | None = None,
        seed: int = 0,
        history_floor: float = 0.0,
    ) -> None:
        self.instrument = instrument
        self.spread_points = int(spread_pips * instrument.points_per_pip)
        self.synthetic = candles is None
        # The instrument's trading hours: FX, metals or crypto (every minute).
        self.is_open = SCHEDULES[instrument.schedule]
        self.always_open = instrument.schedule == "CRYPTO"
        self.seed = seed
        self._candles: dict[int, Candle] = candles or {}
        self._minutes: list[int] = sorted(self._candles)
        self._generated_sessions: set[datetime] = set()
        self._levels: list[int] = []
        self.history_floor_minute = (
            int(history_floor // 60)
            if self.synthetic
            else (self._minutes[0] if self._minutes else 0)
        )

    # ----- raw minutes -------------------------------------------------------------------------

    def candle(self, minute: int) -> Candle | None:
        found = self._candles.get(minute)
        if found is None and self.synthetic:
            self._ensure_session(minute)
            found = self._candles.get(minute)
        return found

    def minutes_between(self, first: int, last: int) -> list[int]:
        """Minutes with a candle in [first, last), in order."""
        first = max(first, self.history_floor_minute)
        if last <= first:
            return []
        if self.synthetic:
            self._ensure_range(first, last)
        lo = bisect.bisect_left(self._minutes, first)
        hi = bisect.bisect_left(self._minutes, last)
        return self._minutes[lo:hi]

    def last_minute_at_or_before(self, minute: int) -> int | None:
        if self.synthetic:
            # Walk back over at most a long weekend plus holidays worth of sessions.
            for back in range(0, 6 * 1440, 1440):
                self._ensure_range(minute - back - 1440, minute + 1)
                index = bisect.bisect_right(self._minutes, minute)
                if index:
                    return self._minutes[index - 1]
            return None
        index = bisect.bisect_right(self._minutes, minute)
        return self._minutes[index - 1] if index else None

    # ----- the path ----------------------------------------------------------------------------

    @staticmethod
    def vertices(candle: Candle) -> tuple[int, int, int, int]:
        o, h, low, c, _ = candle
        if h - o <= o - low:
            return o, h, low, c
        return o, low, h, c

    def mid_at(self, seconds: float) -> tuple[int, float, bool]:
        """The mid price at a moment, the time of that tick and whether the market is open.

        While closed the last price before the moment is returned, timed at the close of its minute.
        """
        minute = int(seconds // 60)
        candle = self.candle(minute)
        if candle is not None and self.is_open(minute):
            return self._interpolate(candle, seconds - minute * 60), seconds, True
        previous = self.last_minute_at_or_before(minute)
        if previous is None:
            return self.instrument.to_points(self.instrument.base_price), seconds, False
        last = self._candles[previous]
        return last[3], previous * 60 + 59.0, False

    def _interpolate(self, candle: Candle, offset: float) -> int:
        points = self.vertices(candle)
        if offset >= 60.0:
            return points[3]
        index = min(int(offset // 20.0), 2)
        start = points[index]
        end = points[index + 1]
        fraction = (offset - VERTEX_SECONDS[index]) / 20.0
        return start + round((end - start) * fraction)

    def segments(self, start: float, end: float) -> Iterator[tuple[float, float, int, int]]:
        """Linear pieces (t0, t1, p0, p1) of the path over the open minutes in [start, end]."""
        first_minute = int(start // 60)
        last_minute = int(end // 60)
        for minute in self.minutes_between(first_minute, last_minute + 1):
            if not self.is_open(minute):
                continue
            candle = self._candles[minute]
            points = self.vertices(candle)
            base = minute * 60.0
            for index in range(3):
                seg_start = base + VERTEX_SECONDS[index]
                seg_end = base + VERTEX_SECONDS[index + 1]
                if seg_end <= start or seg_start > end:
                    continue
                low_point = points[index]
                high_point = points[index + 1]
                t0 = max(seg_start, start)
                t1 = min(seg_end, end)
                p0 = low_point + round((high_point - low_point) * (t0 - seg_start) / 20.0)
                p1 = low_point + round((high_point - low_point) * (t1 - seg_start) / 20.0)
                yield t0, t1, p0, p1

    # ----- spreads -----------------------------------------------------------------------------

    def spread_at(self, minute: int, is_open: bool) -> int:
        # Crypto has no daily roll: its spread widens only while it is closed.
        if not is_open or (not self.always_open and near_daily_roll(minute)):
            return self.spread_points * ROLL_SPREAD_FACTOR
        return self.spread_points

    def bid_ask(self, mid: int, spread: int) -> tuple[int, int]:
        bid = mid - spread // 2
        return bid, bid + spread

    # ----- synthetic generation ----------------------------------------------------------------

    def _ensure_range(self, first: int, last: int) -> None:
        if not self.synthetic:
            return
        step = 1440
        minute = first
        while minute < last + step:
            self._ensure_session(min(minute, last))
            minute += step

    def _ensure_session(self, minute: int) -> None:
        if minute < self.history_floor_minute:
            return
        session = _session_of_minute(minute)
        if session in self._generated_sessions:
            return
        self._generated_sessions.add(session)
        self._generate_session(session)

    def _level(self, session: datetime) -> int:
        """A slow daily random walk that fixes where each synthetic session starts."""
        index = (session - SYNTHETIC_EPOCH).days
        base = self.instrument.to_points(self.instrument.base_price)
        sigma = SYNTHETIC_MINUTE_SIGMA_PIPS * self.instrument.points_per_pip * math.sqrt(1435)
        rng = random.Random(f"oandasim-levels:{self.seed}:{self.instrument.name}")
        if not self._levels:
            self._levels.append(base)
        while len(self._levels) <= index:
            # Reseed per block so extending the list gives the same numbers as making it at once.
            rng.seed(f"oandasim-levels:{self.seed}:{self.instrument.name}:{len(self._levels)}")
            previous = self._levels[-1]
            pull = (base - previous) * 0.01
            self._levels.append(round(previous + pull + rng.gauss(0.0, sigma)))
        return self._levels[max(index, 0)]

    def _generate_session(self, session: datetime) -> None:
        start_local = datetime(session.year, session.month, session.day, 17, tzinfo=NY) - timedelta(
            days=1
        )
        first = int(start_local.timestamp() // 60)
        last = first + 1440
        if self.instrument.schedule != "FX":
            # The session ends at the next 17:00 New York: 23 or 25 hours on a daylight-saving
            # Sunday, which crypto trades through. (FX is closed then, and keeps its fixed day.)
            end_local = datetime(session.year, session.month, session.day, 17, tzinfo=NY)
            last = int(end_local.timestamp() // 60)
        minutes = [m for m in range(first, last) if self.is_open(m)]
        if not minutes:
            return
        rng = random.Random(f"oandasim-walk:{self.seed}:{self.instrument.name}:{session.date()}")
        sigma = (
            SYNTHETIC_MINUTE_SIGMA_PIPS
            * self.instrument.points_per_pip
            / math.sqrt(SYNTHETIC_SUBSTEPS)
        )
        steps = len(minutes) * SYNTHETIC_SUBSTEPS
        # Uniform sub-steps with the same variance as Gaussian ones: sums of four per minute are
        # close to normal, and random() is many times cheaper than gauss() for a year of history.
        spread = sigma * math.sqrt(12.0)
        # The same draws, sums and roundings as a plain Python loop (cumsum adds in order and
        # rounds half to even, like round()), in NumPy: a backfill of a year of synthetic history
        # spent a tenth of its time here.
        draws = np.fromiter(iter(rng.random, -1.0), np.float64, steps)
        walk = np.concatenate(([0.0], np.cumsum((draws - 0.5) * spread)))
        start_level = self._level(session)
        end_level = self._level(session + timedelta(days=1))
        # A Brownian bridge ends the session at the next session's level, so sessions join up.
        correction = float(walk[-1]) - (end_level - start_level)
        drift = correction / steps
        path = np.round(start_level + walk - drift * np.arange(steps + 1)).astype(np.int64)
        # Each minute spans SUBSTEPS + 1 points of the path: its open, its close and between.
        chunks = np.lib.stride_tricks.sliding_window_view(path, SYNTHETIC_SUBSTEPS + 1)
        chunks = chunks[::SYNTHETIC_SUBSTEPS]
        volumes = 20 + (np.fromiter(iter(rng.random, -1.0), np.float64, len(minutes)) * 220)
        self._candles.update(
            zip(
                minutes,
                zip(
                    chunks[:, 0].tolist(),
                    chunks.max(axis=1).tolist(),
                    chunks.min(axis=1).tolist(),
                    chunks[:, -1].tolist(),
                    volumes.astype(np.int64).tolist(),
                    strict=True,
                ),
                strict=True,
            )
        )
        position = bisect.bisect_left(self._minutes, minutes[0])
        self._minutes[position:position] = minutes


NY = ZoneInfo("America/New_York")


def _session_of_minute(minute: int) -> datetime:
    return new_york_hour(minute // 60)[2]


@dataclass
class Quote:
    """One price of an instrument at a moment, as the pricing endpoints show it."""

    instrument: Instrument
    time: float
    mid: int
    bid: int
    ask: int
    spread: int
    tradeable: bool

    @property
    def closeout_bid(self) -> int:
        return self.bid - self.spread // 2

    @property
    def closeout_ask(self) -> int:
        return self.ask + self.spread // 2


class Market:
    """All instruments' series, with quotes at any simulated moment."""

    def __init__(self, series: dict[str, Series]) -> None:
        self.series = series
        self._recent: dict[tuple[str, float], Quote] = {}

    def quote(self, name: str, seconds: float) -> Quote:
        # One request asks for the same quote several times (fill, conversion, margin), so keep
        # the last few; quotes depend only on the instrument and the moment.
        key = (name, seconds)
        cached = self._recent.get(key)
        if cached is not None:
            return cached
        if len(self._recent) > 256:
            self._recent.clear()
        series = self.series[name]
        mid, tick_time, is_open = series.mid_at(seconds)
        spread = series.spread_at(int(seconds // 60), is_open)
        bid, ask = series.bid_ask(mid, spread)
        quote = Quote(series.instrument, tick_time, mid, bid, ask, spread, is_open)
        self._recent[key] = quote
        return quote
