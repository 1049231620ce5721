"""Reads of market data. Higher timeframes come from the database's M1 aggregates.

Candles come back as ``Bar`` named tuples rather than model instances: the analysis reads
thousands of them per call, and building model instances (or dataclasses) costs more than the
query itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg
from django.core.cache import cache
from django.db import connection
from django.db.models import IntegerField, QuerySet, Value
from psycopg.types.string import TextLoader

from marketdata.cache_keys import STATE_KEY, latest_price_key
from marketdata.models import (
    AggregatedCandle,
    Candle,
    CandleH1,
    CandleM5,
    CandleM15,
    Pair,
    pair_symbol_problem,
)
from marketdata.timeframes import Timeframe, timeframe_duration

_AGGREGATE_MODELS: dict[str, type[AggregatedCandle]] = {
    Timeframe.M5: CandleM5,
    Timeframe.M15: CandleM15,
    Timeframe.H1: CandleH1,
}
SERVED_TIMEFRAMES: tuple[str, ...] = (Timeframe.M1, *_AGGREGATE_MODELS)


class Bar(NamedTuple):
    """One candle as the selectors return it; ``minutes`` counts the M1 candles behind it."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    complete: bool
    minutes: int = 1


_new_bar = functools.partial(tuple.__new__, Bar)


class UnknownTimeframeError(ValueError):
    pass


def _candles(pair: str, timeframe: str) -> tuple[QuerySet[Any], tuple[str, ...]]:
    fields = ("time", "open", "high", "low", "close", "volume", "complete", "minutes")
    if timeframe == Timeframe.M1:
        # A constant column, so every row has Bar's shape and Bar._make (C speed) can build it.
        one = Value(1, output_field=IntegerField())
        return Candle.objects.filter(pair_id=pair, timeframe=timeframe).annotate(
            minutes=one
        ), fields
    model = _AGGREGATE_MODELS.get(timeframe)
    if model is None:
        raise UnknownTimeframeError(
            f"timeframe={timeframe!r} is not served; expected one of {', '.join(SERVED_TIMEFRAMES)}"
        )
    return model._default_manager.filter(pair=pair), fields


def _c_timestamptz_loader() -> tuple[int, Any]:
    oid = psycopg.postgres.types["timestamptz"].oid
    return oid, psycopg.adapters.get_loader(oid, psycopg.pq.Format.TEXT)


_TIMESTAMPTZ_OID, _TIMESTAMPTZ_C_LOADER = _c_timestamptz_loader()
_NUMERIC_OID = psycopg.postgres.types["numeric"].oid


def _rows(queryset: QuerySet[Any], fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    values = queryset.values_list(*fields)
    if connection.vendor != "postgresql":
        return list(values)
    # This read sits on the analysis hot path (1000 candles per pair per minute), and two Django
    # defaults cost more than the query itself: its pure-Python timestamptz loader (about 15 µs a
    # value) and client-side parameter binding. A plain psycopg cursor on the same connection uses
    # the C loaders and server-side binding and returns the same aware UTC datetimes, because
    # Django sets the connection's time zone to UTC.
    sql, params = values.query.sql_with_params()
    # Prepared once per connection (see DATABASE_PREPARED_STATEMENTS in the settings).
    return _fetchall(sql, params, prepare=True)


def _fetchall(sql: str, params: Sequence[Any], *, prepare: bool) -> list[tuple[Any, ...]]:
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader(_TIMESTAMPTZ_OID, _TIMESTAMPTZ_C_LOADER)
        cursor.execute(sql, params, prepare=prepare)
        return cursor.fetchall()


class _DecodedBars(dict[tuple[Any, ...], Bar]):
    """M1 Bars by the row the server sent for them (prices and time as text), each decoded
    once. A pair's read of its last N candles repeats N - 1 rows of the minute before, so nearly
    every row is found by one dictionary lookup at C speed instead of five new Decimals and a
    datetime. Bounded: past ``LIMIT`` rows it starts again. A Bar carries no pair, so two pairs
    with the same row share one Bar, which is equal either way; Bars, Decimals and datetimes are
    immutable, and a race between threads at worst decodes a row twice."""

    LIMIT = 100_000

    def __missing__(self, row: tuple[Any, ...]) -> Bar:
        if len(self) >= self.LIMIT:
            self.clear()
        time, open_, high, low, close, volume, complete, minutes = row
        # The server writes timestamptz as "2024-01-14 04:40:00+00" on the connection's UTC
        # (Django sets it), which fromisoformat reads as the aware UTC datetime psycopg's loader
        # gives.
        bar = self[row] = Bar(
            datetime.fromisoformat(time),
            Decimal(open_),
            Decimal(high),
            Decimal(low),
            Decimal(close),
            volume,
            complete,
            minutes,
        )
        return bar


_M1_BARS = _DecodedBars()


def _fetch_m1(sql: str, params: Sequence[Any], *, prepare: bool) -> list[Bar]:
    """The M1 Bars of ``sql`` (Bar's columns), through ``_M1_BARS``: prices and times come
    back as the server's text and only rows not seen before are decoded."""
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.adapters.register_loader(_NUMERIC_OID, TextLoader)
        cursor.adapters.register_loader(_TIMESTAMPTZ_OID, TextLoader)
        cursor.execute(sql, params, prepare=prepare)
        return list(map(_M1_BARS.__getitem__, cursor.fetchall()))


def _bars(rows: list[tuple[Any, ...]], timeframe: str, now: datetime | None) -> list[Bar]:
    if timeframe == Timeframe.M1:
        # Bar._make without its Python frame (a third of the time for 1000 rows): every row has
        # Bar's eight columns.
        return list(map(_new_bar, rows))
    # An aggregated candle is complete only once its period is over, however complete its minutes.
    moment = now or datetime.now(UTC)
    width = timeframe_duration(timeframe)
    return [
        Bar(
            time,
            open_,
            high,
            low,
            close,
            int(volume),
            bool(complete) and time + width <= moment,
            minutes,
        )
        for time, open_, high, low, close, volume, complete, minutes in rows
    ]


def candles_between(
    *,
    pair: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> list[Bar]:
    """Candles of one pair whose start time lies in [start, end), oldest first."""
    queryset, fields = _candles(pair, timeframe)
    if start is not None:
        queryset = queryset.filter(time__gte=start)
    if end is not None:
        queryset = queryset.filter(time__lt=end)
    return _bars(_rows(queryset.order_by("time"), fields), timeframe, now)


def candles_last(
    *,
    pair: str,
    timeframe: str,
    count: int,
    until: datetime | None = None,
    now: datetime | None = None,
) -> list[Bar]:
    """The last ``count`` candles of one pair starting before ``until`` (if given), oldest first."""
    if timeframe == Timeframe.M1 and connection.vendor == "postgresql" and count > 0:
        bars = _last_m1_bars(pair, count, until)
        bars.reverse()
        return bars
    queryset, fields = _candles(pair, timeframe)
    if until is not None:
        queryset = queryset.filter(time__lt=until)
    rows = _rows(queryset.order_by("-time")[:count], fields)
    rows.reverse()
    return _bars(rows, timeframe, now)


# The analysis reads the last N M1 candles of each pair every minute. Without a lower time bound
# PostgreSQL plans (or, with a generic plan, locks and opens) every chunk of the hypertable: about
# 4.5 ms of planning for the 212 weekly chunks of the 10-million-row benchmark table, against
# 0.3 ms when a bound leaves one or two. So each read remembers where its oldest candle was, and
# the next read of the same pair and count starts there. The bound only narrows the search: if
# at least ``count`` candles lie at or after it, the newest ``count`` of them are the newest
# ``count`` of the whole table, whatever has been written or deleted since; with fewer the read is
# repeated without the bound. Queries are written out rather than built through the ORM, which
# cost about 1.2 ms a call to compile.
#
# The remembered bound lies half ``count`` minutes before the oldest candle read. With the exact
# point the planner expects about ``count`` rows, bitmap-scans them and sorts them (0.55 ms of
# the 0.7 ms the server spends); with more rows expected than the LIMIT it walks the index
# backwards and stops after ``count`` rows, already in order (0.35 ms).
_M1_LAST = (
    "SELECT time, open, high, low, close, volume, complete, 1 FROM market_candles "
    "WHERE pair = %s AND timeframe = 'M1'{until}{since} ORDER BY time DESC LIMIT %s"
)
_M1_LAST_SQL = {
    (has_until, has_since): _M1_LAST.format(
        until=" AND time < %s" if has_until else "", since=" AND time >= %s" if has_since else ""
    )
    for has_until in (False, True)
    for has_since in (False, True)
}
_last_m1_oldest: dict[tuple[str, int], datetime] = {}


def _remember_bound(key: tuple[str, int], rows: list[Bar]) -> None:
    _last_m1_oldest[key] = rows[-1][0] - timedelta(minutes=key[1] // 2)


def _m1_bound(pair: str, count: int, until: datetime | None) -> datetime | None:
    since = _last_m1_oldest.get((pair, count))
    return since if since is not None and (until is None or since < until) else None


def _m1_statement(
    pair: str, count: int, until: datetime | None, since: datetime | None
) -> tuple[str, list[Any]]:
    params: list[Any] = [pair]
    if until is not None:
        params.append(until)
    if since is not None:
        params.append(since)
    params.append(count)
    return _M1_LAST_SQL[until is not None, since is not None], params


def last_m1_statement(
    *, pair: str, count: int, until: datetime | None = None
) -> tuple[str, list[Any]]:
    """The SQL and parameters the next ``candles_last`` M1 read of ``pair`` and ``count`` sends
    first on PostgreSQL (bounded where an earlier read left a bound): for the benchmarks."""
    return _m1_statement(pair, count, until, _m1_bound(pair, count, until))


def _last_m1_bars(pair: str, count: int, until: datetime | None) -> list[Bar]:
    key = (pair, count)
    since = _m1_bound(pair, count, until)
    if since is not None:
        # Not prepared: an unnamed statement is planned with the bound's value, which is what
        # excludes the older chunks (a generic plan would keep them all).
        rows = _fetch_m1(*_m1_statement(pair, count, until, since), prepare=False)
        if len(rows) == count:
            _remember_bound(key, rows)
            return rows
    rows = _fetch_m1(*_m1_statement(pair, count, until, None), prepare=True)
    if len(rows) == count:
        _remember_bound(key, rows)
    return rows


def stream_state() -> dict[str, Any] | None:
    """The streamer's last published state: per pair the last price and candle times, plus
    reconnect counts and current backoffs (None until a streamer has run)."""
    state: dict[str, Any] | None = cache.get(STATE_KEY)
    return state


# How recent the streamer's published state must be for its broker clock to be trusted; older
# (no streamer for a while, or a state left in the cache by another run), the local clock serves.
BROKER_CLOCK_MAX_AGE = timedelta(minutes=15)


def broker_now(at: datetime | None = None) -> datetime:
    """The broker's clock at the local moment ``at`` (default now): the time of the newest
    message the streamer received, moved on by the local time since it arrived.

    Live, it is the local clock within a second. Against a replayed or sped-up market (the demo,
    the simulator's clock) it is the market's own time, so the schedule's verdict (open, closed,
    the weekend flatten) follows the market being traded rather than the wall clock. Without a
    recent streamer state, the local clock.
    """
    now = at or datetime.now(UTC)
    try:
        state = stream_state() or {}
    except Exception:  # the cache is away: the local clock is the best answer
        return now
    broker_time = _parsed_time(state.get("broker_time"))
    received = _parsed_time(state.get("broker_time_received"))
    updated = _parsed_time(state.get("updated"))
    if broker_time is None or received is None or updated is None:
        return now
    if abs(now - updated) > BROKER_CLOCK_MAX_AGE:
        return now
    return broker_time + (now - received)


def _parsed_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def latest_price(pair: str) -> dict[str, Any] | None:
    """The newest price the streamer saw for ``pair``: bid, ask, time, tradeable, received."""
    price: dict[str, Any] | None = cache.get(latest_price_key(pair))
    return price


def pair_exists(symbol: str) -> bool:
    """Whether ``symbol`` is a stored pair. The shape is checked first: PostgreSQL refuses to
    compare text holding NUL (a 500 the stateful fuzz found), and no such text is a pair."""
    return pair_symbol_problem(symbol) is None and Pair.objects.filter(symbol=symbol).exists()


# The newest complete candle of a pair, read by the streamer before and after each closed minute
# and by the backfill. Unbounded, the planner considers every chunk (milliseconds on a table of
# years); so, like the last-N read above, each read remembers the newest time it found and the
# next one looks only from a day before it. Whatever was written or deleted since, the newest
# row at or after the bound is the newest row of all; when none is there, the read is repeated
# without the bound.
_NEWEST_COMPLETE = (
    "SELECT time FROM market_candles WHERE pair = %s AND timeframe = %s AND complete{since} "
    "ORDER BY time DESC LIMIT 1"
)
_NEWEST_COMPLETE_SQL = {
    bounded: _NEWEST_COMPLETE.format(since=" AND time >= %s" if bounded else "")
    for bounded in (False, True)
}
_NEWEST_COMPLETE_MARGIN = timedelta(days=1)
_newest_complete_seen: dict[tuple[str, str], datetime] = {}


def newest_complete_statement(*, pair: str, timeframe: str) -> tuple[str, list[Any]]:
    """The SQL and parameters the next ``candle_newest_complete_time`` read sends first on
    PostgreSQL: for the benchmarks."""
    seen = _newest_complete_seen.get((pair, timeframe))
    if seen is None:
        return _NEWEST_COMPLETE_SQL[False], [pair, timeframe]
    return _NEWEST_COMPLETE_SQL[True], [pair, timeframe, seen - _NEWEST_COMPLETE_MARGIN]


def candle_newest_complete_time(pair: str, timeframe: str) -> datetime | None:
    """The start of the newest complete candle stored for ``pair`` and ``timeframe``."""
    if connection.vendor != "postgresql":
        newest: datetime | None = (
            Candle.objects.filter(pair_id=pair, timeframe=timeframe, complete=True)
            .order_by("-time")
            .values_list("time", flat=True)
            .first()
        )
        return newest
    key = (pair, timeframe)
    sql, params = newest_complete_statement(pair=pair, timeframe=timeframe)
    rows = _fetchall(sql, params, prepare=False)
    if not rows and key in _newest_complete_seen:
        rows = _fetchall(_NEWEST_COMPLETE_SQL[False], [pair, timeframe], prepare=True)
    if not rows:
        _newest_complete_seen.pop(key, None)
        return None
    found: datetime = rows[0][0]
    _newest_complete_seen[key] = found
    return found
