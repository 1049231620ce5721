"""Writes for market data. Every writer of candles goes through ``candles_ingest``."""

from __future__ import annotations

import calendar
import functools
import itertools
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, connection, transaction

from marketdata.candle_input import (
    CandleColumns,
    CandleRejection,
    CandleRow,
    broker_time_micros,
    oanda_candle_fields,
    parse_candle,
    validate_candle_columns,
)
from marketdata.models import PAIR_SYMBOL_MAX_LENGTH, Pair, pair_symbol_problem
from marketdata.oanda import OandaClient, instrument_candles
from marketdata.selectors import candle_newest_complete_time
from marketdata.timeframes import timeframe_duration
from septrader.services import audit_record

logger = logging.getLogger(__name__)

# Below this many rows a multi-row INSERT beats the set-up cost of COPY into a staging table.
# Batches this large are also validated column by column (``validate_candle_columns``).
COPY_THRESHOLD = 2000
# SQLite allows 32,766 bound parameters per statement; nine a row leaves room for 3,000 rows.
_VALUES_CHUNK = 1000
_COLUMNS = ("pair", "timeframe", "time", "open", "high", "low", "close", "volume", "complete")


@dataclass
class IngestResult:
    """What one ingestion did: rows written (new or changed), rows already stored, rows refused."""

    received: int = 0
    stored: int = 0
    unchanged: int = 0
    rejected: list[CandleRejection] = field(default_factory=list)

    def merge(self, other: IngestResult) -> None:
        self.received += other.received
        self.stored += other.stored
        self.unchanged += other.unchanged
        self.rejected.extend(other.rejected)

    def summary(self) -> str:
        return (
            f"received={self.received} stored={self.stored} unchanged={self.unchanged} "
            f"rejected={len(self.rejected)}"
        )


def candles_ingest(
    *,
    candles: Iterable[Mapping[str, Any]],
    pair: str | None = None,
    timeframe: str | None = None,
    now: datetime | None = None,
    row_offset: int = 0,
) -> IngestResult:
    """Validate candles and upsert the valid ones on (pair, timeframe, time), in one transaction.

    A candle that differs from the stored one replaces it, except that a forming (incomplete)
    candle never overwrites a complete one. Identical candles are counted as unchanged and not
    written. Each invalid candle is reported in ``rejected`` and the rest of the batch is stored.
    ``row_offset`` numbers the rows of a batch that is part of a larger file.
    """
    rows, result = _validate(
        candles, pair, timeframe, now or datetime.now(UTC), row_offset, _known_pairs()
    )
    return _store(rows, result)


def candles_ingest_batches(
    *,
    batches: Iterable[tuple[int, Sequence[Mapping[str, Any]]]],
    pair: str | None = None,
    timeframe: str | None = None,
    now: datetime | None = None,
    oanda_price: str | None = None,
) -> Iterator[IngestResult]:
    """``candles_ingest`` for a stream of ``(row_offset, candles)`` batches, one result each.

    With ``oanda_price`` ("mid", "bid" or "ask") the batches hold candles of OANDA's candles
    response, taken as ``oanda_candle_fields`` flattens them.

    Validation is Python work and writing is mostly database work, so a helper thread validates
    the next batch while this thread stores the current one: on two cores a large load takes
    about the longer of the two rather than their sum. The helper never touches the database;
    every write happens on the caller's connection, one transaction per batch.
    """
    known_pairs = _known_pairs()
    copying = connection.vendor == "postgresql"

    def validate(
        item: tuple[int, Sequence[Mapping[str, Any]]],
    ) -> tuple[Candles, IngestResult, str | None]:
        offset, batch = item
        # The clock is read per batch: a long load (or a backfill reaching the present) must
        # not refuse a candle that completed after it began.
        moment = now or datetime.now(UTC)
        rows, result = _validate(batch, pair, timeframe, moment, offset, known_pairs, oanda_price)
        # The COPY text is made here too, so this thread does all the per-row Python work and
        # the caller's thread mostly waits on the database.
        payload = _copy_payload(rows) if copying and len(rows) >= COPY_THRESHOLD else None
        return rows, result, payload

    items = iter(batches)
    first = next(items, None)
    if first is None:
        return
    with (
        _prompt_gil_handover(),
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-validator") as validator,
    ):
        upcoming = validator.submit(validate, first)
        for item in items:
            rows, result, payload = upcoming.result()
            upcoming = validator.submit(validate, item)
            yield _store(rows, result, payload)
        yield _store(*upcoming.result())


# While the validator thread runs Python, the writing thread wakes from each database round trip
# (about seven a batch: savepoint, the range check, COPY, release, commit) and waits for the GIL
# until the validator reaches a switch point, by default every 5 ms: 1.2 s of a million-candle
# load was spent so, measured with bench/ingest.py on 2 cores (5.0 s at 5 ms, 4.3 s at 0.5 ms,
# 4.0 s for the writes alone). A shorter switch interval for the length of the load hands the
# GIL back promptly. It is process-wide: the first load in raises it, the last one out restores
# it.
_GIL_HANDOVER_SECONDS = 0.0005


class _GilHandover:
    """Counts the loads running in this process, under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.previous = 0.0

    @contextmanager
    def prompt(self) -> Iterator[None]:
        with self.lock:
            if self.users == 0:
                self.previous = sys.getswitchinterval()
                sys.setswitchinterval(min(self.previous, _GIL_HANDOVER_SECONDS))
            self.users += 1
        try:
            yield
        finally:
            with self.lock:
                self.users -= 1
                if self.users == 0:
                    sys.setswitchinterval(self.previous)


_prompt_gil_handover = _GilHandover().prompt


def _known_pairs() -> frozenset[str]:
    return frozenset(Pair.objects.values_list("symbol", flat=True))


# Valid candles: CandleRows from the row-by-row path, or columns from the batch path.
Candles = list[CandleRow] | CandleColumns


def _validate(
    candles: Iterable[Mapping[str, Any]],
    pair: str | None,
    timeframe: str | None,
    now: datetime,
    row_offset: int,
    known_pairs: frozenset[str],
    oanda_price: str | None = None,
) -> tuple[Candles, IngestResult]:
    if (
        isinstance(candles, list)
        and len(candles) >= COPY_THRESHOLD
        and connection.vendor == "postgresql"
    ):
        checked = validate_candle_columns(
            candles,
            pair=pair,
            timeframe=timeframe,
            known_pairs=known_pairs,
            now=now,
            row_offset=row_offset,
            oanda_price=oanda_price,
        )
        if checked is not None:
            columns, rejected = checked
            result = IngestResult(received=len(candles), rejected=rejected)
            _log_rejections(result)
            return columns, result
    if oanda_price is not None:
        candles = [oanda_candle_fields(candle, oanda_price) for candle in candles]
    return _validate_rows(candles, pair, timeframe, now, row_offset, known_pairs)


def _validate_rows(
    candles: Iterable[Mapping[str, Any]],
    pair: str | None,
    timeframe: str | None,
    now: datetime,
    row_offset: int,
    known_pairs: frozenset[str],
) -> tuple[list[CandleRow], IngestResult]:
    result = IngestResult()
    valid: dict[tuple[str, str, datetime], CandleRow] = {}
    for index, raw in enumerate(candles, start=row_offset):
        result.received += 1
        parsed = parse_candle(
            index, raw, pair=pair, timeframe=timeframe, known_pairs=known_pairs, now=now
        )
        if isinstance(parsed, CandleRejection):
            result.rejected.append(parsed)
            continue
        earlier = valid.get(parsed.key)
        if earlier is None:
            valid[parsed.key] = parsed
        elif earlier.same_values(parsed):
            result.unchanged += 1
        else:
            result.rejected.append(
                CandleRejection(
                    index,
                    "time",
                    f"{parsed.time:%Y-%m-%dT%H:%M:%SZ}",
                    "appears twice in this batch with different values; kept the first",
                    parsed.pair,
                )
            )
    _log_rejections(result)
    return list(valid.values()), result


def _log_rejections(result: IngestResult) -> None:
    if result.rejected:
        logger.warning(
            "event=candles_rejected count=%d first=%r",
            len(result.rejected),
            [str(rejection) for rejection in result.rejected[:3]],
        )


def _store(rows: Candles, result: IngestResult, payload: str | None = None) -> IngestResult:
    if len(rows):
        with transaction.atomic():
            if connection.vendor == "postgresql" and len(rows) >= COPY_THRESHOLD:
                written = _upsert_by_copy(rows, payload or _copy_payload(rows))
            else:
                written = _upsert_by_values(
                    rows.rows() if isinstance(rows, CandleColumns) else rows
                )
        result.stored += written
        result.unchanged += len(rows) - written
    return result


def _conflict_clause() -> str:
    # Only a candle that really differs is rewritten, so re-ingesting the same data writes nothing,
    # and a forming candle from a live stream cannot replace the complete one a backfill stored.
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return (
        "ON CONFLICT (pair, timeframe, time) DO UPDATE SET "
        "open = excluded.open, high = excluded.high, low = excluded.low, "
        "close = excluded.close, volume = excluded.volume, complete = excluded.complete "
        "WHERE (market_candles.open, market_candles.high, market_candles.low, "
        "market_candles.close, market_candles.volume, market_candles.complete) "
        f"{distinct} (excluded.open, excluded.high, excluded.low, excluded.close, "
        "excluded.volume, excluded.complete) "
        "AND (excluded.complete OR NOT market_candles.complete)"
    )


def _row_values(row: CandleRow) -> tuple[Any, ...]:
    # The backend's own adapters, so raw SQL stores exactly what the ORM would (on SQLite: naive
    # UTC text without an offset, which the ORM's time filters compare as strings).
    ops = connection.ops
    return (
        row.pair,
        row.timeframe,
        ops.adapt_datetimefield_value(row.time),
        row.open,
        row.high,
        row.low,
        row.close,
        row.volume,
        row.complete,
    )


def _upsert_by_values(rows: list[CandleRow]) -> int:
    written = 0
    placeholders_one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), _VALUES_CHUNK):
            chunk = rows[start : start + _VALUES_CHUNK]
            params: list[Any] = []
            for row in chunk:
                params.extend(_row_values(row))
            cursor.execute(
                f"INSERT INTO market_candles ({', '.join(_COLUMNS)}) VALUES "
                + ", ".join([placeholders_one] * len(chunk))
                + " "
                + _conflict_clause(),
                params,
            )
            written += max(cursor.rowcount, 0)
    return written


# datetime.isoformat() took half the time of a COPY line (3 µs). Every stored candle starts on a
# whole minute (validation guarantees it), so its text is a cached date plus one of 1440 minutes.
_MINUTE_TEXT = tuple(f"{minute // 60:02d}:{minute % 60:02d}:00+00" for minute in range(1440))


@functools.lru_cache(maxsize=8192)
def _day_text(day: int) -> str:
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _copy_line(row: CandleRow) -> str:
    # Every field was validated: pairs are known symbols, prices finite decimals, so nothing here
    # needs COPY escaping.
    pair, timeframe, time, open_, high, low, close, volume, complete = row
    day, second = divmod(int(time.timestamp()), 86400)
    stamp = (
        f"{_day_text(day)} {_MINUTE_TEXT[second // 60]}"
        if second % 60 == 0 and time.microsecond == 0
        else time.isoformat()
    )
    return (
        "\t".join(
            (
                pair,
                timeframe,
                stamp,
                str(open_),
                str(high),
                str(low),
                str(close),
                str(volume),
                "t" if complete else "f",
            )
        )
        + "\n"
    )


def _copy_payload(rows: Candles) -> str:
    if isinstance(rows, CandleColumns):
        return rows.copy_text()
    return "".join(map(_copy_line, rows))


def _upsert_by_copy(rows: Candles, payload: str) -> int:
    """PostgreSQL fast path for large batches; returns the number of rows written.

    A batch whose time range holds no stored candle yet (the usual backfill) is copied straight
    into the hypertable, which costs about 60% of the staging route. Anything else, or a batch that
    meets a concurrent writer's rows, goes through a temporary staging table and one
    INSERT ... ON CONFLICT.
    """
    with connection.cursor() as cursor:
        if _ranges_are_empty(cursor, rows):
            try:
                with (
                    transaction.atomic(),
                    cursor.cursor.copy(
                        f"COPY market_candles ({', '.join(_COLUMNS)}) FROM STDIN"
                    ) as copy,
                ):
                    copy.write(payload)
                return len(rows)
            except IntegrityError:
                logger.info("event=candle_copy_conflict detail=retrying through staging")
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS candle_staging ("
            f"pair varchar({PAIR_SYMBOL_MAX_LENGTH}), timeframe varchar(3), time timestamptz, "
            "open numeric(16, 6), "
            "high numeric(16, 6), low numeric(16, 6), close numeric(16, 6), volume integer, "
            "complete boolean) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY candle_staging ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            copy.write(payload)
        cursor.execute(
            f"INSERT INTO market_candles ({', '.join(_COLUMNS)}) "
            f"SELECT {', '.join(_COLUMNS)} FROM candle_staging " + _conflict_clause()
        )
        written = max(cursor.rowcount, 0)
        cursor.execute("TRUNCATE candle_staging")
    return written


def _ranges_are_empty(cursor: Any, rows: Candles) -> bool:
    spans: dict[tuple[str, str], list[datetime]] = {}
    if isinstance(rows, CandleColumns):
        spans[(rows.pair, rows.timeframe)] = list(rows.span())
    for row in rows if isinstance(rows, list) else ():
        span = spans.get((row.pair, row.timeframe))
        if span is None:
            spans[(row.pair, row.timeframe)] = [row.time, row.time]
        elif row.time < span[0]:
            span[0] = row.time
        elif row.time > span[1]:
            span[1] = row.time
    for (pair, timeframe), (first, last) in spans.items():
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM market_candles WHERE pair = %s AND timeframe = %s "
            "AND time BETWEEN %s AND %s)",
            [pair, timeframe, first, last],
        )
        if cursor.fetchone()[0]:
            return False
    return True


# Backfill -----------------------------------------------------------------------------------------

# OANDA serves at most 5000 candles per request.
OANDA_MAX_CANDLES = 5000
_PRICE_COMPONENTS = {"M": "mid", "B": "bid", "A": "ask"}


@dataclass
class BackfillResult:
    pair: str
    timeframe: str
    start: datetime | None
    end: datetime
    requests: int = 0
    ingest: IngestResult = field(default_factory=IngestResult)

    def summary(self) -> str:
        begun = f"{self.start:%Y-%m-%dT%H:%MZ}" if self.start else "nothing to do"
        return (
            f"{self.pair} {self.timeframe} from {begun} to {self.end:%Y-%m-%dT%H:%MZ}: "
            f"{self.requests} requests, stored {self.ingest.stored}, unchanged "
            f"{self.ingest.unchanged}, rejected {len(self.ingest.rejected)}"
        )


def candles_backfill(
    *,
    client: Any,
    pair: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None = None,
    price: str = "M",
    resume: bool = True,
    on_page: Any = None,
) -> BackfillResult:
    """Fetch a pair's candles from OANDA in pages of 5000 and upsert them through ingestion.

    With ``resume`` the fetch starts after the newest complete candle already stored (when that is
    later than ``start``), so an interrupted backfill continues where it stopped. ``end`` defaults
    to now; candles at or after it are not stored. The forming candle the broker sends last is
    stored as incomplete, never as complete. ``on_page(result)`` is called after every page.
    """

    component = _PRICE_COMPONENTS.get(price)
    if component is None:
        raise ValueError(f"price={price!r} is not valid; expected M, B or A")
    step = timeframe_duration(timeframe)
    finish = end or datetime.now(UTC)
    if resume:
        start = _resume_start(start, candle_newest_complete_time(pair, timeframe), step)
    if start is None:
        raise ValueError(f"no candles of {pair} {timeframe} are stored yet: give a start time")
    result = BackfillResult(pair, timeframe, start, finish)
    fetch = functools.partial(_backfill_fetch, client, pair, timeframe, price)
    # Three stages overlap: a helper thread fetches the next page (the broker's or the
    # simulator's work and the JSON), another validates the page before it, and this thread
    # stores the one before that (mostly the database's work). The client is used by one thread.
    failure: list[Exception] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-fetch") as fetcher:
        pages = _backfill_pages(
            fetcher,
            fetch,
            result,
            start=start,
            finish=finish,
            step=step,
            component=component,
            failure=failure,
        )
        for stored in candles_ingest_batches(
            batches=pages, pair=pair, timeframe=timeframe, oanda_price=component
        ):
            result.ingest.merge(stored)
            if on_page is not None:
                on_page(result)
    if failure:
        raise failure[0]
    logger.info("event=backfill_done %s", result.summary())
    return result


def _resume_start(
    start: datetime | None, newest: datetime | None, step: timedelta
) -> datetime | None:
    """Where a resumed backfill starts: after ``newest`` (the newest complete candle stored)
    when that is later than ``start``."""
    if newest is not None and (start is None or newest + step > start):
        return newest + step
    return start


def _backfill_fetch(
    client: Any, pair: str, timeframe: str, price: str, cursor: datetime
) -> dict[str, Any]:
    """One page of OANDA's candles from ``cursor`` on (included)."""
    endpoint = instrument_candles(
        pair,
        {
            "granularity": timeframe,
            "price": price,
            "from": cursor.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
            "count": OANDA_MAX_CANDLES,
            "includeFirst": "true",
        },
    )
    page: dict[str, Any] = client.request(endpoint)
    return page


def _backfill_pages(
    fetcher: ThreadPoolExecutor,
    fetch: Callable[[datetime], dict[str, Any]],
    result: BackfillResult,
    *,
    start: datetime,
    finish: datetime,
    step: timedelta,
    component: str,
    failure: list[Exception],
) -> Iterator[tuple[int, list[Any]]]:
    """(offset, candles) of each page, fetching the next on ``fetcher`` while this one is stored.

    Counts the requests in ``result``; a failed fetch goes to ``failure`` and ends the pages.
    """
    finish_micros = (finish - _EPOCH) // timedelta(microseconds=1)
    cursor = start
    offset = 0
    upcoming = fetcher.submit(fetch, cursor) if cursor < finish else None
    while upcoming is not None:
        try:
            page = upcoming.result()
        except Exception as error:
            # Raised once the pages already fetched are stored, as a loop page by page would.
            failure.append(error)
            return
        upcoming = None
        result.requests += 1
        wanted, newest, reached_present = _backfill_page_candles(
            page.get("candles", []), component, finish_micros
        )
        if not (reached_present or newest is None or newest + step <= cursor):
            cursor = newest + step
            if cursor < finish:
                upcoming = fetcher.submit(fetch, cursor)
        yield offset, wanted
        offset += len(wanted)


def _backfill_page_candles(
    rows: list[Any], component: str, finish_micros: int
) -> tuple[list[Any], datetime | None, bool]:
    """A page's candles before the finish, its newest candle time, and whether the broker has
    nothing newer."""
    # OANDA's candles as they came: ingestion reads their price component.
    micros, readable = broker_time_micros([row.get("time") for row in rows])
    # A candle with an unreadable time goes on to ingestion, which rejects it by name.
    keep = ~readable | (micros < finish_micros)
    wanted = rows if keep.all() else list(itertools.compress(rows, keep.tolist()))
    # OANDA counts only candles that exist (no weekend gaps), so a short page, or one ending in
    # the forming candle, means the broker has nothing newer.
    reached_present = len(rows) < OANDA_MAX_CANDLES or not all(
        r.get("complete", True) for r in rows if isinstance(r.get(component), Mapping)
    )
    newest = (
        _EPOCH + timedelta(microseconds=int(micros[readable].max())) if readable.any() else None
    )
    return wanted, newest, reached_present


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# The broker-owned fields of a pair (Pair.BROKER_FIGURES), by the name OANDA's Instrument gives
# each.
_INSTRUMENT_FIELDS = {
    "type": "instrument_type",
    "pipLocation": "pip_location",
    "displayPrecision": "display_precision",
    "tradeUnitsPrecision": "trade_units_precision",
    "minimumTradeSize": "minimum_trade_size",
    "maximumOrderUnits": "maximum_order_units",
    "marginRate": "margin_rate",
    "financing": "financing",
}
# OANDA's DayOfWeek names, Monday first.
_WEEKDAYS = tuple(day.upper() for day in calendar.day_name)


@dataclass
class InstrumentsSyncResult:
    """What one instruments sync did, by symbol: pairs created, pairs whose broker figures
    changed (field: [old, new]), pairs already up to date, and instruments refused (why)."""

    created: list[str] = field(default_factory=list)
    updated: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [
            f"created={len(self.created)}"
            + (f" ({', '.join(self.created)})" if self.created else ""),
            f"updated={len(self.updated)}"
            + (f" ({', '.join(self.updated)})" if self.updated else ""),
            f"unchanged={len(self.unchanged)}",
            f"skipped={len(self.skipped)}"
            + (f" ({', '.join(self.skipped)})" if self.skipped else ""),
        ]
        return " ".join(parts)


class InstrumentFigureError(ValueError):
    """One figure of a broker instrument that a pair cannot hold; the message names it."""


def instruments_sync(
    *, client: OandaClient, actor: str, address: str | None = None
) -> InstrumentsSyncResult:
    """Create and update the pairs from the account's instruments as the broker describes them.

    A new instrument becomes a disabled, untrained pair; an existing pair gets the broker's
    figures (type, pip location, precisions, minimum size, maximum order units, margin rate) and
    keeps everything that is ours (enabled, state, risk overrides, node). Pairs the broker does
    not list are left alone: a sync never disables or deletes a pair. An instrument whose name or
    figures a pair cannot hold is skipped, with the reason, rather than stored rounded. Audited.
    """
    instruments = client.account_instruments()
    result = InstrumentsSyncResult()
    figures_by_symbol: dict[str, dict[str, Any]] = {}
    for instrument in instruments:
        name = instrument.get("name") if isinstance(instrument, Mapping) else None
        label = name if isinstance(name, str) else repr(instrument)[:40]
        try:
            if not isinstance(instrument, Mapping):
                raise InstrumentFigureError(f"instrument={label}: expected an object")
            problem = pair_symbol_problem(name)
            if problem is not None:
                raise InstrumentFigureError(problem)
            # A name that passed the check is a string, so it is its own label.
            figures_by_symbol[label] = _instrument_figures(instrument)
        except InstrumentFigureError as error:
            result.skipped[label] = str(error)
            logger.warning("event=instrument_skipped instrument=%r reason=%r", label, str(error))
    with transaction.atomic():
        existing = Pair.objects.select_for_update().in_bulk(
            list(figures_by_symbol), field_name="symbol"
        )
        for symbol, figures in figures_by_symbol.items():
            pair = existing.get(symbol)
            if pair is None:
                Pair.objects.create(symbol=symbol, enabled=False, **figures)
                result.created.append(symbol)
                continue
            changes = {
                name: [str(getattr(pair, name)), str(value)]
                for name, value in figures.items()
                if getattr(pair, name) != value
            }
            if not changes:
                result.unchanged.append(symbol)
                continue
            for name in changes:
                setattr(pair, name, figures[name])
            pair.save(update_fields=[*changes, "updated_at"])
            result.updated[symbol] = changes
        audit_record(
            actor=actor,
            action="instruments.sync",
            target=f"{len(instruments)} instruments",
            details={
                "created": result.created,
                "updated": result.updated,
                "unchanged": len(result.unchanged),
                "skipped": result.skipped,
            },
            address=address,
        )
    logger.info("event=instruments_sync actor=%r %s", actor, result.summary())
    return result


def _instrument_figures(instrument: Mapping[str, Any]) -> dict[str, Any]:
    """The pair fields of one broker instrument, each checked against the column that holds it."""
    figures: dict[str, Any] = {}
    name = instrument["name"]
    for key, field_name in _INSTRUMENT_FIELDS.items():
        value = instrument.get(key)
        model_field = Pair._meta.get_field(field_name)
        where = f"{name} {key}={value!r}"
        if field_name == "instrument_type":
            choices = Pair.InstrumentType.values
            if value not in choices:
                raise InstrumentFigureError(f"{where}: expected one of {', '.join(choices)}")
            figures[field_name] = value
        elif field_name == "financing":
            figures[field_name] = _broker_financing(name, value)
        elif field_name in {"pip_location", "display_precision", "trade_units_precision"}:
            low = -10 if field_name == "pip_location" else 0
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 10:
                raise InstrumentFigureError(f"{where}: expected a whole number from {low} to 10")
            figures[field_name] = value
        else:
            figures[field_name] = _broker_decimal(where, value, model_field)
    return figures


def _broker_financing(name: str, value: Any) -> dict[str, Any]:
    """OANDA's ``financing`` of an instrument in the form a pair keeps it (rates as decimal
    strings, the days charged by weekday, Monday first), or the reason it cannot be kept. An
    instrument the broker lists without financing keeps none (``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InstrumentFigureError(f"{name} financing={value!r}: expected an object")
    kept: dict[str, Any] = {}
    for key in ("longRate", "shortRate"):
        text = value.get(key)
        try:
            rate = Decimal(text) if isinstance(text, str) else None
        except InvalidOperation:
            rate = None
        if rate is None or not rate.is_finite() or abs(rate) >= 1:
            raise InstrumentFigureError(
                f"{name} financing.{key}={text!r}: expected an annual rate as a decimal string "
                "between -1 and 1 (-0.0300 is 3% a year paid)"
            )
        kept[key] = str(rate)
    listed = value.get("financingDaysOfWeek") or []
    days: dict[str, int] = {}
    for item in listed if isinstance(listed, list) else [listed]:
        day = item.get("dayOfWeek") if isinstance(item, Mapping) else None
        charged = item.get("daysCharged") if isinstance(item, Mapping) else None
        if (
            day not in _WEEKDAYS
            or isinstance(charged, bool)
            or not isinstance(charged, int)
            or not 0 <= charged <= 7
        ):
            raise InstrumentFigureError(
                f"{name} financing.financingDaysOfWeek item {item!r}: expected a dayOfWeek "
                f"({', '.join(_WEEKDAYS)}) and daysCharged, a whole number from 0 to 7"
            )
        days[day] = charged
    if days:
        kept["financingDaysOfWeek"] = [
            {"dayOfWeek": day, "daysCharged": days.get(day, 0)} for day in _WEEKDAYS
        ]
    return kept


def _broker_decimal(where: str, value: Any, model_field: Any) -> Decimal:
    """OANDA's decimal string as a Decimal the column holds exactly, or the reason it cannot."""
    places, digits = model_field.decimal_places, model_field.max_digits
    expected = (
        f"expected a positive decimal string with at most {places} decimal places and "
        f"{digits - places} whole digits"
    )
    try:
        number = Decimal(value) if isinstance(value, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number <= 0:
        raise InstrumentFigureError(f"{where}: {expected}")
    exponent = number.normalize().as_tuple().exponent
    if (
        not isinstance(exponent, int)
        or -exponent > places
        or number >= Decimal(10) ** (digits - places)
    ):
        raise InstrumentFigureError(f"{where}: {expected}")
    return number.quantize(Decimal(1).scaleb(-places))
