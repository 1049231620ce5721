"""Backfill from the simulator through the real oandapyV20 client into TimescaleDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import call_command

from marketdata.models import Candle
from marketdata.oanda import OandaClient, OandaConfig
from marketdata.services import candles_backfill
from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES

TOKEN = "backfill-test-token"
ACCOUNT = "101-001-0000000-002"
START = datetime(2025, 7, 23, 20, 0, tzinfo=UTC)


def simulator_at(moment: str) -> SimulatorProcess:
    # EUR_USD replays the bundled real minutes; the other pairs are the simulator's synthetic walks.
    return SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}"),
            *("--start", moment, "--paused", "--rate-limit", "0"),
        ],
    )


@pytest.fixture(scope="module")
def after_the_data() -> Iterator[SimulatorProcess]:
    # Friday 2025-07-25 21:00 UTC: the bundled minutes are over and the market has closed.
    with simulator_at("2025-07-25T21:00:00Z") as process:
        yield process


def client_for(simulator: SimulatorProcess) -> OandaClient:
    return OandaClient(OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url))


def stored(pair: str = "EUR_USD") -> list[tuple[Any, ...]]:
    return list(
        Candle.objects.filter(pair_id=pair, timeframe="M1")
        .order_by("time")
        .values_list("time", "open", "high", "low", "close", "volume", "complete")
    )


def expected_from_file(seed_candles: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            datetime.strptime(c["time"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC),
            *(Decimal(repr(c[k])) for k in ("open", "high", "low", "close")),
            c["volume"],
            True,
        )
        for c in seed_candles
    ]


@pytest.mark.django_db
def test_a_backfill_of_the_real_minutes_equals_the_file(
    timescaledb: None, after_the_data: SimulatorProcess, seed_candles: list[dict[str, Any]]
) -> None:
    result = candles_backfill(
        client=client_for(after_the_data), pair="EUR_USD", timeframe="M1", start=START
    )

    assert stored() == expected_from_file(seed_candles)
    assert result.ingest.stored == len(seed_candles)
    assert result.ingest.rejected == []


@pytest.mark.django_db
def test_an_interrupted_backfill_resumes_after_the_last_stored_candle(
    timescaledb: None, after_the_data: SimulatorProcess, seed_candles: list[dict[str, Any]]
) -> None:
    # Given a backfill that stopped at noon on Thursday
    client = client_for(after_the_data)
    noon = datetime(2025, 7, 24, 12, 0, tzinfo=UTC)
    first = candles_backfill(client=client, pair="EUR_USD", timeframe="M1", start=START, end=noon)

    # When it is run again with the same start
    second = candles_backfill(client=client, pair="EUR_USD", timeframe="M1", start=START)

    # Then the second run starts after the newest stored candle and the table equals the file
    assert second.start == noon
    assert first.ingest.stored + second.ingest.stored == len(seed_candles)
    assert second.ingest.unchanged == 0
    assert stored() == expected_from_file(seed_candles)


@pytest.mark.django_db
def test_the_forming_candle_is_stored_incomplete_and_completed_by_the_next_backfill(
    timescaledb: None,
) -> None:
    with simulator_at("2025-07-24T09:00:30Z") as simulator:
        client = client_for(simulator)
        candles_backfill(
            client=client,
            pair="EUR_USD",
            timeframe="M1",
            start=datetime(2025, 7, 24, 8, 0, tzinfo=UTC),
        )
        newest = stored()[-1]
        assert newest[0] == datetime(2025, 7, 24, 9, 0, tzinfo=UTC)
        assert newest[-1] is False

        requests.post(
            f"{simulator.base_url}/__sim/clock",
            json={"advance": 60},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
        again = candles_backfill(client=client, pair="EUR_USD", timeframe="M1", start=None)

    assert again.start == datetime(2025, 7, 24, 9, 0, tzinfo=UTC)
    assert stored()[-2][0] == datetime(2025, 7, 24, 9, 0, tzinfo=UTC)
    assert stored()[-2][-1] is True
    assert [row[-1] for row in stored()[:-1]] == [True] * (len(stored()) - 1)


@pytest.mark.django_db
def test_a_long_range_is_fetched_in_pages_of_5000(
    timescaledb: None, after_the_data: SimulatorProcess
) -> None:
    start = datetime(2025, 7, 16, 0, 0, tzinfo=UTC)
    result = candles_backfill(
        client=client_for(after_the_data), pair="GBP_USD", timeframe="M1", start=start
    )

    rows = stored("GBP_USD")
    assert result.requests >= 2
    assert result.ingest.rejected == []
    assert len(rows) == result.ingest.stored > 5000
    assert rows[0][0] >= start
    # The synthetic walk trades until the 16:58 New York break before Friday's close.
    assert rows[-1][0] == datetime(2025, 7, 25, 20, 57, tzinfo=UTC)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_backfill_command_fetches_several_pairs_concurrently(
    timescaledb: None,
    after_the_data: SimulatorProcess,
    settings: Any,
    seed_candles: list[dict[str, Any]],
) -> None:
    settings.OANDA_API_URL = after_the_data.base_url
    settings.OANDA_TOKEN = TOKEN
    settings.OANDA_ACCOUNT_ID = ACCOUNT
    out = StringIO()

    call_command(
        "backfill",
        *("--pair", "EUR_USD", "--pair", "USD_JPY", "--from", "2025-07-23T20:00"),
        no_progress=True,
        stdout=out,
        stderr=StringIO(),
    )

    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("EUR_USD M1 from 2025-07-23T20:00Z")
    assert f"stored {len(seed_candles)}," in lines[0]
    assert "rejected 0" in lines[1]
    assert Candle.objects.filter(pair_id="USD_JPY").count() > 2000
    jpy = Candle.objects.filter(pair_id="USD_JPY").first()
    assert jpy is not None and Decimal(50) < jpy.close < Decimal(500)
