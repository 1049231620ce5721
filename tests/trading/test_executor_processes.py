"""Executors as separate processes: racing for one signal, and killed at random moments."""

from __future__ import annotations

import os
import random
import signal as signals
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from celery import current_app
from django.utils import timezone

from septrader.services import config_set
from tests.conftest import REPO, worker_database_url
from tests.trading.conftest import Broker, make_signal, trading_pair
from trading.execution import client_order_id
from trading.models import Order, Trade, TradingSignal
from trading.reconciliation import account_reconcile
from trading.services import trades_close_all

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

EXECUTOR = """
import sys, time, django
django.setup()
from trading.execution import signal_execute
print("ready", flush=True)
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
outcome = signal_execute(signal_id=sys.argv[1])
print(outcome.reason if outcome.reason == "already claimed" else outcome.status, flush=True)
"""


def executor(signal_id: str, start: float = 0.0) -> subprocess.Popen[str]:
    """``signal_execute`` in its own process, against the test database and the broker."""
    database = worker_database_url()
    process = subprocess.Popen(
        [sys.executable, "-c", EXECUTOR, signal_id, str(start)],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": database,
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.fixture
def eager_requeue() -> Iterator[None]:
    """Signals that reconciliation requeues run at once, in this process (no worker needed)."""
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = previous


def test_two_executor_processes_given_the_same_signal_at_once_make_one_order(
    broker: Broker,
) -> None:
    trading_pair()
    signal = make_signal()
    start = time.time() + 2.5

    racers = [executor(str(signal.pk), start) for _ in range(2)]
    results = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)

    assert results == ["already claimed", "executed"]
    assert Order.objects.count() == 1
    assert broker.orders_with_client_id(client_order_id(signal.pk)) == 1
    assert len(broker.open_trades()) == 1


def test_an_executor_killed_at_random_moments_never_loses_or_duplicates_an_order(
    broker: Broker, eager_requeue: None
) -> None:
    seed = int(os.environ.get("KILL_SEED", random.randrange(1_000_000)))
    print(f"KILL_SEED={seed}")
    chooser = random.Random(seed)
    trading_pair()
    for key, value in (("risk.max_orders_per_minute", 1000), ("risk.loss_streak_length", 0)):
        config_set(key=key, value=value)
    outcomes: dict[str, int] = {}

    for round_number in range(20):
        minute = (datetime(2025, 7, 24, 8, 0) + timedelta(minutes=round_number)).strftime(
            "%Y-%m-%dT%H:%M:00Z"
        )
        signal = make_signal(minute=minute, direction=chooser.choice(["BUY", "SELL"]))
        # Every broker answer takes 0.15 s, so the executor spends ~0.6 s talking to the broker
        # and a kill at a random moment lands before, during or after the order leaves.
        broker.control("fault", {"latency": 0.15})
        process = executor(str(signal.pk))
        time.sleep(chooser.uniform(0.0, 0.8))
        process.send_signal(signals.SIGKILL)
        process.wait(timeout=30)
        broker.control("fault", {"clear": True})

        account_reconcile(client=broker.client(), now=timezone.now() + timedelta(minutes=1))

        signal.refresh_from_db()
        client_id = client_order_id(signal.pk)
        at_broker = broker.orders_with_client_id(client_id)
        order = Order.objects.filter(signal=signal).first()
        context = f"round {round_number} seed {seed}: signal {signal.status} order {order}"
        assert at_broker <= 1, context
        if at_broker:
            assert signal.status == TradingSignal.Status.EXECUTED, context
            assert order is not None and order.status == Order.Status.FILLED, context
            assert Trade.objects.filter(order=order).count() == 1, context
        else:
            assert signal.status != TradingSignal.Status.EXECUTED, context
            assert order is None or order.status == Order.Status.NOT_SENT, context
        outcomes[signal.status] = outcomes.get(signal.status, 0) + 1
        ours = set(
            Trade.objects.filter(state=Trade.State.OPEN).values_list("broker_trade_id", flat=True)
        )
        assert ours == {trade["id"] for trade in broker.open_trades()}, context
        trades_close_all(actor="test")

    print(f"outcomes={outcomes}")
    assert Order.objects.count() == len({order.client_id for order in Order.objects.all()})


def test_a_signal_sent_twice_through_the_execution_queue_makes_one_order(
    broker: Broker, celery_worker: Any
) -> None:
    from trading.tasks import execute_signal_task

    trading_pair()
    signal = make_signal()

    first = execute_signal_task.delay(str(signal.pk))
    second = execute_signal_task.delay(str(signal.pk))
    results = [first.get(timeout=60), second.get(timeout=60)]

    signal.refresh_from_db()
    assert sorted(result["status"] for result in results) == ["executed", "executed"]
    assert sorted(result["reason"] for result in results) == ["", "already claimed"]
    assert signal.status == TradingSignal.Status.EXECUTED
    assert broker.orders_with_client_id(client_order_id(signal.pk)) == 1
