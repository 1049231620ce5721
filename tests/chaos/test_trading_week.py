"""Simulated weeks of trading against the simulator, with broker faults and executor kills.

Issue #6's definition of done: at the end our trades, orders and P&L equal the broker's to the
cent, and not one order was duplicated. The run covers three pairs (EUR_USD on the bundled real
minutes, the others synthetic) in one-hour steps of the simulator's clock, crossing weekends.
Signals come at random (seed printed; rerun with WEEK_SEED=...). Faults: bursts of HTTP 503,
slow answers, and executor processes killed with SIGKILL at random moments. ``CHAOS_DAYS`` sets
the simulated length (7 in the suite; ``make chaos`` runs 70, about ten minutes here) and the
run prints a table of faults injected, recoveries and invariant violations.
"""

from __future__ import annotations

import os
import random
import signal as signals
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from septrader.models import AuditLog
from septrader.services import config_set
from tests.trading.conftest import Broker, make_signal, trading_pair
from tests.trading.test_executor_processes import eager_requeue, executor
from trading.execution import client_order_id, signal_execute
from trading.models import Order, Trade, TradingSignal
from trading.reconciliation import account_reconcile

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
__all__ = ["eager_requeue"]

PAIRS = ("EUR_USD", "GBP_USD", "USD_JPY")
START = datetime(2025, 7, 24, 9, 0, tzinfo=UTC)
HOURS = int(os.environ.get("CHAOS_DAYS", "7")) * 24


def test_a_week_of_trading_with_faults_and_kills_ends_equal_to_the_broker_to_the_cent(
    broker: Broker, eager_requeue: None
) -> None:
    seed = int(os.environ.get("WEEK_SEED", random.randrange(1_000_000)))
    print(f"WEEK_SEED={seed}")
    chooser = random.Random(seed)
    for pair in PAIRS:
        trading_pair(pair)
    for key, value in (
        ("risk.max_orders_per_minute", 1000),
        ("risk.loss_streak_length", 0),
        ("risk.stale_price_seconds", 120),
        ("risk.daily_loss_limit_percent", "50"),
        ("risk.max_drawdown_percent", "90"),
        ("execution.stop_loss_pips", "10"),
        ("execution.take_profit_pips", "15"),
    ):
        config_set(key=key, value=value)
    faults = {"503 bursts": 0, "slow answers": 0, "executor kills": 0}
    signals_made = 0

    for hour in range(HOURS):
        broker.advance(3600)
        now = START + timedelta(hours=hour + 1)
        for pair in PAIRS:
            if chooser.random() > 0.35:
                continue
            signal = make_signal(
                pair,
                direction=chooser.choice(["BUY", "SELL"]),
                minute=(now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:00Z"),
            )
            signals_made += 1
            roll = chooser.random()
            if roll < 0.08:
                faults["executor kills"] += 1
                broker.control("fault", {"latency": 0.1})
                process = executor(str(signal.pk))
                time.sleep(chooser.uniform(0.0, 0.5))
                process.send_signal(signals.SIGKILL)
                process.wait(timeout=30)
                broker.control("fault", {"clear": True})
            elif roll < 0.18:
                faults["503 bursts"] += 1
                broker.control("fault", {"status": 503, "count": chooser.randint(1, 3)})
                signal_execute(signal_id=signal.pk)
                broker.control("fault", {"clear": True})
            elif roll < 0.23:
                faults["slow answers"] += 1
                broker.control("fault", {"latency": 0.2})
                signal_execute(signal_id=signal.pk)
                broker.control("fault", {"clear": True})
            else:
                signal_execute(signal_id=signal.pk)
        if hour % 6 == 5:
            account_reconcile(client=broker.client(), now=timezone.now() + timedelta(minutes=1))

    broker.control("fault", {"clear": True})
    account_reconcile(client=broker.client(), now=timezone.now() + timedelta(minutes=1))
    print(f"faults={faults} signals={signals_made}")
    print(
        "signals_by_status="
        + str(
            {
                status: TradingSignal.objects.filter(status=status).count()
                for status in TradingSignal.Status.values
            }
        )
    )

    reasons: dict[str, int] = {}
    for reason in TradingSignal.objects.filter(status=TradingSignal.Status.REJECTED).values_list(
        "status_reason", flat=True
    ):
        key = reason.split(":")[0].split(" already")[0][:40]
        reasons[key] = reasons.get(key, 0) + 1
    print(f"rejections={reasons}")

    violations: list[str] = []

    def check(condition: bool, what: str) -> None:
        if not condition:
            violations.append(what)

    # Every order the broker accepted is ours, once; every filled order of ours is the broker's.
    history = broker.get("transactions/sinceid?id=1")["transactions"]
    accepted = [
        (tx.get("clientExtensions") or {}).get("id")
        for tx in history
        if tx["type"] == "MARKET_ORDER"
        and (tx.get("clientExtensions") or {}).get("tag") == "septrader"
    ]
    check(len(accepted) == len(set(accepted)), "an order reached the broker twice")
    ours = set(Order.objects.filter(kind=Order.Kind.ENTRY).values_list("client_id", flat=True))
    check(set(accepted) <= ours, "the broker holds an order we have no record of")
    check(not Order.objects.filter(status=Order.Status.PENDING).exists(), "an order left pending")
    for signal in TradingSignal.objects.filter(status=TradingSignal.Status.EXECUTED):
        check(client_order_id(signal.pk) in accepted, f"signal {signal.pk} executed, no order")
    check(
        not TradingSignal.objects.filter(status=TradingSignal.Status.CLAIMED).exists(),
        "a signal left claimed",
    )

    # Trades: the same set, each with the broker's units, state, realised P&L and financing.
    at_broker: dict[str, dict[str, object]] = {}
    page = broker.get("trades?state=ALL&count=500")["trades"]
    while page:
        at_broker.update({trade["id"]: trade for trade in page})
        oldest = min(int(trade["id"]) for trade in page)
        page = broker.get(f"trades?state=ALL&count=500&beforeID={oldest}")["trades"]
    here = {trade.broker_trade_id: trade for trade in Trade.objects.all()}
    check(set(here) == set(at_broker), "our trades are not the broker's trades")
    for trade_id, wire in at_broker.items():
        trade = here.get(trade_id)
        if trade is None:
            continue
        for name, ours_value, theirs in (
            ("state", trade.state, wire["state"]),
            ("units", trade.current_units, Decimal(str(wire["currentUnits"]))),
            ("realised P&L", trade.realized_pl, Decimal(str(wire["realizedPL"]))),
            ("financing", trade.financing, Decimal(str(wire["financing"]))),
        ):
            check(ours_value == theirs, f"trade {trade_id} {name}: ours {ours_value}, {theirs}")
    account = broker.get("summary")["account"]
    realised = sum((trade.realized_pl for trade in here.values()), Decimal(0))
    check(realised == Decimal(account["pl"]), f"realised {realised} != broker {account['pl']}")
    closed = sum(1 for trade in here.values() if trade.state == Trade.State.CLOSED)
    # What reconciliation had to put right after the faults (each is an audited correction).
    recoveries = AuditLog.objects.filter(action="reconciliation.difference").count()

    print()
    print("| seed | simulated days | signals | faults injected | trades | invariant violations |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {seed} | {HOURS // 24} | {signals_made} | "
        + ", ".join(f"{name} {count}" for name, count in faults.items())
        + f" | {len(here)} ({closed} closed, realised {realised}) | {len(violations)} |"
    )
    print(f"corrections made by reconciliation (audited): {recoveries}")
    for violation in violations:
        print(f"VIOLATION {violation}")
    assert violations == []
    assert closed > 10
