from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketdata.models import Candle
from marketdata.services import COPY_THRESHOLD, candles_ingest

NOW = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)


def minute_candles(
    count: int, start: datetime = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
) -> list[dict[str, Any]]:
    rows = []
    price = Decimal("1.10000")
    for minute in range(count):
        step = Decimal((minute * 7919) % 11 - 5) / Decimal(100000)
        open_ = price
        close = price + step
        rows.append(
            {
                "time": (start + timedelta(minutes=minute)).strftime(
                    "%Y-%m-%dT%H:%M:%S.000000000Z"
                ),
                "open": str(open_),
                "high": str(max(open_, close) + Decimal("0.00010")),
                "low": str(min(open_, close) - Decimal("0.00010")),
                "close": str(close),
                "volume": 10 + minute % 50,
            }
        )
        price = close
    return rows


def stored(pair: str = "EUR_USD") -> list[tuple[Any, ...]]:
    return list(
        Candle.objects.filter(pair_id=pair)
        .order_by("time")
        .values_list("time", "open", "high", "low", "close", "volume", "complete")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [50, COPY_THRESHOLD + 500], ids=["values-path", "copy-path"])
def test_reingesting_the_same_candles_changes_nothing(timescaledb: None, count: int) -> None:
    # Given a batch of candles already stored
    candles = minute_candles(count)
    first = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)
    before = stored()

    # When the same batch arrives again
    again = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)

    # Then nothing is written and the table is identical
    assert (first.stored, first.unchanged, first.rejected) == (count, 0, [])
    assert (again.stored, again.unchanged, again.rejected) == (0, count, [])
    assert stored() == before
    assert len(before) == count


@pytest.mark.django_db
def test_a_corrected_candle_replaces_the_stored_one(timescaledb: None) -> None:
    candles = minute_candles(10)
    candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)

    corrected = dict(candles[3], volume=999)
    result = candles_ingest(candles=[corrected], pair="EUR_USD", timeframe="M1", now=NOW)

    assert (result.stored, result.unchanged) == (1, 0)
    assert (
        Candle.objects.get(pair_id="EUR_USD", time=datetime(2026, 1, 5, 0, 3, tzinfo=UTC)).volume
        == 999
    )
    assert Candle.objects.filter(pair_id="EUR_USD").count() == 10


@pytest.mark.django_db
def test_a_forming_candle_never_overwrites_a_complete_one(timescaledb: None) -> None:
    # Given a complete candle from a backfill
    candle = minute_candles(1)[0]
    candles_ingest(candles=[candle], pair="EUR_USD", timeframe="M1", now=NOW)

    # When a stale forming version of the same minute arrives from the stream
    forming = dict(candle, close=candle["open"], complete=False)
    result = candles_ingest(candles=[forming], pair="EUR_USD", timeframe="M1", now=NOW)

    # Then the complete candle stays as it was
    row = Candle.objects.get(pair_id="EUR_USD")
    assert row.complete is True
    assert row.close == Decimal(candle["close"])
    assert result.stored == 0


@pytest.mark.django_db
def test_a_forming_candle_is_stored_as_incomplete_and_completed_later(timescaledb: None) -> None:
    now = datetime(2026, 1, 5, 0, 0, 30, tzinfo=UTC)
    candle = minute_candles(1)[0]
    candles_ingest(candles=[dict(candle, complete=False)], pair="EUR_USD", timeframe="M1", now=now)
    assert Candle.objects.get(pair_id="EUR_USD").complete is False

    candles_ingest(candles=[candle], pair="EUR_USD", timeframe="M1", now=now + timedelta(minutes=1))
    assert Candle.objects.get(pair_id="EUR_USD").complete is True


BAD_ROWS = {
    "high below low": ({"high": "1.0990", "low": "1.1000"}, "high", "is below low"),
    "open above high": ({"open": "1.2000"}, "open", "is outside [low"),
    "close below low": ({"close": "1.0000"}, "close", "is outside [low"),
    "zero price": ({"low": "0"}, "low", "is not positive"),
    "negative price": ({"low": "-1.1"}, "low", "is not positive"),
    "not a number": ({"close": "abc"}, "close", "is not a number"),
    # Arabic-Indic digits, which Decimal() reads as 1.1000.
    "digits of another script": (
        {"close": "\u0661.\u0661\u0660\u0660\u0660"},
        "close",
        "is not a number written with the ASCII digits 0-9",
    ),
    "NaN": ({"close": "NaN"}, "close", "is not finite"),
    "infinite float": ({"high": float("inf")}, "high", "is not finite"),
    "future time": ({"time": "2026-01-09T12:01:00Z"}, "time", "is in the future"),
    "unaligned time": ({"time": "2026-01-05T00:00:30Z"}, "time", "is not aligned to M1"),
    "garbage time": ({"time": "yesterday"}, "time", "is not a timestamp"),
    # The bad row's own time (row 1234 is 20:34), its year in Arabic-Indic digits.
    "time in digits of another script": (
        {"time": "\u0662\u0660\u0662\u0666-01-05T20:34:00Z"},
        "time",
        "is not a timestamp",
    ),
    "naive time": ({"time": "2026-01-05T00:00:00"}, "time", "has no time zone"),
    "unknown pair": ({"pair": "XXX_YYY"}, "pair", "is not a known pair"),
    "bad timeframe": ({"timeframe": "M7"}, "timeframe", "is not supported"),
    "negative volume": ({"volume": -3}, "volume", "is not a non-negative integer"),
    "complete too early": (
        {"time": "2026-01-09T12:00:00Z", "complete": True},
        "complete",
        "cannot be true before the M1 period ends",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("change, field, reason", BAD_ROWS.values(), ids=list(BAD_ROWS))
def test_a_bad_candle_in_a_batch_of_5000_is_rejected_alone_with_a_reason(
    timescaledb: None, change: dict[str, Any], field: str, reason: str
) -> None:
    # Given 5000 candles, one of which is bad
    candles = minute_candles(5000)
    bad_index = 1234
    candles[bad_index] = dict(candles[bad_index], **change)

    # When they are ingested together
    result = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)

    # Then the bad one is reported with its row, field and reason, and all the others are stored
    assert len(result.rejected) == 1
    rejection = result.rejected[0]
    assert (rejection.row, rejection.field) == (bad_index, field)
    assert reason in str(rejection)
    assert str(rejection).startswith(f"row {bad_index}")
    assert result.stored == 4999
    assert Candle.objects.filter(pair_id="EUR_USD").count() == 4999


@pytest.mark.django_db
def test_a_row_repeated_with_other_values_in_one_batch_keeps_the_first(timescaledb: None) -> None:
    candles = minute_candles(3)
    candles.append(dict(candles[1], volume=12345))

    result = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)

    assert result.stored == 3
    assert [r.row for r in result.rejected] == [3]
    assert "appears twice" in str(result.rejected[0])
    assert (
        Candle.objects.get(pair_id="EUR_USD", time=datetime(2026, 1, 5, 0, 1, tzinfo=UTC)).volume
        != 12345
    )


@pytest.mark.django_db
def test_the_copy_and_values_paths_store_identical_rows(timescaledb: None) -> None:
    candles = minute_candles(COPY_THRESHOLD + 10)
    candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)
    for chunk_start in range(0, len(candles), 100):
        candles_ingest(
            candles=candles[chunk_start : chunk_start + 100],
            pair="GBP_USD",
            timeframe="M1",
            now=NOW,
        )
    assert stored("EUR_USD") == stored("GBP_USD")
    assert len(stored("EUR_USD")) == COPY_THRESHOLD + 10


@pytest.mark.django_db
def test_a_pipelined_load_of_many_batches_stores_every_valid_candle_once(timescaledb: None) -> None:
    # Given 3 batches, large enough for the COPY path, the middle one with a bad candle and a
    # stretch that is already stored
    from marketdata.services import candles_ingest_batches

    candles = minute_candles(3 * COPY_THRESHOLD)
    candles_ingest(
        candles=candles[COPY_THRESHOLD + 10 : COPY_THRESHOLD + 20],
        pair="EUR_USD",
        timeframe="M1",
        now=NOW,
    )
    candles[COPY_THRESHOLD + 5] = dict(candles[COPY_THRESHOLD + 5], high="0.5")
    batches = [
        (start, candles[start : start + COPY_THRESHOLD])
        for start in range(0, len(candles), COPY_THRESHOLD)
    ]

    # When they are loaded through the pipelined path
    switch_interval = sys.getswitchinterval()
    loading = candles_ingest_batches(batches=batches, pair="EUR_USD", timeframe="M1", now=NOW)
    results = [next(loading)]
    during = sys.getswitchinterval()
    results += list(loading)

    # Then each batch reports its own outcome and the table holds every valid candle exactly once
    assert [r.received for r in results] == [COPY_THRESHOLD] * 3
    assert [len(r.rejected) for r in results] == [0, 1, 0]
    assert results[1].rejected[0].row == COPY_THRESHOLD + 5
    assert results[1].unchanged == 10
    assert sum(r.stored for r in results) == 3 * COPY_THRESHOLD - 1 - 10
    assert Candle.objects.filter(pair_id="EUR_USD").count() == 3 * COPY_THRESHOLD - 1
    # And the GIL was handed over promptly during the load only (the process's setting is back)
    assert during < switch_interval
    assert sys.getswitchinterval() == switch_interval


@given(
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_the_fast_reading_of_oanda_times_agrees_with_the_general_parser(moment: datetime) -> None:
    from marketdata.broker_time import parse_broker_time

    oanda = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    # A space instead of the T takes the general (regular expression) path.
    assert parse_broker_time(oanda) == parse_broker_time(oanda.replace("T", " ")) == moment
