"""The alert engine on the real database: rules caused by real rows, notified once to local
receivers, resolved when the condition clears."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail

from marketdata.models import Candle
from monitoring.models import Alert, DailySummary, Notification
from monitoring.services import (
    alert_acknowledge,
    alert_raise,
    alert_resolve,
    alerts_evaluate,
    daily_summary_send,
    notifications_deliver,
)
from qfh.models import CandleMetrics
from septrader.models import AuditLog
from septrader.services import config_set
from tests.monitoring.conftest import Receiver
from trading.models import AccountSnapshot, Order, Trade, TradingState

pytestmark = pytest.mark.usefixtures("channels_on")


def unresolved(condition: str) -> Alert | None:
    return Alert.objects.filter(condition=condition, resolved_at__isnull=True).first()


def make_orders(count: int, **fields: Any) -> None:
    Order.objects.bulk_create(
        Order(
            client_id=f"burst-{index}", account_id="101-1", pair_id="EUR_USD", units=1000, **fields
        )
        for index in range(count)
    )


def test_thirty_orders_in_a_minute_raise_one_notified_alert_that_resolves_when_the_burst_passes(
    webhook: Receiver,
) -> None:
    # Given thirty orders sent within the last minute
    make_orders(30)

    # When the alerts are evaluated twice
    first = alerts_evaluate()
    alerts_evaluate()

    # Then one alert is open, seen twice, and the webhook heard of it once
    assert "orders.burst" in first.raised
    alert = unresolved("orders.burst")
    assert alert is not None and alert.severity == "critical" and alert.count == 2
    assert "30 orders in the last 60 s" in alert.message
    assert webhook.events("orders.burst") == ["raised"]
    assert webhook.paths[0] == "/hooks/alerts"
    assert any("[CRITICAL] orders.burst" in text for text in webhook.texts())

    # When a minute has passed since the orders
    Order.objects.update(created_at=datetime.now(UTC) - timedelta(minutes=2))
    evaluation = alerts_evaluate()

    # Then the alert is resolved and the webhook is told once
    assert "orders.burst" in evaluation.resolved
    assert unresolved("orders.burst") is None
    assert webhook.events("orders.burst") == ["raised", "resolved"]


def test_a_daily_loss_limit_trip_is_e_mailed_and_sent_to_telegram_and_cleared_on_reset(
    webhook: Receiver, telegram: Receiver
) -> None:
    # Given the risk engine has tripped the daily loss limit (as trading's risk code records it)
    TradingState.objects.create(
        mode=TradingState.Mode.REDUCING,
        reason="daily loss limit reached: -2.1% of NAV (limit 2%)",
        changed_by="system:risk",
    )
    AuditLog.objects.create(
        actor="system:risk", action="risk.trip", target="daily_loss_limit", details={"pl": "-2100"}
    )

    # When the alerts are evaluated
    alerts_evaluate()
    alerts_evaluate()

    # Then one critical alert names the reason, e-mailed once and sent to Telegram once
    alert = unresolved("trading.stopped")
    assert alert is not None and alert.severity == "critical"
    assert "daily loss limit reached" in alert.message
    assert alert.details["last_risk_trip"]["target"] == "daily_loss_limit"
    stopped_mails = [m for m in mail.outbox if "trading.stopped" in m.subject]
    assert len(stopped_mails) == 1 and stopped_mails[0].to == ["ops@example.test"]
    telegram_texts = [b["text"] for b in telegram.bodies if "trading.stopped" in b["text"]]
    assert len(telegram_texts) == 1
    assert telegram.paths[0] == "/bot123:test-token/sendMessage"
    assert telegram.bodies[0]["chat_id"] == "-100200300"

    # When the operator resets trading
    TradingState.objects.filter(pk=1).update(mode="trading", reason="", changed_by="alice")
    alerts_evaluate()

    # Then the alert is resolved on every channel that announced it
    assert unresolved("trading.stopped") is None
    assert [m.subject for m in mail.outbox if "trading.stopped" in m.subject] == [
        "[CRITICAL] trading.stopped",
        "[RESOLVED] trading.stopped",
    ]
    assert sum("[RESOLVED] trading.stopped" in b["text"] for b in telegram.bodies) == 1
    assert webhook.events("trading.stopped") == ["raised", "resolved"]


def test_an_acknowledged_alert_stays_until_its_condition_clears_and_the_acknowledgement_is_audited(
    webhook: Receiver,
) -> None:
    make_orders(25)
    alerts_evaluate()
    alert = unresolved("orders.burst")
    assert alert is not None

    acknowledged = alert_acknowledge(alert_id=alert.id, actor="alice", address="10.0.0.7")
    alerts_evaluate()

    alert.refresh_from_db()
    assert acknowledged.state == alert.state == Alert.State.ACKNOWLEDGED
    assert alert.resolved_at is None and alert.acknowledged_by == "alice"
    entry = AuditLog.objects.get(action="alert.acknowledge")
    assert (entry.actor, entry.address, entry.target) == ("alice", "10.0.0.7", "orders.burst")
    Order.objects.all().delete()
    alerts_evaluate()
    alert.refresh_from_db()
    assert alert.state == Alert.State.RESOLVED


def test_a_failed_webhook_delivery_is_recorded_and_retried_with_backoff(webhook: Receiver) -> None:
    # Given a webhook that fails once
    webhook.statuses = [500]
    alert = alert_raise(condition="orders.burst", severity="critical", message="30 orders")
    start = datetime.now(UTC)
    notifications_deliver(now=start)
    notification = alert.notifications.get(channel="webhook")
    assert notification.status == "pending" and notification.attempts == 1
    assert "HTTP 500" in notification.last_error
    assert notification.next_attempt_at == start + timedelta(seconds=30)

    # When delivery runs before the backoff is over, nothing is sent; after it, the message is
    assert notifications_deliver(now=start + timedelta(seconds=10)) == 0
    assert notifications_deliver(now=start + timedelta(seconds=31)) == 1
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.attempts == 2
    assert webhook.events("orders.burst") == ["raised"]


def test_a_condition_that_flaps_within_the_cooldown_and_a_noisy_channel_are_held_back(
    webhook: Receiver,
) -> None:
    # A condition raised, resolved and raised again within the cooldown is notified once
    alert_raise(condition="prices.stale:EUR_USD", severity="warning", message="stale")
    alert_resolve(condition="prices.stale:EUR_USD")
    alert_raise(condition="prices.stale:EUR_USD", severity="warning", message="stale again")
    notifications_deliver()
    assert webhook.events("prices.stale:EUR_USD") == ["raised", "resolved"]
    assert Notification.objects.filter(status="suppressed", last_error__startswith="cooldown")

    # Beyond the hourly limit a channel stores messages as suppressed instead of sending them
    config_set(key="alerts.rate_limit_per_hour", value=3)
    for index in range(3):
        alert_raise(condition=f"analysis.missed:PAIR{index}", severity="warning", message="x")
    notifications_deliver()
    limited = Notification.objects.filter(last_error__startswith="rate limit")
    assert limited.count() == 2


def test_loss_streaks_far_fills_reconciliation_differences_and_missed_analysis_are_reported(
    webhook: Receiver,
) -> None:
    now = datetime.now(UTC)
    # Five losing trades in a row
    for index in range(5):
        Trade.objects.create(
            account_id="101-1",
            broker_trade_id=str(index),
            pair_id="EUR_USD",
            initial_units=1000,
            current_units=0,
            open_price=Decimal("1.1"),
            opened_at=now - timedelta(hours=1),
            state="CLOSED",
            closed_at=now - timedelta(minutes=10 - index),
            realized_pl=Decimal("-12.5"),
        )
    # A fill 20 pips from the requested price
    Order.objects.create(
        client_id="far",
        account_id="101-1",
        pair_id="EUR_USD",
        units=1000,
        status="filled",
        requested_price=Decimal("1.10000"),
        fill_price=Decimal("1.10200"),
        filled_at=now,
    )
    # A reconciliation difference logged by the trading core
    AuditLog.objects.create(
        actor="system:reconciliation", action="reconciliation.difference", target="trade 42"
    )
    # A closed candle of an enabled pair, three minutes old, never analysed
    from marketdata.models import Pair

    Pair.objects.filter(symbol="EUR_USD").update(enabled=True)
    minute = now.replace(second=0, microsecond=0) - timedelta(minutes=3)
    price = Decimal("1.1")
    Candle.objects.create(
        pair_id="EUR_USD",
        timeframe="M1",
        time=minute,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=1,
        complete=True,
    )
    CandleMetrics.objects.all().delete()

    evaluation = alerts_evaluate()

    for condition in (
        "trades.loss_streak",
        "orders.fill_slippage",
        "reconciliation.difference",
        "analysis.missed:EUR_USD",
    ):
        assert condition in evaluation.raised, condition
        assert webhook.events(condition) == ["raised"], condition
    assert "20" in str(unresolved("orders.fill_slippage").message)  # type: ignore[union-attr]

    # A winning trade ends the streak; the far fill and the difference age out of their windows
    Trade.objects.create(
        account_id="101-1",
        broker_trade_id="win",
        pair_id="EUR_USD",
        initial_units=1000,
        current_units=0,
        open_price=Decimal("1.1"),
        opened_at=now,
        state="CLOSED",
        closed_at=now,
        realized_pl=Decimal("30"),
    )
    Order.objects.filter(client_id="far").update(filled_at=now - timedelta(hours=2))
    AuditLog.objects.filter(action="reconciliation.difference").update(
        time=now - timedelta(hours=1)
    )
    Candle.objects.filter(pair_id="EUR_USD").delete()
    evaluation = alerts_evaluate()
    assert {
        "trades.loss_streak",
        "orders.fill_slippage",
        "reconciliation.difference",
        "analysis.missed:EUR_USD",
    } <= set(evaluation.resolved)


def test_the_daily_summary_is_sent_once_with_the_days_p_and_l_trades_and_alerts(
    webhook: Receiver,
) -> None:
    # Given a trading day ending Thursday 2025-07-24 17:00 New York (21:00 UTC)
    day = date(2025, 7, 24)
    start = datetime(2025, 7, 23, 21, 0, tzinfo=UTC)
    for moment, nav in (
        (start - timedelta(minutes=5), "100000"),
        (start + timedelta(hours=23), "100250.5"),
    ):
        AccountSnapshot.objects.create(
            account_id="101-1",
            time=moment,
            balance=nav,
            nav=nav,
            unrealized_pl=0,
            margin_used=0,
            margin_available=nav,
        )
    for index, pl in enumerate(("120", "-40", "170.5")):
        Trade.objects.create(
            account_id="101-1",
            broker_trade_id=f"d{index}",
            pair_id="EUR_USD",
            initial_units=1000,
            current_units=0,
            open_price=Decimal("1.1"),
            opened_at=start + timedelta(hours=1),
            state="CLOSED",
            closed_at=start + timedelta(hours=2 + index),
            realized_pl=Decimal(pl),
        )
    Alert.objects.create(
        condition="orders.burst",
        severity="critical",
        message="x",
        first_seen=start + timedelta(hours=3),
        last_seen=start + timedelta(hours=3),
        resolved_at=start + timedelta(hours=4),
        state="resolved",
    )

    # When the hourly task runs at 17:01 New York, and again later that hour
    summary = daily_summary_send(now=datetime(2025, 7, 24, 21, 1, tzinfo=UTC))
    again = daily_summary_send(now=datetime(2025, 7, 24, 21, 30, tzinfo=UTC))
    other_hour = daily_summary_send(now=datetime(2025, 7, 24, 15, 0, tzinfo=UTC))

    # Then it is sent once, with the day's figures
    assert summary is not None and summary.day == day and again is None and other_hour is None
    assert DailySummary.objects.count() == 1
    bodies = [body for body in webhook.bodies if body.get("event") == "summary"]
    assert len(bodies) == 1
    figures = bodies[0]["summary"]
    assert figures["pl"] == "250.5000"
    assert (figures["trades_closed"], figures["wins"], figures["losses"]) == (3, 2, 1)
    assert figures["realized_pl"] == "250.5000"
    assert figures["alerts_raised"] == 1
    assert "P&L (NAV change): 250.5000" in bodies[0]["text"]
    assert [m.subject for m in mail.outbox] == ["SEP Trader daily summary 2025-07-24"]


def test_memory_and_disk_over_their_thresholds_are_system_resource_alerts_that_clear(
    webhook: Receiver,
) -> None:
    # Given thresholds below what this machine uses right now
    config_set(key="monitoring.memory_percent", value=0)
    config_set(key="monitoring.disk_percent", value=0)

    evaluation = alerts_evaluate()

    assert {"system.memory", "system.disk"} <= set(evaluation.raised)
    assert webhook.events("system.memory") == ["raised"]
    assert "System resource limit: memory" in str(unresolved("system.memory").message)  # type: ignore[union-attr]

    # When the limits are back above the use, both clear
    config_set(key="monitoring.memory_percent", value=100)
    config_set(key="monitoring.disk_percent", value=100)
    evaluation = alerts_evaluate()
    assert {"system.memory", "system.disk"} <= set(evaluation.resolved)
    assert webhook.events("system.disk") == ["raised", "resolved"]
