"""Wire time formats and the New York trading calendar.

Simulated time is a float of seconds since the Unix epoch (UTC) everywhere inside the simulator;
these helpers turn it into OANDA's RFC3339 strings with nine fractional digits and back.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$"
)


class TimeFormatError(ValueError):
    """Raised when a client sends a time that is neither RFC3339 nor UNIX seconds."""


def parse_time(text: str) -> float:
    """Parse an RFC3339 time (any fraction length) or UNIX seconds into epoch seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    match = _RFC3339.match(text)
    if match is None:
        raise TimeFormatError(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    seconds = moment.timestamp()
    if fraction:
        seconds += int(fraction[:9]) / 10 ** len(fraction[:9])
    return seconds


def format_time(seconds: float) -> str:
    """Format epoch seconds the way OANDA does: RFC3339 UTC with nine fractional digits."""
    micros = round(seconds * 1_000_000)
    whole, fraction = divmod(micros, 1_000_000)
    return _format_whole_second(whole) + f".{fraction:06d}000Z"


@functools.lru_cache(maxsize=65536)
def _format_whole_second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")


_MINUTE_OF_DAY = tuple(f"T{m // 60:02d}:{m % 60:02d}:00.000000000Z" for m in range(1440))


def format_minute(minute: int) -> str:
    """``format_time(minute * 60)``, faster: a year of M1 candles has half a million minutes."""
    day, minute_of_day = divmod(minute, 1440)
    return _format_day(day) + _MINUTE_OF_DAY[minute_of_day]


@functools.lru_cache(maxsize=4096)
def _format_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


def format_unix(seconds: float) -> str:
    return f"{seconds:.9f}"


@functools.lru_cache(maxsize=131072)
def new_york_hour(hour: int) -> tuple[int, int, datetime]:
    """(weekday, hour of day, trading session date) in New York for an epoch hour.

    New York is a whole number of hours from UTC, so every minute of a UTC hour shares these;
    caching per hour keeps time-zone conversion out of per-minute loops.
    """
    local = datetime.fromtimestamp(hour * 3600, NEW_YORK)
    session = local + timedelta(hours=7)
    return local.weekday(), local.hour, datetime(session.year, session.month, session.day)


def schedule_open(minute: int) -> bool:
    """Whether OANDA's FX schedule is open during the given epoch minute.

    FX trades from Sunday 17:00 to Friday 17:00 New York time with a daily break from 16:58 to
    17:03, so the week really opens at Sunday 17:03 and closes at Friday 16:58.
    """
    weekday, hour, _ = new_york_hour(minute // 60)  # Monday is 0, Sunday is 6.
    minute_of_day = hour * 60 + minute % 60
    in_daily_break = 16 * 60 + 58 <= minute_of_day < 17 * 60 + 3
    if in_daily_break or weekday == 5:
        return False
    if weekday == 4 and minute_of_day >= 17 * 60:
        return False
    return not (weekday == 6 and minute_of_day < 17 * 60)


def metal_schedule_open(minute: int) -> bool:
    """Whether OANDA's metals (XAU_USD, XAG_USD) trade during the given epoch minute.

    Metals keep the FX week, Sunday 17:00 to Friday 17:00 New York, but break daily from 17:00 to
    18:00, so the week really opens at Sunday 18:00.
    """
    weekday, hour, _ = new_york_hour(minute // 60)  # Monday is 0, Sunday is 6.
    if hour == 17 or weekday == 5:
        return False
    if weekday == 4 and hour >= 17:
        return False
    return not (weekday == 6 and hour < 18)


def always_open(minute: int) -> bool:
    """Crypto CFDs trade every minute of the week, through the FX weekend."""
    return True


# The trading hours of each schedule an instrument names (`Instrument.schedule`).
SCHEDULES: dict[str, Callable[[int], bool]] = {
    "FX": schedule_open,
    "METAL": metal_schedule_open,
    "CRYPTO": always_open,
}


def near_daily_roll(minute: int) -> bool:
    """Whether the minute lies in the illiquid window around the 17:00 New York roll."""
    _, hour, _ = new_york_hour(minute // 60)
    minute_of_day = hour * 60 + minute % 60
    return 16 * 60 + 50 <= minute_of_day < 17 * 60 + 15


def next_ny_close(seconds: float) -> float:
    """The next 17:00 New York after the given moment, used for GFD orders."""
    local = datetime.fromtimestamp(seconds, NEW_YORK)
    day = local.date() if local.hour < 17 else local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 17, tzinfo=NEW_YORK).timestamp()
