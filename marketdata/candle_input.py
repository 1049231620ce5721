"""Parsing and validation of incoming candles, shared by every writer (pure: no ORM).

A candle arrives as a mapping from a JSON file, the OANDA API or the streamer. ``parse_candle``
turns it into a ``CandleRow`` or a ``CandleRejection`` that names the row, the field, the value
and what was expected, so one bad candle never costs the rest of its batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from marketdata.timeframes import TIMEFRAME_SECONDS

_DURATIONS = {name: timedelta(seconds=seconds) for name, seconds in TIMEFRAME_SECONDS.items()}

# OANDA sends RFC 3339 times with nine fractional digits ("2025-07-23T20:40:00.000000000Z"), which
# datetime.fromisoformat cannot read, or Unix seconds as a decimal string when asked for UNIX times.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$"
)
_UNIX = re.compile(r"^\d{9,11}(\.\d{1,9})?$")


class CandleTimeError(ValueError):
    pass


def parse_broker_time(value: Any) -> datetime:
    """Read a broker timestamp (RFC 3339 with up to 9 fractional digits, or Unix seconds) as UTC."""
    try:
        return _broker_time(value)
    except (ArithmeticError, ValueError, OSError) as error:
        if isinstance(error, CandleTimeError):
            raise
        # A number of seconds or an offset that takes the time past the years 1 to 9999, a NaN.
        raise CandleTimeError(f"is not a representable time ({error})") from None


def _broker_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CandleTimeError("has no time zone; expected an aware datetime in UTC")
        return value.astimezone(UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise CandleTimeError(
            "is not a timestamp; expected RFC 3339 text like 2025-07-23T20:40:00Z"
        )
    # OANDA's own form, "2025-07-23T20:40:00.000000000Z", read by the C parser (a backfill reads
    # hundreds of thousands); anything else goes through the general pattern below.
    if (
        len(value) == 30
        and value[4] == "-"
        and value[10] == "T"
        and value[13] == ":"
        and value[19] == "."
        and value[29] == "Z"
        and value[20:29].isdigit()
    ):
        try:
            whole_seconds = datetime.fromisoformat(value[:19])
        except ValueError:
            pass
        else:
            return whole_seconds.replace(microsecond=int(value[20:26]), tzinfo=UTC)
    text = value.strip()
    if _UNIX.match(text):
        seconds = Decimal(text)
        whole = int(seconds)
        micro = int((seconds - whole) * 1_000_000)
        return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micro)
    match = _RFC3339.match(text)
    if not match:
        raise CandleTimeError(
            "is not a timestamp; expected RFC 3339 text like 2025-07-23T20:40:00Z"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None:
        raise CandleTimeError("has no time zone; expected a trailing Z or an offset like +00:00")
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
        )
    except ValueError as error:
        raise CandleTimeError(f"is not a valid date ({error})") from None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment -= sign * offset
    return moment


class CandleRow(NamedTuple):
    pair: str
    timeframe: str
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    complete: bool

    @property
    def key(self) -> tuple[str, str, datetime]:
        return (self.pair, self.timeframe, self.time)

    def same_values(self, other: CandleRow) -> bool:
        return (
            self.open == other.open
            and self.high == other.high
            and self.low == other.low
            and self.close == other.close
            and self.volume == other.volume
            and self.complete == other.complete
        )


@dataclass(frozen=True, slots=True)
class CandleRejection:
    """Why one incoming candle was refused; ``row`` counts from 0 within its batch."""

    row: int
    field: str
    value: Any
    reason: str
    pair: str | None = None
    time: Any = None

    def __str__(self) -> str:
        where = f"row {self.row}"
        details = " ".join(str(part) for part in (self.pair, self.time) if part is not None)
        if details:
            where += f" ({details})"
        return f"{where}: {self.field}={self.value!r} {self.reason}"


_PRICE_FIELDS = ("open", "high", "low", "close")
# Prices are stored as numeric(16, 6): a price that needs more decimal places would be rounded.
_MICRO = Decimal("0.000001")
_ZERO = Decimal(0)
_MAX_PRICE = Decimal("1e9")


def _price(value: Any) -> Decimal:
    kind = type(value)
    if kind is Decimal:
        return value
    if kind is str:
        return Decimal(value)
    if isinstance(value, bool):
        raise InvalidOperation
    if isinstance(value, float):
        # repr() gives the shortest text that round-trips, so 1.1705 stays 1.1705.
        return Decimal(repr(value))
    if isinstance(value, int | str | Decimal):
        return Decimal(value)
    raise InvalidOperation


def _price_problem(price: Decimal) -> str | None:
    if not price.is_finite():
        return "is not finite"
    if not price > _ZERO:
        return "is not positive"
    if not price < _MAX_PRICE:
        return "is too large for a price"
    if price.quantize(_MICRO) != price:
        return "has more than 6 decimal places"
    return None


def _stamp(time: datetime) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_candle(
    row: int,
    raw: Mapping[str, Any],
    *,
    pair: str | None,
    timeframe: str | None,
    known_pairs: Set[str],
    now: datetime,
) -> CandleRow | CandleRejection:
    """Validate one candle; ``pair`` and ``timeframe`` are the defaults for rows that omit them.

    This runs once per candle on every write path (a million rows a minute in a backfill), so the
    common case is kept cheap: exact type checks first, text for messages only on rejection.
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return CandleRejection(row, "candle", raw, "is not an object; expected a JSON object")
    get = raw.get
    symbol: str | None = get("pair") or get("instrument") or pair
    if type(symbol) is not str or symbol not in known_pairs:
        if symbol is None:
            return CandleRejection(row, "pair", None, "is missing; expected a pair like EUR_USD")
        return CandleRejection(
            row, "pair", symbol, "is not a known pair; add it to the pairs table first"
        )
    granularity: str | None = get("timeframe") or get("granularity") or timeframe
    seconds = TIMEFRAME_SECONDS.get(granularity) if type(granularity) is str else None
    if granularity is None or seconds is None:
        return CandleRejection(
            row,
            "timeframe",
            granularity,
            f"is not supported; expected one of {', '.join(TIMEFRAME_SECONDS)}",
            pair=symbol,
        )
    raw_time = get("time")
    if type(raw_time) is datetime and raw_time.tzinfo is UTC:
        time = raw_time
    else:
        try:
            time = parse_broker_time(raw_time)
        except CandleTimeError as error:
            return CandleRejection(row, "time", raw_time, str(error), pair=symbol)
    # Every stored timeframe divides a day, so alignment is a question about the time of day.
    if time.microsecond or (time.hour * 3600 + time.minute * 60 + time.second) % seconds:
        return CandleRejection(
            row,
            "time",
            raw_time,
            f"is not aligned to {granularity}; expected a multiple of {seconds} s since the epoch",
            pair=symbol,
        )
    if time > now:
        return CandleRejection(
            row, "time", raw_time, f"is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})", symbol
        )
    complete = get("complete", True)
    if complete is not True and complete is not False:
        return CandleRejection(
            row, "complete", complete, "is not true or false", symbol, _stamp(time)
        )
    if complete and time + _DURATIONS[granularity] > now:
        return CandleRejection(
            row,
            "complete",
            complete,
            f"cannot be true before the {granularity} period ends",
            symbol,
            _stamp(time),
        )
    prices = []
    for name in _PRICE_FIELDS:
        value = get(name)
        try:
            price = _price(value)
        except (InvalidOperation, ValueError):
            return CandleRejection(row, name, value, "is not a number", symbol, _stamp(time))
        problem = _price_problem(price)
        if problem is not None:
            return CandleRejection(row, name, value, problem, symbol, _stamp(time))
        prices.append(price)
    open_, high, low, close = prices
    if high < low:
        return CandleRejection(row, "high", str(high), f"is below low {low}", symbol, _stamp(time))
    for name, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            return CandleRejection(
                row, name, str(price), f"is outside [low {low}, high {high}]", symbol, _stamp(time)
            )
    volume = get("volume", 0)
    if type(volume) is not int or volume < 0:
        return CandleRejection(
            row, "volume", volume, "is not a non-negative integer", symbol, _stamp(time)
        )
    return CandleRow(symbol, granularity, time, open_, high, low, close, volume, complete)


def oanda_candle_fields(candle: Mapping[str, Any], price: str = "mid") -> dict[str, Any]:
    """Flatten one candle of OANDA's candles response (``{"mid": {"o": ...}}``) to our fields."""
    component = candle.get(price)
    if not isinstance(component, Mapping):
        return {"time": candle.get("time"), "open": None, "high": None, "low": None, "close": None}
    return {
        "time": candle.get("time"),
        "open": component.get("o"),
        "high": component.get("h"),
        "low": component.get("l"),
        "close": component.get("c"),
        "volume": candle.get("volume", 0),
        "complete": candle.get("complete", True),
    }
