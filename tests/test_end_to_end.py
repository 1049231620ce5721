"""The whole signal path on real parts: simulator → backfill → streamer → analysis → signal →
execution → SL/TP fills → reconciliation → daily performance (issue #7, item 5).

A real Celery worker consumes every queue over Redis against TimescaleDB; the simulator replays
the bundled real EUR/USD minutes at 120x. At the end, the signal stored for each analysed candle
must equal what the offline evaluation computes for the same candles (live and backtest agree),
and our trades and P&L must equal the broker's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.utils import timezone

from marketdata.models import Candle
from marketdata.oanda import AccountSummary, OandaClient, OandaConfig
from marketdata.services import candles_backfill
from marketdata.streaming import Streamer
from oandasim.client import SimulatorProcess
from qfh import rules
from qfh.models import CandleMetrics
from qfh.services import DEFAULT_LIVE_RULE
from septrader.services import config_set
from tests.conftest import SEED_CANDLES
from tests.qfh.test_live_signals import offline_signals
from trading import execution
from trading.models import Order, Trade, TradingSignal
from trading.performance import daily_performance
from trading.reconciliation import account_reconcile
from trading.schedule import trading_day
from trading.services import pair_enable

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TOKEN = "end-to-end-token"
ACCOUNT = "101-001-0000000-077"
START = datetime(2025, 7, 24, 9, 0, tzinfo=UTC)
SPEED = 120.0
# Simulated minutes streamed: enough for the default rule to fire a few times on these minutes.
STREAMED_MINUTES = 100


@pytest.fixture
def simulator(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", START.isoformat()),
            *("--speed", str(SPEED), "--heartbeat", "0.5", "--stream-interval", "0.1"),
            *("--rate-limit", "0"),
        ],
    ) as process:
        values = {
            "OANDA_API_URL": process.base_url,
            "OANDA_STREAM_URL": process.base_url,
            "OANDA_TOKEN": TOKEN,
            "OANDA_ACCOUNT_ID": ACCOUNT,
        }
        for name, value in values.items():
            setattr(settings, name, value)
            # The worker process started after this fixture reads the same broker.
            monkeypatch.setenv(name, value)
        execution._clients.__dict__.clear()
        yield process
        execution._clients.__dict__.clear()


def client(simulator: SimulatorProcess) -> OandaClient:
    return OandaClient(OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url))


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_from_an_empty_database_the_system_trades_the_replayed_market_and_agrees_with_backtest(
    timescaledb: None, simulator: SimulatorProcess, celery_worker: Any
) -> None:
    # Given an empty database, backfilled with five hours of the broker's minutes
    assert not Candle.objects.exists()
    backfill = candles_backfill(
        client=client(simulator), pair="EUR_USD", timeframe="M1", start=START - timedelta(hours=5)
    )
    assert backfill.ingest.stored >= 290
    # and EUR_USD trading on the default rule with tight stops, so SL/TP fill within minutes
    pair_enable(symbol="EUR_USD", actor="test", force=True)
    for key, value in (
        ("execution.stop_loss_pips", "4"),
        ("execution.take_profit_pips", "4"),
        ("risk.stale_price_seconds", 120),
        ("risk.loss_streak_length", 0),
    ):
        config_set(key=key, value=value)
    streamed_from = Candle.objects.filter(pair_id="EUR_USD").latest("time").time

    # When the streamer runs for a while of simulated time
    streamer = Streamer(
        client_factory=lambda: client(simulator),
        pairs=["EUR_USD"],
        bootstrap=timedelta(minutes=30),
        price_silence=3.0,
        transaction_silence=4.0,
    )
    thread = threading.Thread(target=streamer.run, daemon=True)
    thread.start()
    try:
        target = streamed_from + timedelta(minutes=STREAMED_MINUTES)
        wait_until(
            lambda: Candle.objects.filter(pair_id="EUR_USD", time__gte=target).exists(),
            STREAMED_MINUTES * 60 / SPEED + 60,
            f"{STREAMED_MINUTES} simulated minutes of candles",
        )
    finally:
        streamer.stop.set()
        thread.join(timeout=20)
    # and the worker has finished what the last candles started
    wait_until(
        lambda: (
            not TradingSignal.objects.filter(
                status__in=[TradingSignal.Status.NEW, TradingSignal.Status.CLAIMED]
            ).exists()
        ),
        60,
        "every signal to be executed or rejected",
    )
    analysed = sorted(
        CandleMetrics.objects.filter(
            pair_id="EUR_USD", timeframe="M1", time__gt=streamed_from
        ).values_list("time", flat=True)
    )
    # Let the open trade's stops play out on the broker, then reconcile.
    requests_time = timezone.now()
    while Trade.objects.filter(state=Trade.State.OPEN).exists():
        requests.post(
            f"{simulator.base_url}/__sim/clock",
            json={"advance": 600},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
        account_reconcile(client=client(simulator))
        assert timezone.now() - requests_time < timedelta(seconds=60), "stops never filled"
    account_reconcile(client=client(simulator))

    # Then every streamed candle was analysed, and the stored signals are exactly the offline
    # evaluation's for the same candles
    streamed = list(
        Candle.objects.filter(pair_id="EUR_USD", timeframe="M1", time__gt=streamed_from)
        .order_by("time")
        .values_list("time", flat=True)
    )
    # (The first minute or two arrive through the streamer's catch-up, which stores candles but
    # does not signal on them: they are stale by then.)
    assert len(analysed) >= STREAMED_MINUTES - 5
    assert set(analysed) <= set(streamed)
    offline = offline_signals("EUR_USD", DEFAULT_LIVE_RULE)
    names = {rules.BUY: "BUY", rules.SELL: "SELL"}
    expected = {
        moment: names[offline[moment][0]] for moment in analysed if offline[moment][0] != rules.HOLD
    }
    stored = dict(
        TradingSignal.objects.filter(pair_id="EUR_USD", time__in=analysed).values_list(
            "time", "direction"
        )
    )
    assert stored == expected
    assert len(stored) >= 2, "the stretch should hold a few signals"

    # And each signal was executed once or rejected with a reason, with SL/TP held at the broker
    executed = TradingSignal.objects.filter(status=TradingSignal.Status.EXECUTED)
    assert executed.exists()
    for signal in TradingSignal.objects.exclude(status=TradingSignal.Status.EXECUTED):
        assert signal.status == TradingSignal.Status.REJECTED and signal.status_reason
    for signal in executed:
        order = Order.objects.get(signal=signal)
        assert order.status == Order.Status.FILLED
        assert order.stop_loss_price is not None and order.take_profit_price is not None

    # And the trades closed by their stops at the broker, with the broker's P&L, which the daily
    # performance of the 17:00 New York day adds up
    trades = list(Trade.objects.all())
    assert trades and all(trade.state == Trade.State.CLOSED for trade in trades)
    assert {trade.close_reason for trade in trades} <= {"STOP_LOSS_ORDER", "TAKE_PROFIT_ORDER"}
    summary = client(simulator).request(AccountSummary(ACCOUNT))["account"]
    realised = sum((trade.realized_pl for trade in trades), Decimal(0))
    assert realised == Decimal(summary["pl"])
    days = daily_performance(trading_day(START), trading_day(START + timedelta(days=1)))
    assert sum((day.realized_pl for day in days), Decimal(0)) == realised + sum(
        (trade.financing for trade in trades), Decimal(0)
    )
    assert sum(day.trades_closed for day in days) == len(trades)
    print(
        f"analysed={len(analysed)} signals={len(stored)} executed={executed.count()} "
        f"trades={len(trades)} realised_pl={realised}"
    )
