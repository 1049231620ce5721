"""Signals to orders at the simulated OANDA, through the real client, on the real EUR/USD path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from marketdata.models import Pair
from marketdata.oanda import OandaClient, OrderCreate, TransactionsSinceID
from monitoring.models import Alert
from monitoring.services import alerts_evaluate
from septrader.models import AuditLog
from septrader.services import config_set
from tests.trading.conftest import Broker, make_signal, trading_pair
from tests.trading.test_executor_processes import eager_requeue
from trading.execution import client_order_id, signal_execute, trade_client_id
from trading.ledger import transactions_apply
from trading.models import (
    AccountSnapshot,
    BrokerTransaction,
    Order,
    Trade,
    TradingSignal,
    TradingState,
)
from trading.reconciliation import account_reconcile
from trading.services import kill_switch_engage, trade_close

__all__ = ["eager_requeue"]


def test_a_signal_becomes_an_order_with_its_stops_held_at_the_broker(
    db: None, broker: Broker
) -> None:
    trading_pair()
    signal = make_signal(direction="BUY")

    outcome = signal_execute(signal_id=signal.pk)

    signal.refresh_from_db()
    assert outcome.status == "executed", outcome.reason
    assert signal.status == TradingSignal.Status.EXECUTED and signal.executed
    order = Order.objects.get(signal=signal)
    assert order.client_id == client_order_id(signal.pk)
    assert order.status == Order.Status.FILLED and order.units > 0
    trade = Trade.objects.get(order=order)
    assert trade.state == Trade.State.OPEN
    [held] = broker.open_trades()
    assert held["id"] == trade.broker_trade_id
    assert held["clientExtensions"]["id"] == trade_client_id(order.client_id)
    # 15 pips below and 30 above the fill (SystemConfig's execution defaults).
    assert Decimal(held["stopLossOrder"]["price"]) == trade.open_price - Decimal("0.0015")
    assert Decimal(held["takeProfitOrder"]["price"]) == order.take_profit_price
    assert trade.stop_loss_price == Decimal(held["stopLossOrder"]["price"])


def test_the_stop_loss_fills_later_on_the_real_path_and_our_trade_shows_the_brokers_pl(
    db: None, broker: Broker
) -> None:
    trading_pair()
    config_set(key="execution.stop_loss_pips", value="3")
    config_set(key="execution.take_profit_pips", value="0")
    signal = make_signal(direction="BUY")
    assert signal_execute(signal_id=signal.pk).status == "executed"
    trade = Trade.objects.get()

    for _ in range(48):
        broker.advance(900)
        if not broker.open_trades():
            break
    account_reconcile(client=broker.client())

    trade.refresh_from_db()
    at_broker = broker.get(f"trades/{trade.broker_trade_id}")["trade"]
    assert at_broker["state"] == "CLOSED"
    assert trade.state == Trade.State.CLOSED
    assert trade.close_reason == "STOP_LOSS_ORDER"
    assert trade.realized_pl == Decimal(at_broker["realizedPL"]) < 0
    assert trade.close_price == Decimal(at_broker["averageClosePrice"])


def test_the_same_signal_delivered_twice_makes_one_order(db: None, broker: Broker) -> None:
    trading_pair()
    signal = make_signal()

    first = signal_execute(signal_id=signal.pk)
    second = signal_execute(signal_id=signal.pk)

    assert first.status == "executed"
    assert second.reason == "already claimed"
    assert Order.objects.count() == 1
    assert broker.orders_with_client_id(client_order_id(signal.pk)) == 1


def test_a_second_signal_on_a_pair_with_an_open_position_is_rejected_with_the_reason(
    db: None, broker: Broker
) -> None:
    trading_pair()
    signal_execute(signal_id=make_signal(minute="2025-07-24T08:58:00Z").pk)
    second = make_signal(minute="2025-07-24T08:59:00Z", direction="SELL")

    outcome = signal_execute(signal_id=second.pk)

    second.refresh_from_db()
    assert outcome.status == "rejected"
    assert "EUR_USD already has an open position of" in second.status_reason
    assert len(broker.open_trades()) == 1


def test_a_signal_for_a_disabled_pair_is_rejected(db: None, broker: Broker) -> None:
    signal = make_signal()  # EUR_USD is seeded disabled

    outcome = signal_execute(signal_id=signal.pk)

    assert outcome.status == "rejected"
    assert "EUR_USD is not trading" in outcome.reason
    assert broker.open_trades() == []


def test_a_signal_for_a_metal_without_its_own_stops_is_rejected(db: None, broker: Broker) -> None:
    # Even enabled behind the services' back (an edit in the database), a metal is not traded
    trading_pair(instrument_type=Pair.InstrumentType.METAL)
    signal = make_signal()

    outcome = signal_execute(signal_id=signal.pk)

    assert outcome.status == "rejected"
    assert "EUR_USD is a METAL instrument whose pip is 0.0001" in outcome.reason
    assert "set its own max_spread_pips, stop_loss_pips, take_profit_pips" in outcome.reason
    assert broker.open_trades() == []


def test_an_old_signal_expires_unexecuted(db: None, broker: Broker) -> None:
    trading_pair()
    signal = make_signal()
    TradingSignal.objects.filter(pk=signal.pk).update(
        created_at=timezone.now() - timedelta(seconds=121)
    )

    outcome = signal_execute(signal_id=signal.pk)

    assert outcome.status == "expired"
    assert "signals.max_age_seconds=120" in outcome.reason
    assert not Order.objects.exists()


def test_a_fresh_signal_for_a_candle_that_closed_long_ago_by_the_brokers_clock_expires(
    db: None, broker: Broker
) -> None:
    # Given the last signal before a weekend, stored only now (the streamer caught up late), and
    # the broker's clock at the Sunday open
    trading_pair()
    broker.control("clock", {"time": "2025-07-27T21:05:00Z"})
    signal = make_signal(minute="2025-07-25T20:56:00Z")

    outcome = signal_execute(signal_id=signal.pk)

    # Then it expires instead of trading Friday's candle at Sunday's prices
    assert outcome.status == "expired"
    assert "its candle closed at 2025-07-25 20:57 UTC" in outcome.reason
    assert not Order.objects.exists()
    assert broker.open_trades() == []


def test_a_broker_cancel_is_a_recorded_outcome_not_an_error(db: None, broker: Broker) -> None:
    # Our idea of the margin rate is far lower than the broker's, so our margin rule passes and
    # the broker cancels the order for insufficient margin.
    trading_pair(margin_rate=Decimal("0.0001"))
    for key, value in (
        ("risk.per_trade_percent", "5"),
        ("risk.max_margin_used_percent", "100"),
        ("risk.max_units_per_order", 100_000_000),
        ("risk.max_units_per_pair", 100_000_000),
        ("execution.stop_loss_pips", "0.5"),
    ):
        config_set(key=key, value=value)
    signal = make_signal()

    outcome = signal_execute(signal_id=signal.pk)

    order = Order.objects.get()
    assert outcome.status == "rejected"
    assert order.status == Order.Status.CANCELLED
    assert order.reason == "INSUFFICIENT_MARGIN"
    assert "order cancelled: INSUFFICIENT_MARGIN" in outcome.reason


class AnswersLost(OandaClient):
    """A client whose order answers arrive after it has given up (the broker still acts).

    The simulator delays its answers while the order goes out; ``keep_slow`` keeps them delayed
    for the lookup that follows too, as when the network stays down.
    """

    def __init__(self, broker: Broker, *, keep_slow: bool) -> None:
        base = broker.client().config
        super().__init__(replace(base, read_timeout=0.3, max_attempts=1))
        self.broker = broker
        self.keep_slow = keep_slow

    def request(self, endpoint: Any, *, idempotent: bool | None = None) -> dict[str, Any]:
        if not isinstance(endpoint, OrderCreate):
            return super().request(endpoint, idempotent=idempotent)
        self.broker.control("fault", {"latency": 0.6})
        try:
            return super().request(endpoint, idempotent=idempotent)
        finally:
            if not self.keep_slow:
                time.sleep(0.4)  # let the delayed answer drain before the lookup
                self.broker.control("fault", {"clear": True})


def test_a_lost_answer_is_looked_up_by_client_id_and_not_sent_again(
    db: None, broker: Broker
) -> None:
    trading_pair()
    signal = make_signal()

    outcome = signal_execute(signal_id=signal.pk, client=AnswersLost(broker, keep_slow=False))

    order = Order.objects.get()
    assert outcome.status == "executed", outcome.reason
    assert order.status == Order.Status.FILLED
    assert broker.orders_with_client_id(order.client_id) == 1
    assert Trade.objects.get().broker_trade_id == broker.open_trades()[0]["id"]


def test_an_order_whose_lookup_fails_too_is_settled_by_reconciliation(
    db: None, broker: Broker
) -> None:
    trading_pair()
    signal = make_signal()

    signal_execute(signal_id=signal.pk, client=AnswersLost(broker, keep_slow=True))

    order = Order.objects.get()
    broker.control("fault", {"clear": True})
    assert order.status == Order.Status.PENDING
    report = account_reconcile(client=broker.client(), now=timezone.now() + timedelta(minutes=1))

    order.refresh_from_db()
    signal.refresh_from_db()
    assert report is not None and report.orders_settled == 1
    assert broker.orders_with_client_id(order.client_id) == 1
    assert order.status == Order.Status.FILLED
    assert signal.status == TradingSignal.Status.EXECUTED
    assert Trade.objects.get().broker_trade_id == broker.open_trades()[0]["id"]
    assert AuditLog.objects.filter(action="reconciliation.difference").exists()


def test_the_daily_loss_limit_trips_reducing_mode_rejects_entries_and_exits_still_work(
    db: None, broker: Broker
) -> None:
    trading_pair()
    trading_pair("GBP_USD")
    signal_execute(signal_id=make_signal(minute="2025-07-24T08:57:00Z").pk)
    trade = Trade.objects.get()
    # The day began 3% richer than now: a loss beyond the 2% daily limit.
    day_start = datetime(2025, 7, 23, 21, 0, tzinfo=UTC)
    AccountSnapshot.objects.create(
        account_id=trade.account_id,
        time=day_start,
        balance=Decimal(103_000),
        nav=Decimal(103_000),
        unrealized_pl=Decimal(0),
        margin_used=Decimal(0),
        margin_available=Decimal(103_000),
    )

    tripped = signal_execute(signal_id=make_signal("GBP_USD", minute="2025-07-24T08:58:00Z").pk)
    later = signal_execute(signal_id=make_signal("GBP_USD", minute="2025-07-24T08:59:00Z").pk)

    state = TradingState.objects.get()
    assert tripped.status == "rejected" and "daily loss" in tripped.reason
    assert state.mode == TradingState.Mode.REDUCING and "daily loss" in state.reason
    assert AuditLog.objects.filter(action="risk.trip").count() == 1
    assert later.status == "rejected" and "reducing-only" in later.reason
    # The operator is alerted that trading stopped, and why.
    alerts_evaluate()
    alert = Alert.objects.get(condition="trading.stopped", resolved_at__isnull=True)
    assert "daily loss" in alert.message or "daily loss" in str(alert.details)
    closed = trade_close(trade_id=trade.pk, actor="ops")
    assert closed.state == Trade.State.CLOSED
    assert broker.open_trades() == []


def test_the_kill_switch_flattens_everything_and_blocks_entries(db: None, broker: Broker) -> None:
    trading_pair()
    trading_pair("GBP_USD")
    signal_execute(signal_id=make_signal("EUR_USD", minute="2025-07-24T08:58:00Z").pk)
    signal_execute(signal_id=make_signal("GBP_USD", minute="2025-07-24T08:58:00Z").pk)
    assert len(broker.open_trades()) == 2

    result = kill_switch_engage(actor="ops", address="10.0.0.7")

    assert result.trades_closed == 2 and not result.failures
    assert broker.open_trades() == []
    assert set(Trade.objects.values_list("state", flat=True)) == {Trade.State.CLOSED}
    assert TradingState.objects.get().mode == TradingState.Mode.HALTED
    entry = AuditLog.objects.get(action="trading.kill_switch")
    assert (entry.actor, entry.address) == ("ops", "10.0.0.7")
    refused = signal_execute(signal_id=make_signal(minute="2025-07-24T08:59:00Z").pk)
    assert "kill switch" in refused.reason


def test_entries_stop_at_the_weekend_close(db: None, broker: Broker) -> None:
    trading_pair()
    # Friday 25 July 2025, 17:05 New York (EDT): the market has closed for the weekend.
    broker.control("clock", {"time": "2025-07-25T21:05:00Z"})
    signal = make_signal(minute="2025-07-25T21:04:00Z")

    outcome = signal_execute(signal_id=signal.pk)

    assert outcome.status == "rejected"
    assert outcome.reason.startswith("market closed")
    assert not Order.objects.exists()


def test_a_trade_closed_by_hand_at_the_broker_appears_closed_here_with_the_brokers_pl(
    db: None, broker: Broker
) -> None:
    trading_pair()
    signal_execute(signal_id=make_signal().pk)
    trade = Trade.objects.get()
    broker.advance(1800)
    broker.post(f"trades/{trade.broker_trade_id}/close", {"units": "ALL"}, method="PUT")

    report = account_reconcile(client=broker.client())

    trade.refresh_from_db()
    at_broker = broker.get(f"trades/{trade.broker_trade_id}")["trade"]
    assert report is not None
    assert trade.state == Trade.State.CLOSED
    assert trade.realized_pl == Decimal(at_broker["realizedPL"])
    assert trade.financing == Decimal(at_broker["financing"])


@pytest.mark.parametrize("twice", [False, True])
def test_reconciliation_counts_each_broker_transaction_once(
    db: None, broker: Broker, twice: bool
) -> None:
    trading_pair()
    signal_execute(signal_id=make_signal().pk)
    trade = Trade.objects.get()
    broker.post(f"trades/{trade.broker_trade_id}/close", {"units": "500"}, method="PUT")
    first = account_reconcile(client=broker.client())
    if twice:
        from trading.ledger import transactions_apply

        # The whole history again, twice (as a stream replay and a catch-up would deliver it).
        everything = broker.get("transactions/sinceid?id=1")["transactions"]
        transactions_apply(account_id=trade.account_id, transactions=everything)
        assert transactions_apply(account_id=trade.account_id, transactions=everything) == 0

    trade.refresh_from_db()
    at_broker = broker.get(f"trades/{trade.broker_trade_id}")["trade"]
    assert first is not None and first.transactions >= 1
    assert trade.current_units == Decimal(at_broker["currentUnits"])
    assert trade.realized_pl == Decimal(at_broker["realizedPL"])


def stop_loss_fill(broker: Broker, trade: Trade) -> dict[str, Any]:
    """Move the broker's clock until the trade's stop-loss fills; the fill transaction."""
    for _ in range(48):
        broker.advance(900)
        if not broker.open_trades():
            break
    history = broker.get("transactions/sinceid?id=1")["transactions"]
    [fill] = [
        tx
        for tx in history
        if tx["type"] == "ORDER_FILL"
        and any(closed["tradeID"] == trade.broker_trade_id for closed in tx.get("tradesClosed", []))
    ]
    return fill


class TransactionsLate(OandaClient):
    """A client to whom the broker's newest transactions are not visible yet (the stream that
    carries them is behind), while its trade records already show their effect."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker.client().config)

    def request(self, endpoint: Any, *, idempotent: bool | None = None) -> dict[str, Any]:
        body = super().request(endpoint, idempotent=idempotent)
        if isinstance(endpoint, TransactionsSinceID):
            body["transactions"] = []
        return body


def test_a_stop_loss_fill_arriving_after_reconciliation_closed_the_trade_is_not_counted_twice(
    db: None, broker: Broker
) -> None:
    # Given a trade whose stop-loss filled at the broker while the fill had not reached us
    trading_pair()
    config_set(key="execution.stop_loss_pips", value="3")
    config_set(key="execution.take_profit_pips", value="0")
    assert signal_execute(signal_id=make_signal(direction="BUY").pk).status == "executed"
    trade = Trade.objects.get()
    fill = stop_loss_fill(broker, trade)
    # and reconciliation, seeing the broker's closed trade, closed ours with its figures
    account_reconcile(client=TransactionsLate(broker))
    trade.refresh_from_db()
    assert trade.state == Trade.State.CLOSED

    # When the fill itself arrives late (the transaction stream catching up)
    transactions_apply(account_id=trade.account_id, transactions=[fill])

    # Then the trade's realised P&L is the broker's, not twice it
    trade.refresh_from_db()
    at_broker = broker.get(f"trades/{trade.broker_trade_id}")["trade"]
    assert trade.realized_pl == Decimal(at_broker["realizedPL"]) < 0


def test_reconciliation_fetches_a_fill_missed_before_a_later_order_was_stored(
    db: None, broker: Broker
) -> None:
    # Given a stop-loss fill we never received (the stream was down), then a later order whose
    # own answer we stored, so our newest transaction id lies past the missing fill
    trading_pair()
    trading_pair("GBP_USD")
    config_set(key="execution.stop_loss_pips", value="3")
    config_set(key="execution.take_profit_pips", value="0")
    assert signal_execute(signal_id=make_signal(direction="BUY").pk).status == "executed"
    trade = Trade.objects.get()
    fill = stop_loss_fill(broker, trade)
    later = make_signal("GBP_USD", minute="2025-07-25T08:59:00Z")
    TradingSignal.objects.filter(pk=later.pk).update(created_at=timezone.now())
    assert signal_execute(signal_id=later.pk).status == "executed"
    assert BrokerTransaction.objects.filter(id__gt=int(fill["id"])).exists()
    assert not BrokerTransaction.objects.filter(id=int(fill["id"])).exists()

    # When reconciliation runs
    report = account_reconcile(client=broker.client())

    # Then it applied the missed fill itself, as the ledger does, rather than patching the trade
    assert report is not None and report.transactions >= 1
    assert BrokerTransaction.objects.filter(id=int(fill["id"])).exists()
    trade.refresh_from_db()
    at_broker = broker.get(f"trades/{trade.broker_trade_id}")["trade"]
    assert trade.state == Trade.State.CLOSED
    assert trade.realized_pl == Decimal(at_broker["realizedPL"])
    assert trade.close_reason == "STOP_LOSS_ORDER"
    assert not AuditLog.objects.filter(
        action="reconciliation.difference", target=f"trade {trade.broker_trade_id}"
    ).exists()


def test_a_signal_whose_execution_message_was_lost_is_sent_again_by_reconciliation(
    db: None,
    broker: Broker,
    eager_requeue: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given a signal stored 40 s ago whose execution message never reached a worker (Redis was
    # down when the analysis sent it)
    trading_pair()
    signal = make_signal()
    TradingSignal.objects.filter(pk=signal.pk).update(
        created_at=timezone.now() - timedelta(seconds=40),
        updated_at=timezone.now() - timedelta(seconds=40),
    )

    # When reconciliation runs
    with django_capture_on_commit_callbacks(execute=True):
        report = account_reconcile(client=broker.client())

    # Then it sent the signal again and the signal was executed, once
    signal.refresh_from_db()
    assert report is not None and report.signals_requeued == 1
    assert signal.status == TradingSignal.Status.EXECUTED
    assert broker.orders_with_client_id(client_order_id(signal.pk)) == 1
    # and a second pass sends nothing more
    with django_capture_on_commit_callbacks(execute=True):
        again = account_reconcile(client=broker.client())
    assert again is not None and again.signals_requeued == 0
