"""Parsing and validation of incoming candles, shared by every writer (pure: no ORM).

A candle arrives as a mapping from a JSON file, the OANDA API or the streamer. ``parse_candle``
turns it into a ``CandleRow`` or a ``CandleRejection`` that names the row, the field, the value
and what was expected, so one bad candle never costs the rest of its batch.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import numpy as np

from marketdata.broker_time import CandleTimeError, parse_broker_time
from marketdata.timeframes import TIMEFRAME_SECONDS
from septrader.decimals import ASCII_NUMBER, NonAsciiNumberError, parse_decimal

_DURATIONS = {name: timedelta(seconds=seconds) for name, seconds in TIMEFRAME_SECONDS.items()}


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
# Volume is stored as a PostgreSQL integer: a larger one would fail the whole batch's write.
MAX_VOLUME = 2**31 - 1
# Prices are stored as numeric(16, 6): a price that needs more decimal places would be rounded.
_MICRO = Decimal("0.000001")
_ZERO = Decimal(0)
_MAX_PRICE = Decimal("1e9")


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
    common case is kept cheap: exact type checks first, inline, with no call per step; only a
    candle that fails a check calls a ``_*_rejection`` function, which finds and words the fault.
    """
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return CandleRejection(row, "candle", raw, "is not an object; expected a JSON object")
    get = raw.get
    symbol: str | None = get("pair") or get("instrument") or pair
    if type(symbol) is not str or symbol not in known_pairs:
        return _pair_rejection(row, symbol)
    granularity: str | None = get("timeframe") or get("granularity") or timeframe
    seconds = TIMEFRAME_SECONDS.get(granularity) if type(granularity) is str else None
    if granularity is None or seconds is None:
        return _timeframe_rejection(row, granularity, symbol)
    raw_time = get("time")
    if type(raw_time) is datetime and raw_time.tzinfo is UTC:
        time = raw_time
    else:
        try:
            time = parse_broker_time(raw_time)
        except CandleTimeError as error:
            return CandleRejection(row, "time", raw_time, str(error), pair=symbol)
    # Every stored timeframe divides a day, so alignment is a question about the time of day.
    if (
        time.microsecond
        or (time.hour * 3600 + time.minute * 60 + time.second) % seconds
        or time > now
    ):
        return _time_rejection(row, raw_time, time, granularity, now, symbol)
    complete = get("complete", True)
    if (complete is not True and complete is not False) or (
        complete and time + _DURATIONS[granularity] > now
    ):
        return _complete_rejection(row, complete, granularity, symbol, time)
    prices = []
    for name in _PRICE_FIELDS:
        value = get(name)
        try:
            price = parse_decimal(value)
        except (InvalidOperation, ValueError) as error:
            return _number_rejection(row, name, value, error, symbol, time)
        problem = _price_problem(price)
        if problem is not None:
            return CandleRejection(row, name, value, problem, symbol, _stamp(time))
        prices.append(price)
    open_, high, low, close = prices
    if not (low <= open_ <= high and low <= close <= high):
        return _range_rejection(row, open_, high, low, close, symbol, time)
    volume = get("volume", 0)
    if type(volume) is not int or not 0 <= volume <= MAX_VOLUME:
        return _volume_rejection(row, volume, symbol, time)
    return CandleRow(symbol, granularity, time, open_, high, low, close, volume, complete)


# The rejections of ``parse_candle``: called only for a candle that failed the check, they say
# which part of it failed and why (the first fault, in the order the checks run).


def _pair_rejection(row: int, symbol: Any) -> CandleRejection:
    if symbol is None:
        return CandleRejection(row, "pair", None, "is missing; expected a pair like EUR_USD")
    return CandleRejection(
        row, "pair", symbol, "is not a known pair; add it to the pairs table first"
    )


def _timeframe_rejection(row: int, granularity: Any, symbol: str) -> CandleRejection:
    return CandleRejection(
        row,
        "timeframe",
        granularity,
        f"is not supported; expected one of {', '.join(TIMEFRAME_SECONDS)}",
        pair=symbol,
    )


def _time_rejection(
    row: int, raw_time: Any, time: datetime, granularity: str, now: datetime, symbol: str
) -> CandleRejection:
    seconds = TIMEFRAME_SECONDS[granularity]
    if time.microsecond or (time.hour * 3600 + time.minute * 60 + time.second) % seconds:
        return CandleRejection(
            row,
            "time",
            raw_time,
            f"is not aligned to {granularity}; expected a multiple of {seconds} s since the epoch",
            pair=symbol,
        )
    return CandleRejection(
        row, "time", raw_time, f"is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ})", symbol
    )


def _complete_rejection(
    row: int, complete: Any, granularity: str, symbol: str, time: datetime
) -> CandleRejection:
    if complete is not True and complete is not False:
        return CandleRejection(
            row, "complete", complete, "is not true or false", symbol, _stamp(time)
        )
    return CandleRejection(
        row,
        "complete",
        complete,
        f"cannot be true before the {granularity} period ends",
        symbol,
        _stamp(time),
    )


def _number_rejection(
    row: int, name: str, value: Any, error: Exception, symbol: str, time: datetime
) -> CandleRejection:
    if isinstance(error, NonAsciiNumberError):
        return CandleRejection(row, name, value, f"is not {ASCII_NUMBER}", symbol, _stamp(time))
    return CandleRejection(row, name, value, "is not a number", symbol, _stamp(time))


def _range_rejection(
    row: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    symbol: str,
    time: datetime,
) -> CandleRejection:
    if high < low:
        return CandleRejection(row, "high", str(high), f"is below low {low}", symbol, _stamp(time))
    name, price = ("open", open_) if not low <= open_ <= high else ("close", close)
    return CandleRejection(
        row, name, str(price), f"is outside [low {low}, high {high}]", symbol, _stamp(time)
    )


def _volume_rejection(row: int, volume: Any, symbol: str, time: datetime) -> CandleRejection:
    if type(volume) is not int or volume < 0:
        return CandleRejection(
            row, "volume", volume, "is not a non-negative integer", symbol, _stamp(time)
        )
    return CandleRejection(
        row, "volume", volume, f"is too large (at most {MAX_VOLUME})", symbol, _stamp(time)
    )


def oanda_candle_fields(candle: Mapping[str, Any], price: str = "mid") -> dict[str, Any]:
    """Flatten one candle of OANDA's candles response (``{"mid": {"o": ...}}``) to our fields."""
    component = candle.get(price)
    # The exact type first: isinstance against the Mapping ABC took a fifth of this function.
    if type(component) is not dict and not isinstance(component, Mapping):
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


# Batch validation ---------------------------------------------------------------------------------
#
# ``parse_candle`` costs about 5 µs a candle in Python, and keeping a million CandleRow tuples
# alive makes the garbage collector walk them again and again (3 µs more a candle): together more
# than the database's own work in a bulk load. ``validate_candle_columns`` checks a whole batch
# column by column instead: NumPy for the numbers, C string functions for the text. It only ever
# *accepts* a candle it can prove valid; every other one goes through ``parse_candle``, so what is
# rejected, and every message, is exactly what the row-by-row path gives (a property test checks
# that both paths agree). Prices are compared as floats, which is exact here: two different
# decimals with at most 6 places below 10^9 are more than a float's rounding apart.

_PLAIN_PRICE = re.compile(r"[0-9]+(?:\.[0-9]{1,6})?")
_SEVEN_PLACES = re.compile(r"\.[0-9]{7}")
_PRICE_TYPES = frozenset({Decimal, str, float, int})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(slots=True)
class CandleColumns:
    """Valid candles of one pair and timeframe, column by column (``validate_candle_columns``).

    Prices are kept as the plain decimal text they arrived as (or ``str()`` of the Decimal, float
    or int), which is what COPY needs; ``rows()`` gives the same CandleRows ``parse_candle`` would.
    """

    pair: str
    timeframe: str
    seconds: np.ndarray[Any, np.dtype[np.int64]]  # Unix seconds of each candle's start
    open: list[str]
    high: list[str]
    low: list[str]
    close: list[str]
    volume: list[int]
    complete: list[bool]
    time_texts: list[str] | None = None  # "YYYY-MM-DDTHH:MM:SS" in UTC, made when first needed

    def __len__(self) -> int:
        return len(self.volume)

    def span(self) -> tuple[datetime, datetime]:
        """The first and last candle times."""
        first, last = int(self.seconds.min()), int(self.seconds.max())
        return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)

    def rows(self) -> list[CandleRow]:
        return [
            CandleRow(
                self.pair,
                self.timeframe,
                datetime.fromtimestamp(second, UTC),
                Decimal(open_),
                Decimal(high),
                Decimal(low),
                Decimal(close),
                volume,
                complete,
            )
            for second, open_, high, low, close, volume, complete in zip(
                self.seconds.tolist(),
                self.open,
                self.high,
                self.low,
                self.close,
                self.volume,
                self.complete,
                strict=True,
            )
        ]

    def copy_text(self) -> str:
        """The candles as PostgreSQL COPY text, columns in ``services._COLUMNS`` order."""
        if self.time_texts is None:
            self.time_texts = np.datetime_as_string(self.seconds.astype("datetime64[s]")).tolist()
        # Every field was validated: nothing here needs COPY escaping.
        prefix = f"{self.pair}\t{self.timeframe}\t"
        if all(self.complete):
            line = (prefix + "{}+00\t{}\t{}\t{}\t{}\t{}\tt\n").format
            return "".join(
                map(line, self.time_texts, self.open, self.high, self.low, self.close, self.volume)
            )
        line = (prefix + "{}+00\t{}\t{}\t{}\t{}\t{}\t{}\n").format
        flags = ["t" if complete else "f" for complete in self.complete]
        return "".join(
            map(
                line,
                self.time_texts,
                self.open,
                self.high,
                self.low,
                self.close,
                self.volume,
                flags,
            )
        )


def validate_candle_columns(
    candles: Sequence[Any],
    *,
    pair: str | None,
    timeframe: str | None,
    known_pairs: Set[str],
    now: datetime,
    row_offset: int = 0,
    oanda_price: str | None = None,
) -> tuple[CandleColumns, list[CandleRejection]] | None:
    """Validate a batch of one pair and timeframe as columns; None when it does not suit.

    Gives the valid candles and the rejections ``parse_candle`` gives for the others, in row order.
    A batch that holds a valid candle of another pair or timeframe, repeats a time, or holds a
    valid candle in an unusual form (a time as other than a UTC datetime or OANDA's text, for
    example) gets None: the caller then validates it row by row.

    With ``oanda_price`` ("mid", "bid" or "ask") the rows are candles of OANDA's response, read
    as ``oanda_candle_fields`` would flatten them (a backfill saves making 5000 mappings a page).
    """
    count = len(candles)
    if count == 0:
        return None
    objects = set(map(type, candles)) == {dict}
    if oanda_price is not None and not objects:
        return None
    # Rows that are not objects are left to parse_candle; an empty mapping stands in for them.
    rows = candles if objects else [c if type(c) is dict else {} for c in candles]
    # Which rows are proven valid so far; each step below narrows it.
    usable = np.ones(count, dtype=bool) if objects else np.array([type(c) is dict for c in candles])
    identity = _batch_identity(rows, usable, pair, timeframe, known_pairs, oanda_price)
    if identity is None:
        return None
    symbol, granularity = identity
    times = _time_column([c.get("time") for c in rows])
    if times is None:
        return None
    seconds, readable, time_texts = times
    usable &= readable
    completes = [c.get("complete", True) for c in rows]
    usable &= _period_column(seconds, completes, TIMEFRAME_SECONDS[granularity], now)
    opens, highs, lows, closes = _price_columns(rows, usable, oanda_price)
    volumes = [c.get("volume", 0) for c in rows]
    usable &= _volume_column(volumes)

    rejected = _row_rejections(
        candles,
        usable,
        row_offset=row_offset,
        oanda_price=oanda_price,
        pair=pair,
        timeframe=timeframe,
        known_pairs=known_pairs,
        now=now,
    )
    if rejected is None:
        return None
    if rejected:
        keep = usable.tolist()
        seconds = seconds[usable]
        opens, highs, lows, closes, volumes, completes = (
            list(itertools.compress(column, keep))
            for column in (opens, highs, lows, closes, volumes, completes)
        )
        if time_texts is not None:
            time_texts = list(itertools.compress(time_texts, keep))
    if (
        seconds.size > 1
        and not (np.diff(seconds) > 0).all()
        and np.unique(seconds).size != seconds.size
    ):
        return None  # a time twice: the row path says which copy it kept and why
    columns = CandleColumns(
        symbol, granularity, seconds, opens, highs, lows, closes, volumes, completes, time_texts
    )
    return columns, rejected


def _batch_identity(
    rows: Sequence[Mapping[str, Any]],
    usable: np.ndarray[Any, np.dtype[np.bool_]],
    pair: str | None,
    timeframe: str | None,
    known_pairs: Set[str],
    oanda_price: str | None,
) -> tuple[str, str] | None:
    """The batch's pair and timeframe, None when they are not valid; rows that name another pair
    or timeframe are taken out of ``usable`` (in place)."""
    count = len(rows)
    if oanda_price is None:
        symbols = [c.get("pair") or c.get("instrument") or pair for c in rows]
        granularities = [c.get("timeframe") or c.get("granularity") or timeframe for c in rows]
    else:  # a flattened OANDA candle names neither
        symbols, granularities = [pair] * count, [timeframe] * count
    symbol = pair if pair is not None else symbols[0]
    if type(symbol) is not str or symbol not in known_pairs:
        return None
    if symbols.count(symbol) != count:
        usable &= np.array([value == symbol for value in symbols], dtype=bool)
    granularity = timeframe if timeframe is not None else granularities[0]
    if type(granularity) is not str or granularity not in TIMEFRAME_SECONDS:
        return None
    if granularities.count(granularity) != count:
        usable &= np.array([value == granularity for value in granularities], dtype=bool)
    return symbol, granularity


def _period_column(
    seconds: np.ndarray[Any, np.dtype[np.int64]],
    completes: list[Any],
    step: int,
    now: datetime,
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which candles are aligned to ``step``, began by ``now``, say true or false for complete,
    and (when complete) ended by ``now``."""
    if set(map(type, completes)) == {bool}:
        complete = np.array(completes, dtype=bool)
        usable = seconds >= 0
    else:
        usable = np.array([type(value) is bool for value in completes], dtype=bool)
        complete = np.array([value is True for value in completes], dtype=bool)
        usable &= seconds >= 0
    now_micro = (now - _EPOCH) // _MICROSECOND
    usable &= seconds % step == 0
    usable &= seconds * 1_000_000 <= now_micro
    usable &= ~complete | ((seconds + step) * 1_000_000 <= now_micro)
    return usable


def _price_columns(
    rows: Sequence[Mapping[str, Any]],
    usable: np.ndarray[Any, np.dtype[np.bool_]],
    oanda_price: str | None,
) -> tuple[list[str], list[str], list[str], list[str]]:
    """The texts of the open, high, low and close prices; rows whose prices are not plain, in
    range and consistent with each other are taken out of ``usable`` (in place)."""
    price_rows: Sequence[Mapping[str, Any]] = rows
    price_keys = dict(zip(_PRICE_FIELDS, _PRICE_FIELDS, strict=True))
    if oanda_price is not None:
        components: list[Any] = [c.get(oanda_price) for c in rows]
        if set(map(type, components)) != {dict}:
            # oanda_candle_fields gives such a candle no prices: the row path names them.
            usable &= np.array([type(m) is dict for m in components], dtype=bool)
            components = [m if type(m) is dict else {} for m in components]
        price_rows = components
        price_keys = {"open": "o", "high": "h", "low": "l", "close": "c"}
    prices = []
    for name in _PRICE_FIELDS:
        key = price_keys[name]
        texts, values, plain = _price_column([c.get(key) for c in price_rows])
        usable &= plain & (values > 0) & (values < 1e9)
        prices.append((texts, values))
    (opens, open_), (highs, high), (lows, low), (closes, close) = prices
    usable &= (low <= high) & (low <= open_) & (open_ <= high) & (low <= close) & (close <= high)
    return opens, highs, lows, closes


def _row_rejections(
    candles: Sequence[Any],
    usable: np.ndarray[Any, np.dtype[np.bool_]],
    *,
    row_offset: int,
    oanda_price: str | None,
    pair: str | None,
    timeframe: str | None,
    known_pairs: Set[str],
    now: datetime,
) -> list[CandleRejection] | None:
    """``parse_candle``'s rejections of the rows not proven valid, in row order; None when one of
    them is valid after all (in a form the columns do not read)."""
    rejected: list[CandleRejection] = []
    for index in np.flatnonzero(~usable).tolist():
        parsed = parse_candle(
            row_offset + index,
            candles[index]
            if oanda_price is None
            else oanda_candle_fields(candles[index], oanda_price),
            pair=pair,
            timeframe=timeframe,
            known_pairs=known_pairs,
            now=now,
        )
        if not isinstance(parsed, CandleRejection):
            return None
        rejected.append(parsed)
    return rejected


def _time_column(
    values: list[Any],
) -> (
    tuple[
        np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.bool_]], list[str] | None
    ]
    | None
):
    """Unix seconds of each time, which of them are certainly read right, and their text.

    The batch's times are UTC datetimes or OANDA's text (None otherwise); a time of another kind
    is left to the row path.
    """
    kinds = set(map(type, values))
    count = len(values)
    if str not in kinds and datetime in kinds:
        usable = np.ones(count, dtype=bool)
        if kinds != {datetime} or {value.tzinfo for value in values} != {UTC}:
            usable = np.array(
                [type(value) is datetime and value.tzinfo is UTC for value in values], dtype=bool
            )
            values = [value if ok else _EPOCH for value, ok in zip(values, usable, strict=True)]
        stamps = np.fromiter(map(datetime.timestamp, values), np.float64, count)
        seconds = stamps.astype(np.int64)
        # A time with microseconds is not a whole second: the row path says it is unaligned.
        return seconds, usable & (seconds == stamps), None
    if str not in kinds or datetime in kinds:
        return None
    texts = values if kinds == {str} else [value if type(value) is str else "" for value in values]
    seconds, usable = _oanda_time_seconds(texts)
    return seconds, usable, [text[:19] for text in texts]


# Character positions in OANDA's "2025-07-23T20:40:00.000000000Z": digits, and fixed characters.
_DIGIT_AT = np.array([0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, *range(20, 29)])
_FIXED_AT = np.array([4, 7, 10, 13, 16, 19, 20, 21, 22, 23, 24, 25, 29])
_FIXED = np.array([ord(c) for c in "--T::.000000Z"], dtype=np.uint32)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _oanda_time_seconds(
    texts: list[str],
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """Unix seconds of times in OANDA's form with no microseconds, read as a character matrix.

    Only a text that is exactly that form with a real date after 1970 counts as read (others are
    left to the row path); the nanosecond digits are ignored, as ``parse_broker_time`` does.
    """
    count = len(texts)
    matrix = np.array(texts, dtype="<U30")  # longer texts are cut, shorter ones padded with NUL
    codes = matrix.view(np.uint32).reshape(count, 30).astype(np.int64)
    usable = np.fromiter(map(len, texts), np.int64, count) == 30
    digits = codes[:, _DIGIT_AT] - 48
    usable &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    usable &= (codes[:, _FIXED_AT] == _FIXED).all(axis=1)
    number = digits[:, 0:14:2] * 10 + digits[:, 1:14:2]  # 2-digit groups: cc yy mm dd HH MM SS
    year = number[:, 0] * 100 + number[:, 1]
    month, day, hour, minute, second = (number[:, i] for i in range(2, 7))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + (leap & (month == 2))
    usable &= (year >= 1970) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    usable &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # Days since 1970-01-01 from the civil date (H. Hinnant's days_from_civil).
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    return np.where(usable, seconds, 0), usable


def _price_column(
    values: list[Any],
) -> tuple[list[str], np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """Each price's text, its float value and whether it is a plain decimal of at most 6 places."""
    count = len(values)
    if set(map(type, values)) <= _PRICE_TYPES:
        # str() of a Decimal, float or int is the text Decimal() reads back to the same value.
        texts = list(map(str, values))
        joined = "\n".join(texts)
        if (
            joined.isascii()
            and not joined.encode().translate(None, b"0123456789.\n")
            and not _SEVEN_PLACES.search(joined)
            and "\n." not in joined
            and ".\n" not in joined
            and joined[:1] != "."
            and joined[-1:] != "."
        ):
            try:
                return texts, np.array(texts, dtype=np.float64), np.ones(count, dtype=bool)
            except ValueError:  # an empty text, or two points in one
                pass
    else:
        texts = [str(value) if type(value) in _PRICE_TYPES else "" for value in values]
    plain = [
        type(value) in _PRICE_TYPES and _PLAIN_PRICE.fullmatch(text) is not None
        for value, text in zip(values, texts, strict=True)
    ]
    floats = [float(text) if ok else 1.0 for text, ok in zip(texts, plain, strict=True)]
    return texts, np.array(floats, dtype=np.float64), np.array(plain, dtype=bool)


def _volume_column(values: list[Any]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if set(map(type, values)) == {int}:
        try:
            volumes = np.array(values, dtype=np.int64)
        except OverflowError:
            pass
        else:
            return (volumes >= 0) & (volumes <= MAX_VOLUME)
    return np.array(
        [type(value) is int and 0 <= value <= MAX_VOLUME for value in values], dtype=bool
    )


def broker_time_micros(
    values: list[Any],
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """``parse_broker_time`` for a list: microseconds since the epoch, and which could be read.

    A backfill page holds 5000 times in OANDA's own form, read here as one NumPy column; any
    other time goes through ``parse_broker_time``.
    """
    count = len(values)
    micros = np.zeros(count, dtype=np.int64)
    readable = np.zeros(count, dtype=bool)
    column = _time_column(values) if count else None
    if column is not None:
        seconds, readable, _ = column
        micros = seconds * 1_000_000
    for index in np.flatnonzero(~readable).tolist():
        try:
            moment = parse_broker_time(values[index])
        except CandleTimeError:
            continue
        micros[index] = (moment - _EPOCH) // _MICROSECOND
        readable[index] = True
    return micros, readable
