"""The console on a replayed market (the demo): the market data's lag and "today" follow the
broker's clock, the local processes' heartbeats the wall clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from marketdata.models import Pair
from marketdata.services import candles_ingest
from monitoring.services import heartbeats_record
from oandasim.client import SimulatorProcess
from tests.console.conftest import THURSDAY, minute_candles
from trading.models import AccountSnapshot, Trade
from trading.reconciliation import account_reconcile

pytestmark = pytest.mark.django_db

# The demo replays Thursday 24 July 2025: its broker's clock is there, whatever the wall shows.
REPLAYED = datetime(2025, 7, 24, 10, 0, 20, tzinfo=UTC)


def closed_trade(
    broker_trade_id: str, closed_at: datetime, realized: str, pair: str = "EUR_USD"
) -> Trade:
    return Trade.objects.create(
        account_id="acct",
        broker_trade_id=broker_trade_id,
        pair_id=pair,
        initial_units=Decimal(1000),
        current_units=Decimal(0),
        open_price=Decimal("1.1712"),
        opened_at=closed_at - timedelta(minutes=20),
        close_price=Decimal("1.172345"),
        closed_at=closed_at,
        state=Trade.State.CLOSED,
        realized_pl=Decimal(realized),
    )


def test_on_a_replayed_market_the_dashboard_shows_a_lag_of_seconds_and_the_replayed_day(
    operator_client: Client, broker_clock: Any
) -> None:
    # Given the demo's streamer at 10:00:20 on the replayed Thursday, its newest closed minute
    # 09:59, and a trade that closed on that day
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True, state=Pair.State.TRADING)
    candles_ingest(
        candles=minute_candles(REPLAYED.replace(second=0) - timedelta(minutes=5), 5),
        pair="EUR_USD",
        timeframe="M1",
    )
    received = timezone.now().isoformat()
    broker_clock(
        REPLAYED,
        pairs={
            "EUR_USD": {
                "last_price_time": REPLAYED.isoformat(),
                "last_price_received": received,
                "last_candle_time": "2025-07-24T09:59:00+00:00",
            }
        },
    )
    closed_trade("501", REPLAYED - timedelta(minutes=30), "-40")
    # ... and a worker whose heartbeat is ten minutes old on the wall clock
    heartbeats_record(components=["beat"], now=timezone.now() - timedelta(minutes=10))

    # When the operator opens the dashboard
    html = operator_client.get("/admin/").content.decode()

    # Then the candle lag is seconds, measured on the broker's clock, not 498 days
    row = re.search(r'class="stream-row"><td>EUR_USD</td>.*?</tr>', html, re.S)
    assert row is not None
    lags = re.findall(r"<td>(\d+) s <span", row.group(0))
    assert lags and int(lags[0]) < 60, row.group(0)
    assert " d <span" not in row.group(0)
    # ... the broker's clock is shown as a replayed market's, and the market is open on it
    assert re.search(r'id="broker-clock">2025-07-24 10:00Z .*a replayed market', html)
    assert 'id="market-state">open<' in html
    # ... today is the replayed day, with its trade
    assert "trading day 2025-07-24 at the broker's clock" in html
    assert re.search(r'id="today-pl" class="loss">-40.00', html)
    assert "-40.00 on 1 closed trades" in html
    # ... while the heartbeats of local processes stay on the wall clock
    beats = html[html.index('id="panel-heartbeats"') : html.index('id="panel-alerts"')]
    assert re.search(r"beat</td>.*?state-down\">10 min<", beats, re.S)


def test_the_daily_performance_page_lists_the_trades_of_the_brokers_day(
    operator_client: Client, broker_clock: Any
) -> None:
    # Given a replayed Thursday with two trades closed on it and one on the day before, and an
    # account snapshot at the broker's clock
    broker_clock(REPLAYED)
    closed_trade("601", REPLAYED - timedelta(hours=1), "12.3456")
    closed_trade("602", REPLAYED - timedelta(minutes=10), "-2.5", pair="USD_JPY")
    closed_trade("603", REPLAYED - timedelta(days=1), "7")
    AccountSnapshot.objects.create(
        account_id="acct",
        time=REPLAYED,
        currency="USD",
        balance=Decimal("100016.8456"),
        nav=Decimal("100016.8456"),
        unrealized_pl=Decimal(0),
        margin_used=Decimal(0),
        margin_available=Decimal("100016.8456"),
    )

    # When the operator follows the dashboard's link to the daily performance page
    dashboard = operator_client.get("/admin/").content.decode()
    link = re.search(r'<a href="([^"]+)" id="daily-performance-link">', dashboard)
    assert link is not None
    page = operator_client.get(link.group(1))

    # Then today is the replayed Thursday, with its two trades, money to two decimals in the
    # account currency and prices to each pair's display precision
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="performance-today">2025-07-24<' in html
    today = re.search(r'id="day-2025-07-24">.*?</tr>', html, re.S)
    assert today is not None
    assert "<td>2</td>" in today.group(0) and "+9.85" in today.group(0)
    yesterday = re.search(r'id="day-2025-07-23">.*?</tr>', html, re.S)
    assert yesterday is not None and "+7.00" in yesterday.group(0)
    trades = html[html.index('id="panel-trades-today"') :]
    assert "Trades closed today (2)" in trades
    assert "+12.35 USD" in trades and "-2.50 USD" in trades
    assert "<td>1.17235</td>" in trades  # EUR_USD: 5 decimals
    assert "<td>1.172</td>" in trades  # USD_JPY: 3 decimals
    assert "603" not in re.sub(r"<[^>]+>", " ", trades)
    # ... and no day of the wall clock is listed
    assert f"day-{timezone.now():%Y-%m-%d}" not in html


def test_a_bad_number_of_days_is_named_and_the_default_week_shown(operator_client: Client) -> None:
    html = operator_client.get("/admin/performance/daily/?days=0").content.decode()
    assert "days=&#x27;0&#x27; is not valid; expected a whole number from 1 to 92." in html
    assert len(re.findall(r'class="day-row"', html)) == 5  # the week's weekdays


def test_reconciliation_stamps_the_account_snapshot_with_the_brokers_clock(
    simulator: SimulatorProcess, broker_clock: Any
) -> None:
    # Given the simulator's replayed Thursday as the broker's clock
    broker = datetime.fromisoformat(THURSDAY.replace("Z", "+00:00"))
    broker_clock(broker)

    # When a reconciliation pass runs
    account_reconcile()

    # Then its account snapshot is on the replayed day, so "today" is the replayed day
    snapshot = AccountSnapshot.objects.order_by("-id").first()
    assert snapshot is not None
    assert abs(snapshot.time - broker) < timedelta(minutes=1)


def test_on_a_saturday_the_dashboard_shows_crypto_open_beside_the_closed_fx_market(
    operator_client: Client, broker_clock: Any
) -> None:
    # Given bitcoin and the euro enabled, the broker's clock on a Saturday, no recent prices
    Pair.objects.create(
        symbol="BTC_USD",
        instrument_type=Pair.InstrumentType.CFD,
        pip_location=0,
        display_precision=1,
        enabled=True,
        state=Pair.State.TRADING,
    )
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True, state=Pair.State.TRADING)
    broker_clock(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))

    # When the operator opens the dashboard
    html = operator_client.get("/admin/").content.decode()

    # Then FX reads closed for the weekend and crypto open, and only bitcoin's missing prices
    # are flagged (the euro's are expected to be missing on a Saturday)
    assert re.search(r'id="market-state">closed</span>', html)
    crypto = re.search(r"<th>Crypto</th>\s*<td class=\"other-market\">(.*?)</td>", html, re.S)
    assert crypto is not None and ">open</span>" in crypto.group(1)
    rows = dict(re.findall(r'class="stream-row"><td>([A-Z_]+)</td>(.*?)</tr>', html, re.S))
    assert "state-stale" in rows["BTC_USD"]
    assert "state-stale" not in rows["EUR_USD"]
