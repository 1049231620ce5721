"""InstrumentsCandles: M1 candles aggregated into OANDA's granularities, never past the clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oandasim.instruments import format_points
from oandasim.market import Series
from oandasim.timeutil import TimeFormatError, format_minute, format_time, parse_time

GRANULARITY_SECONDS: dict[str, int] = {
    "S5": 5,
    "S10": 10,
    "S15": 15,
    "S30": 30,
    "M1": 60,
    "M2": 120,
    "M4": 240,
    "M5": 300,
    "M10": 600,
    "M15": 900,
    "M30": 1800,
    "H1": 3600,
    "H2": 7200,
    "H3": 10800,
    "H4": 14400,
    "H6": 21600,
    "H8": 28800,
    "H12": 43200,
    "D": 86400,
    "W": 604800,
}
# These start at the daily alignment hour in the alignment time zone; shorter ones on UTC.
ALIGNED_GRANULARITIES = {"H2", "H3", "H4", "H6", "H8", "H12", "D", "W"}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MAXIMUM_COUNT = 5000


class CandleRequestError(ValueError):
    """A bad candles query; the message is OANDA's errorMessage."""


@dataclass
class CandleQuery:
    granularity: str
    price: str
    count: int | None
    start: float | None
    end: float | None
    include_first: bool
    smooth: bool
    daily_alignment: int
    timezone: ZoneInfo
    weekly_alignment: int

    @classmethod
    def parse(cls, params: dict[str, str], now: float) -> CandleQuery:
        granularity = params.get("granularity", "S5")
        if granularity not in GRANULARITY_SECONDS:
            raise CandleRequestError("Invalid value specified for 'granularity'")
        price = params.get("price", "M")
        if not price or any(c not in "MBA" for c in price) or len(set(price)) != len(price):
            raise CandleRequestError("Invalid value specified for 'price'")
        start = _time_param(params, "from")
        end = _time_param(params, "to")
        count: int | None = None
        if "count" in params:
            try:
                count = int(params["count"])
            except ValueError:
                raise CandleRequestError("Invalid value specified for 'count'") from None
            if count < 1:
                raise CandleRequestError("Invalid value specified for 'count'")
            if count > MAXIMUM_COUNT:
                raise CandleRequestError("Maximum value for 'count' exceeded")
            if start is not None and end is not None:
                raise CandleRequestError("'count' cannot be specified with both 'from' and 'to'")
        elif start is None or end is None:
            count = 500
        # Times past the simulated clock are not errors: oandapyV20's InstrumentsCandlesFactory
        # asks up to the wall-clock now, which is far ahead of a replay. Nothing past the clock
        # is ever served; such a range is simply cut at the clock (or empty).
        if start is not None and end is not None:
            if end < start:
                raise CandleRequestError("Invalid value specified for 'to'. 'to' is before 'from'")
            if (end - start) / GRANULARITY_SECONDS[granularity] > MAXIMUM_COUNT:
                raise CandleRequestError("Maximum value for 'count' exceeded")
        try:
            daily_alignment = int(params.get("dailyAlignment", "17"))
            timezone = ZoneInfo(params.get("alignmentTimezone", "America/New_York"))
            weekly = WEEKDAYS.index(params.get("weeklyAlignment", "Friday"))
        except (ValueError, ZoneInfoNotFoundError):
            raise CandleRequestError("Invalid value specified for alignment") from None
        if not 0 <= daily_alignment <= 23:
            raise CandleRequestError("Invalid value specified for 'dailyAlignment'")
        return cls(
            granularity=granularity,
            price=price,
            count=count,
            start=start,
            end=end,
            include_first=_bool_param(params.get("includeFirst"), True),
            smooth=_bool_param(params.get("smooth"), False),
            daily_alignment=daily_alignment,
            timezone=timezone,
            weekly_alignment=weekly,
        )

    def bucket(self, seconds: float) -> tuple[float, float]:
        """The [start, end) of the candle that contains a moment."""
        size = GRANULARITY_SECONDS[self.granularity]
        if self.granularity not in ALIGNED_GRANULARITIES:
            start = (seconds // size) * size
            return start, start + size
        local = datetime.fromtimestamp(seconds, self.timezone).replace(tzinfo=None)
        anchor = local.replace(hour=self.daily_alignment, minute=0, second=0, microsecond=0)
        if anchor > local:
            anchor -= timedelta(days=1)
        if self.granularity == "W":
            # Weekly candles open on the alignment weekday's daily alignment hour.
            while anchor.weekday() != self.weekly_alignment:
                anchor -= timedelta(days=1)
            start_local, end_local = anchor, anchor + timedelta(days=7)
        else:
            hours = size // 3600
            elapsed = int((local - anchor).total_seconds() // size)
            start_local = anchor + timedelta(hours=hours * elapsed)
            end_local = start_local + timedelta(hours=hours)
        return (
            start_local.replace(tzinfo=self.timezone).timestamp(),
            end_local.replace(tzinfo=self.timezone).timestamp(),
        )


def _time_param(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    try:
        return parse_time(params[name])
    except TimeFormatError:
        raise CandleRequestError(f"Invalid value specified for '{name}'") from None


def _bool_param(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


# One sample of mid prices: (start, end, open, high, low, close, volume, spread).
Sample = tuple[float, float, int, int, int, int, int, int]


def _samples(series: Series, first: float, last: float, now: float, size: int) -> list[Sample]:
    """Candles of at most one minute between two moments, the forming one cut at `now`."""
    samples: list[Sample] = []
    last = min(last, now)
    for minute in series.minutes_between(int(first // 60), int(last // 60) + 1):
        candle = series.candle(minute)
        if candle is None:
            continue
        base = minute * 60.0
        spread = series.spread_at(minute, True)
        if size >= 60 and base + 60.0 <= now:
            o, h, low, c, volume = candle
            samples.append((base, base + 60.0, o, h, low, c, volume, spread))
            continue
        # The forming minute, or sub-minute candles: read them off the path.
        step = float(min(size, 60))
        offset = 0.0
        while offset < 60.0 and base + offset <= now:
            start = base + offset
            stop = min(start + step, now, base + 60.0)
            points = [p for segment in series.segments(start, stop) for p in segment[2:]]
            if not points:
                break
            share = max(1, round(candle[4] * (stop - start) / 60.0))
            samples.append(
                (
                    start,
                    start + step,
                    points[0],
                    max(points),
                    min(points),
                    points[-1],
                    share,
                    spread,
                )
            )
            offset += step
    return samples


def build_candles(series: Series, query: CandleQuery, now: float) -> list[dict[str, object]]:
    size = GRANULARITY_SECONDS[query.granularity]
    if query.start is not None and query.start > now:
        return []
    if size == 60 and query.start is not None:
        return _minute_candles(series, query, now)
    return _grouped_candles(series, query, now)


def _grouped_candles(series: Series, query: CandleQuery, now: float) -> list[dict[str, object]]:
    size = GRANULARITY_SECONDS[query.granularity]
    if query.start is not None:
        window_start = query.start
        window_end = query.end if query.end is not None else now
        if query.end is None:
            assert query.count is not None
            window_end = min(now, query.start + _window(size, query.count))
        buckets = _group(query, _samples(series, window_start, window_end, now, size), now)
        if query.end is not None:
            buckets = [b for b in buckets if b[0] < query.end]
        buckets = [
            b
            for b in buckets
            if b[0] > query.start or (b[0] == query.start and query.include_first)
        ]
        if query.count is not None:
            buckets = buckets[: query.count]
    else:
        end = min(query.end, now) if query.end is not None else now
        assert query.count is not None
        span = _window(size, query.count)
        floor = series.history_floor_minute * 60.0
        while True:
            window_start = max(end - span, floor)
            buckets = [
                b
                for b in _group(query, _samples(series, window_start, end, now, size), now)
                if query.end is None or b[0] < query.end
            ]
            if len(buckets) > query.count or window_start <= floor:
                break
            span *= 2
        # The first bucket of a widened window may be cut short, so drop it when we have spare.
        buckets = buckets[-query.count :]
    return [_to_wire(series, query, bucket) for bucket in buckets]


def _minute_candles(series: Series, query: CandleQuery, now: float) -> list[dict[str, object]]:
    """M1 candles from a start time: what the general path gives, without grouping samples.

    Backfills page through history this way, 5000 candles a request: each closed minute is one
    candle straight from the series, and only the forming minute is read off the price path.
    """
    return [
        entry if isinstance(entry, dict) else _closed_minute_wire(*entry)
        for entry in _minute_entries(series, query, now)
    ]


def minute_candles_json(series: Series, query: CandleQuery, now: float) -> str:
    """``build_candles`` of an M1 query from a start time as JSON text (json.dumps' layout).

    Writing each closed minute's text directly costs about a third of building its dicts for
    json.dumps, which was a tenth of a backfill's time on the shared cores.
    """
    parts = []
    for entry in _minute_entries(series, query, now):
        if isinstance(entry, dict):
            parts.append(json.dumps(entry, separators=(",", ":")))
            continue
        volume, time, prices = entry
        text = f'{{"complete":true,"volume":{volume},"time":"{time}"'
        for key, o, h, low, c in prices:
            text += f',"{key}":{{"o":"{o}","h":"{h}","l":"{low}","c":"{c}"}}'
        parts.append(text + "}")
    return "[" + ",".join(parts) + "]"


# A closed minute: volume, time, and (key, open, high, low, close) texts per price component.
ClosedMinute = tuple[int, str, list[tuple[str, str, str, str, str]]]


def _closed_minute_wire(
    volume: int, time: str, prices: list[tuple[str, str, str, str, str]]
) -> dict[str, object]:
    candle: dict[str, object] = {"complete": True, "volume": volume, "time": time}
    for key, o, h, low, c in prices:
        candle[key] = {"o": o, "h": h, "l": low, "c": c}
    return candle


def _minute_entries(
    series: Series, query: CandleQuery, now: float
) -> Iterator[ClosedMinute | dict[str, object]]:
    assert query.start is not None
    start = query.start
    window_end = (
        query.end if query.end is not None else min(now, start + _window(60, query.count or 0))
    )
    components = [
        (key, component)
        for component, key in (("M", "mid"), ("B", "bid"), ("A", "ask"))
        if component in query.price
    ]
    precision = series.instrument.display_precision
    produced = 0
    for minute in series.minutes_between(int(start // 60), int(min(window_end, now) // 60) + 1):
        base = minute * 60.0
        if base < start or (base == start and not query.include_first):
            continue
        if (query.end is not None and base >= query.end) or produced == query.count:
            break
        if base + 60.0 > now:
            # The forming minute, cut at the clock: the general path reads it off the path.
            forming = _group(query, _samples(series, base, now, now, 60), now)
            yield from (_to_wire(series, query, bucket) for bucket in forming[:1])
            break
        values = series.candle(minute)
        if values is None:
            continue
        o, h, low, c, volume = values
        prices = []
        for key, component in components:
            if component == "M":
                offset = 0
            else:
                spread = series.spread_at(minute, True)
                offset = -(spread // 2) if component == "B" else spread - spread // 2
            prices.append(
                (
                    key,
                    format_points(o + offset, precision),
                    format_points(h + offset, precision),
                    format_points(low + offset, precision),
                    format_points(c + offset, precision),
                )
            )
        produced += 1
        yield volume, format_minute(minute), prices


def _window(size: int, count: int) -> float:
    # Weekends and holidays hold no candles, so reach back a little further than count x size.
    return float(size * count) * 1.5 + 3 * 86400


Bucket = tuple[float, bool, list[Sample]]


def _group(query: CandleQuery, samples: list[Sample], now: float) -> list[Bucket]:
    buckets: list[Bucket] = []
    current_end = -1.0
    for sample in samples:
        if sample[0] >= current_end:
            start, current_end = query.bucket(sample[0])
            buckets.append((start, current_end <= now, []))
        buckets[-1][2].append(sample)
    return buckets


def _to_wire(series: Series, query: CandleQuery, bucket: Bucket) -> dict[str, object]:
    start, complete, samples = bucket
    instrument = series.instrument
    volume = sum(s[6] for s in samples)
    candle: dict[str, object] = {
        "complete": complete,
        "volume": volume,
        "time": format_time(start),
    }
    for component, key in (("M", "mid"), ("B", "bid"), ("A", "ask")):
        if component not in query.price:
            continue
        adjusted = [_shift(s, component) for s in samples]
        candle[key] = {
            "o": instrument.format(adjusted[0][0]),
            "h": instrument.format(max(a[1] for a in adjusted)),
            "l": instrument.format(min(a[2] for a in adjusted)),
            "c": instrument.format(adjusted[-1][3]),
        }
    return candle


def _shift(sample: Sample, component: str) -> tuple[int, int, int, int]:
    _, _, o, h, low, c, _, spread = sample
    if component == "M":
        return o, h, low, c
    offset = -(spread // 2) if component == "B" else spread - spread // 2
    return o + offset, h + offset, low + offset, c + offset
