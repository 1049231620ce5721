from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from marketdata.selectors import candles_between, candles_last
from marketdata.services import candles_ingest
from tests.conftest import SEED_CANDLES
from tests.marketdata.reference import aggregate

SECONDS = {"M5": 300, "M15": 900, "H1": 3600}


def as_rows(candles: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "time": c.time,
            "open": c.open,
            "high": c.high,
            "low": c.low,
            "close": c.close,
            "volume": c.volume,
            "minutes": c.minutes,
        }
        for c in candles
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("timeframe", ["M5", "M15", "H1"])
def test_aggregated_candles_equal_a_reference_aggregation_of_the_real_minutes(
    timescaledb: None, seed_candles: list[dict[str, Any]], timeframe: str
) -> None:
    # Given the real EUR/USD minutes, gaps around the 17:00 New York roll included
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )

    # When the higher timeframe is read back from the database
    candles = candles_between(pair="EUR_USD", timeframe=timeframe)

    # Then every candle equals the plain-Python aggregation, bucket for bucket
    expected = aggregate(seed_candles, SECONDS[timeframe])
    assert as_rows(candles) == expected
    assert all(c.complete for c in candles)
    assert len(candles) == len(expected) > 0


@pytest.mark.django_db
def test_the_last_m15_candles_of_a_range_match_the_reference(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )
    until = datetime(2025, 7, 24, 12, 0, tzinfo=UTC)

    candles = candles_last(pair="EUR_USD", timeframe="M15", count=10, until=until)

    expected = [row for row in aggregate(seed_candles, 900) if row["time"] < until][-10:]
    assert as_rows(candles) == expected


@pytest.mark.django_db
def test_an_aggregated_candle_is_incomplete_until_its_period_ends(timescaledb: None) -> None:
    # Given the first three minutes of a five-minute period, the third still forming
    start = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
    now = start + timedelta(minutes=2, seconds=30)
    minutes = [
        {
            "time": start + timedelta(minutes=m),
            "open": "1.1",
            "high": "1.2",
            "low": "1.0",
            "close": "1.1",
            "volume": 1,
            "complete": m < 2,
        }
        for m in range(3)
    ]
    candles_ingest(candles=minutes, pair="EUR_USD", timeframe="M1", now=now)

    # Then the M5 candle is incomplete now, and still incomplete once its period is over while
    # one of its minutes never completed
    (m5,) = candles_between(pair="EUR_USD", timeframe="M5", now=now)
    assert m5.complete is False
    (later,) = candles_between(pair="EUR_USD", timeframe="M5", now=start + timedelta(hours=1))
    assert later.complete is False


@pytest.mark.django_db
def test_the_candle_table_is_a_timescaledb_hypertable_with_a_unique_natural_key(
    timescaledb: None,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'market_candles'"
        )
        assert cursor.fetchone() == ("market_candles",)
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'market_candles'::regclass AND contype IN ('u', 'p') ORDER BY contype"
        )
        definitions = {row[0] for row in cursor.fetchall()}
    assert 'UNIQUE (pair, timeframe, "time")' in definitions
    assert 'PRIMARY KEY (id, "time")' in definitions
