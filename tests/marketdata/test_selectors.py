from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from marketdata.models import Candle
from marketdata.selectors import Bar, candle_newest_complete_time, candles_last
from marketdata.services import candles_ingest
from tests.marketdata.test_ingestion import NOW, minute_candles

START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)


def newest_by_the_orm(count: int, until: datetime | None = None) -> list[Bar]:
    queryset = Candle.objects.filter(pair_id="EUR_USD", timeframe="M1")
    if until is not None:
        queryset = queryset.filter(time__lt=until)
    rows: list[Any] = list(
        queryset.order_by("-time").values_list(
            "time", "open", "high", "low", "close", "volume", "complete"
        )[:count]
    )
    return [Bar(*row) for row in reversed(rows)]


@pytest.mark.django_db
def test_repeated_reads_of_the_last_m1_candles_return_the_newest_stored(timescaledb: None) -> None:
    # Given two weeks of minutes in the table (several chunks)
    candles_ingest(candles=minute_candles(3000), pair="EUR_USD", timeframe="M1", now=NOW)

    # When the last candles are read, and read again after a new minute arrives
    first = candles_last(pair="EUR_USD", timeframe="M1", count=100)
    candles_ingest(
        candles=[dict(minute_candles(3001)[-1], volume=7)], pair="EUR_USD", timeframe="M1", now=NOW
    )
    second = candles_last(pair="EUR_USD", timeframe="M1", count=100)

    # Then each read equals the newest candles as the ORM finds them, the new minute included
    assert first[-1].time == START + timedelta(minutes=2999)
    assert second == newest_by_the_orm(100)
    assert second[-1].time == START + timedelta(minutes=3000)
    assert second[-1].volume == 7
    assert len(second) == 100


@pytest.mark.django_db
def test_the_last_m1_candles_are_right_after_the_newest_ones_are_deleted(
    timescaledb: None,
) -> None:
    # Given a read that remembered where its oldest candle was
    candles_ingest(candles=minute_candles(300), pair="EUR_USD", timeframe="M1", now=NOW)
    candles_last(pair="EUR_USD", timeframe="M1", count=50)

    # When the newest candles disappear, so fewer than 50 remain after that point
    Candle.objects.filter(pair_id="EUR_USD", time__gte=START + timedelta(minutes=280)).delete()
    last = candles_last(pair="EUR_USD", timeframe="M1", count=50)

    # Then the read still returns the 50 newest that remain
    assert last == newest_by_the_orm(50)
    assert [bar.time for bar in last] == [START + timedelta(minutes=m) for m in range(230, 280)]


@pytest.mark.django_db
def test_the_last_m1_candles_before_a_time_follow_the_until_argument(timescaledb: None) -> None:
    candles_ingest(candles=minute_candles(300), pair="EUR_USD", timeframe="M1", now=NOW)
    candles_last(pair="EUR_USD", timeframe="M1", count=20)

    for until in (START + timedelta(minutes=290), START + timedelta(minutes=100), START):
        assert candles_last(pair="EUR_USD", timeframe="M1", count=20, until=until) == (
            newest_by_the_orm(20, until)
        )


@pytest.mark.django_db
def test_a_pair_with_fewer_candles_than_asked_returns_all_of_them(timescaledb: None) -> None:
    candles_ingest(candles=minute_candles(5), pair="EUR_USD", timeframe="M1", now=NOW)

    for _ in range(2):
        assert candles_last(pair="EUR_USD", timeframe="M1", count=10) == newest_by_the_orm(10)
    assert candles_last(pair="GBP_USD", timeframe="M1", count=10) == []


def newest_complete_by_the_orm() -> datetime | None:
    newest: datetime | None = (
        Candle.objects.filter(pair_id="EUR_USD", timeframe="M1", complete=True)
        .order_by("-time")
        .values_list("time", flat=True)
        .first()
    )
    return newest


@pytest.mark.django_db
def test_the_newest_complete_candle_follows_new_minutes_deletions_and_forming_candles(
    timescaledb: None,
) -> None:
    # Given three days of minutes, read once (the read remembers where the newest was)
    candles_ingest(candles=minute_candles(4320), pair="EUR_USD", timeframe="M1", now=NOW)
    assert candle_newest_complete_time("EUR_USD", "M1") == START + timedelta(minutes=4319)

    # When a new minute arrives, and then a forming (incomplete) one after it
    candles_ingest(candles=[minute_candles(4321)[-1]], pair="EUR_USD", timeframe="M1", now=NOW)
    newer = candle_newest_complete_time("EUR_USD", "M1")
    candles_ingest(
        candles=[dict(minute_candles(4322)[-1], complete=False)],
        pair="EUR_USD",
        timeframe="M1",
        now=NOW,
    )
    # Then the newest complete one is the new minute, not the forming one
    assert newer == START + timedelta(minutes=4320)
    assert candle_newest_complete_time("EUR_USD", "M1") == newer == newest_complete_by_the_orm()

    # And when the last two days disappear (nothing left after the remembered point), the read
    # finds the newest that remains; with nothing left at all, None
    Candle.objects.filter(pair_id="EUR_USD", time__gte=START + timedelta(minutes=1440)).delete()
    assert candle_newest_complete_time("EUR_USD", "M1") == START + timedelta(minutes=1439)
    Candle.objects.filter(pair_id="EUR_USD").delete()
    assert candle_newest_complete_time("EUR_USD", "M1") is None
    assert candle_newest_complete_time("GBP_USD", "M1") is None


@pytest.mark.django_db
def test_a_corrected_candle_is_read_with_its_new_prices(timescaledb: None) -> None:
    # Given minutes read once (each row decoded, and remembered by its text)
    candles = minute_candles(200)
    candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)
    before = candles_last(pair="EUR_USD", timeframe="M1", count=50)

    # When the broker corrects the newest minute's close and high
    corrected = dict(candles[-1], close="1.20000", high="1.20010")
    candles_ingest(candles=[corrected], pair="EUR_USD", timeframe="M1", now=NOW)
    after = candles_last(pair="EUR_USD", timeframe="M1", count=50)

    # Then the read has the new prices, as Decimals, and the rest unchanged
    assert after == newest_by_the_orm(50)
    assert after[-1].close == Decimal("1.20000") and isinstance(after[-1].close, Decimal)
    assert after[-1].high == Decimal("1.20010")
    assert before[-1].close != after[-1].close and after[:-1] == before[:-1]
    assert after[-1].time.tzinfo is not None and after[-1].time.utcoffset() == timedelta(0)
