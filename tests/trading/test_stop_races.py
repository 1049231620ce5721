"""Stops win their race with an entry in flight (issue 23, finding 1).

With a slow broker an entry spends most of its time in broker calls (price, account, order). A
kill switch or a disable that lands during those calls must answer only once no entry can still
open a trade, or with the trade it opened closed. Each test races 20 times, the stop landing at
a different moment of the entry each time, and looks at the broker's open trades the moment the
stop answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.models import Alert
from monitoring.services import alerts_evaluate
from septrader.models import AuditLog
from septrader.services import config_set
from tests.trading.conftest import Broker, make_signal, trading_pair
from tests.trading.test_execution import AnswersLost
from trading import execution
from trading.execution import Outcome, signal_execute
from trading.models import Order, Trade, TradingSignal, TradingState
from trading.reconciliation import account_reconcile
from trading.services import kill_switch_engage, pair_disable, trading_mode_set

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

RUNS = 20
# Seconds the simulator holds every REST request: an entry takes three of them.
LATENCY = 0.2


@pytest.fixture
def slow_broker(broker: Broker) -> Iterator[Broker]:
    # Twenty entries in a row, each closed at a small loss, must not trip the unrelated limits.
    config_set(key="risk.max_orders_per_minute", value=1000)
    config_set(key="risk.loss_streak_length", value=0)
    broker.control("fault", {"latency": LATENCY})
    yield broker
    broker.control("fault", {"clear": True})


def race(
    broker: Broker, run: int, stop: Callable[[], Any]
) -> tuple[Outcome, list[dict[str, Any]], Any]:
    """Start an entry, call ``stop`` while it is in flight, and read the broker's open trades
    the moment ``stop`` answers. The stop lands later in the entry with each run."""
    minute = f"2025-07-24T{8 + (59 + run) // 60:02d}:{(59 + run) % 60:02d}:00Z"
    signal = make_signal(minute=minute)
    outcomes: list[Outcome] = []

    def enter() -> None:
        try:
            outcomes.append(signal_execute(signal_id=signal.pk))
        finally:
            connection.close()

    entry = threading.Thread(target=enter)
    entry.start()
    # From just after the first broker call starts to just before the order's answer.
    time.sleep(0.02 + (3 * LATENCY - 0.07) * run / (RUNS - 1))
    answer = stop()
    open_at_answer = broker.open_trades()
    entry.join(60)
    assert not entry.is_alive() and outcomes, "the entry did not finish"
    return outcomes[0], open_at_answer, answer


def next_run(broker: Broker) -> None:
    """Trading again, one simulated minute later (the next signal's candle has just closed)."""
    trading_mode_set(mode=TradingState.Mode.TRADING, actor="test")
    trading_pair()
    broker.advance(60)


def kinds_of(outcome: Outcome) -> str:
    signal = TradingSignal.objects.get(pk=outcome.signal_id)
    if outcome.status == "rejected":
        assert "checked again just before sending" in outcome.reason or (
            "kill switch" in outcome.reason or "not trading" in outcome.reason
        ), outcome.reason
        return "refused"
    assert outcome.status == "executed", outcome.reason
    assert "closed_after_stop" in signal.result, signal.result
    return "closed after the stop"


def test_the_kill_switch_during_an_entry_leaves_no_open_trade_20_times_in_a_row(
    slow_broker: Broker,
) -> None:
    trading_pair()
    seen = []

    for run in range(RUNS):
        # Without closing trades: only the race's own fix can leave the account flat.
        outcome, open_at_answer, result = race(
            slow_broker,
            run,
            lambda: kill_switch_engage(actor="ops", close_trades=False),
        )

        assert open_at_answer == [], f"run {run}: {outcome} left {open_at_answer}"
        assert slow_broker.open_trades() == []
        assert not Trade.objects.filter(state=Trade.State.OPEN).exists()
        assert result.failures == []
        seen.append(kinds_of(outcome))
        next_run(slow_broker)

    # Both sides of the race were run: refused at the last check, and sent just before the
    # halt and closed at once, audited.
    assert set(seen) == {"refused", "closed after the stop"}, seen
    closed = AuditLog.objects.filter(action="trade.closed_after_stop")
    assert closed.count() == seen.count("closed after the stop")


def test_disabling_a_pair_during_an_entry_leaves_no_open_trade_on_it_20_times_in_a_row(
    slow_broker: Broker,
) -> None:
    trading_pair()
    seen = []

    for run in range(RUNS):
        outcome, open_at_answer, _ = race(
            slow_broker, run, lambda: pair_disable(symbol="EUR_USD", actor="ops")
        )

        assert open_at_answer == [], f"run {run}: {outcome} left {open_at_answer}"
        assert slow_broker.open_trades() == []
        seen.append(kinds_of(outcome))
        next_run(slow_broker)

    assert set(seen) == {"refused", "closed after the stop"}, seen


def test_an_entry_whose_answer_was_lost_and_that_fills_after_the_kill_switch_is_closed_audited_and_alerted(  # noqa: E501
    broker: Broker,
) -> None:
    trading_pair()
    signal = make_signal()
    # The order goes out, its answer and the lookup after it are lost: outcome unknown.
    signal_execute(signal_id=signal.pk, client=AnswersLost(broker, keep_slow=True))
    broker.control("fault", {"clear": True})
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING

    result = kill_switch_engage(actor="ops", close_trades=False)
    # The broker filled it after all; we learn it from reconciliation, after the halt.
    assert len(broker.open_trades()) == 1
    report = account_reconcile(client=broker.client(), now=timezone.now() + timedelta(minutes=1))

    assert result.entries_unsettled == [order.client_id]
    assert report is not None and report.trades_closed == 1
    assert broker.open_trades() == []
    trade = Trade.objects.get(order=order)
    assert trade.state == Trade.State.CLOSED
    order.refresh_from_db()
    assert "kill switch" in order.late_fill_reason
    entry = AuditLog.objects.get(action="trade.closed_after_stop")
    assert entry.details["client_id"] == order.client_id
    alerts_evaluate()
    alert = Alert.objects.get(condition="trades.closed_after_stop", resolved_at__isnull=True)
    assert trade.broker_trade_id in alert.message


@pytest.mark.django_db(transaction=False)
def test_on_sqlite_the_entry_lock_is_a_file_lock_that_a_stop_waits_for(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo runs on SQLite, whose own locking covers single writes, not a whole entry.
    settings.DATA_DIR = tmp_path
    monkeypatch.setattr(execution, "connection", SimpleNamespace(vendor="sqlite"))
    holding = threading.Event()
    release = threading.Event()

    def entry() -> None:
        with execution.entry_lock():
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=entry)
    thread.start()
    assert holding.wait(5)
    with execution.entry_lock(timeout=0.2) as taken:
        assert not taken, "a stop took the lock while an entry held it"
    release.set()
    thread.join(5)
    with execution.entry_lock(timeout=0.2) as taken:
        assert taken
        # Re-entrant within a thread: the executor closes its own late fill under the lock.
        with execution.entry_lock(timeout=0.2) as again:
            assert again
    assert (tmp_path / "entry.lock").exists()
