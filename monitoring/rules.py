"""Alert rules: each reads the system's state and says which of its conditions hold now.

The trading code never calls monitoring; the evaluation runs every rule on a schedule. A rule owns
the conditions named by its key (``key`` itself or ``key:<subject>``) and returns those that are
firing; any other open alert of the key is resolved. A rule that cannot tell (its source
unreadable) raises ``Unknown`` and leaves its alerts as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef

from marketdata.models import Candle, Pair
from monitoring.health import QUEUES, ComponentHealth, config_value, market_is_open
from monitoring.models import Severity
from qfh.models import CandleMetrics
from septrader.models import AuditLog
from trading.models import Order, Trade, TradingState


@dataclass(frozen=True)
class Firing:
    condition: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    now: datetime
    health: dict[str, ComponentHealth]


class Unknown(Exception):
    """The rule cannot tell whether its condition holds."""


Rule = Callable[[Context], list[Firing]]


def _component(context: Context, name: str) -> ComponentHealth | None:
    component = context.health.get(name)
    if component is not None and not component.known:
        raise Unknown(component.reason)
    return component


def _from_health(name: str, condition: str, severity: str, prefix: str) -> Rule:
    def rule(context: Context) -> list[Firing]:
        component = _component(context, name)
        if component is None:
            raise Unknown(f"{name} was not checked")
        if component.status == "ok":
            return []
        return [Firing(condition, severity, f"{prefix}: {component.reason}", component.details)]

    return rule


def workers_missing(context: Context) -> list[Firing]:

    firing = []
    for queue in QUEUES:
        component = _component(context, f"worker:{queue}")
        if component is None:
            raise Unknown("workers were not checked")
        if component.status != "ok":
            firing.append(
                Firing(
                    f"worker.missing:{queue}",
                    Severity.CRITICAL,
                    f"Worker missing on the {queue} queue: {component.reason}",
                    {"queue": queue, **component.details},
                )
            )
    return firing


def prices_stale(context: Context) -> list[Firing]:
    firing = []
    for name, component in context.health.items():
        if not name.startswith("prices:"):
            continue
        if not component.known:
            raise Unknown(component.reason)
        if component.status != "ok":
            pair = name.split(":", 1)[1]
            firing.append(
                Firing(
                    f"prices.stale:{pair}",
                    Severity.WARNING,
                    f"Stale prices on an open market: {component.reason}",
                    {"pair": pair},
                )
            )
    return firing


def trading_stopped(context: Context) -> list[Firing]:
    """Trading stopped: reducing (risk trips: daily loss limit, drawdown) or halted."""

    state = TradingState.objects.filter(pk=1).first()
    if state is None or state.mode == TradingState.Mode.TRADING:
        return []
    automatic = not state.changed_by or state.changed_by.startswith("system:")
    trip = (
        AuditLog.objects.filter(action="risk.trip")
        .values("time", "actor", "target", "details")
        .first()
    )
    details: dict[str, Any] = {
        "mode": state.mode,
        "reason": state.reason,
        "changed_by": state.changed_by,
        "changed_at": state.changed_at.isoformat() if state.changed_at else None,
    }
    if trip is not None:
        details["last_risk_trip"] = {**trip, "time": trip["time"].isoformat()}
    how = "unexpectedly (risk trip)" if automatic else f"by {state.changed_by}"
    severity = Severity.CRITICAL if automatic or state.mode == "halted" else Severity.WARNING
    return [
        Firing(
            "trading.stopped",
            severity,
            f"Trading stopped {how}: mode {state.mode}, {state.reason or 'no reason given'}",
            details,
        )
    ]


def pairs_demoted(context: Context) -> list[Firing]:
    """A pair demoted to reducing-only because its live results fell far below its model
    (trading/demotion.py); open until the operator enables the pair again."""

    firing = []
    for symbol in Pair.objects.filter(state=Pair.State.REDUCING).values_list("symbol", flat=True):
        demotion = (
            AuditLog.objects.filter(action="pair.demote", target=symbol)
            .values("time", "actor", "details")
            .first()
        )
        if demotion is None:
            continue
        details = demotion["details"] or {}
        firing.append(
            Firing(
                f"pair.demoted:{symbol}",
                Severity.CRITICAL,
                f"{symbol} demoted to reducing-only (no new entries; open trades keep their "
                f"stops): {details.get('reason', 'see the audit log')}",
                {
                    "pair": symbol,
                    "demoted_at": demotion["time"].isoformat(),
                    "actor": demotion["actor"],
                    "pair_model": details.get("pair_model"),
                    "figures": details.get("figures", {}),
                },
            )
        )
    return firing


def market_closed(context: Context) -> list[Firing]:

    if market_is_open(context.now):
        return []
    reason = (
        TradingState.objects.filter(pk=1).values_list("market_reason", flat=True).first()
        or "outside Sunday 17:00 to Friday 17:00 New York"
    )
    return [Firing("market.closed", Severity.INFO, f"Market-hours pause: {reason}")]


def _recent_audit(
    context: Context, action: str, window_key: str
) -> tuple[timedelta, list[dict[str, Any]]]:
    """The newest 20 AuditLog rows of ``action`` within the window a setting names (minutes)."""

    window = timedelta(minutes=int(config_value(window_key)))
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in AuditLog.objects.filter(action=action, time__gte=context.now - window).values(
            "time", "actor", "target", "details"
        )[:20]
    ]
    return window, rows


def reconciliation_differences(context: Context) -> list[Firing]:
    window, rows = _recent_audit(
        context, "reconciliation.difference", "monitoring.reconciliation_window_minutes"
    )
    if not rows:
        return []
    targets = ", ".join(sorted({row["target"] for row in rows if row["target"]}))
    return [
        Firing(
            "reconciliation.difference",
            Severity.WARNING,
            f"Reconciliation found {len(rows)} difference(s) with the broker in the last "
            f"{window.total_seconds() / 60:.0f} min: {targets or 'see details'}",
            {"differences": [{**row, "time": row["time"].isoformat()} for row in rows]},
        )
    ]


def late_fills_closed(context: Context) -> list[Firing]:
    """An entry filled after a stop (kill switch, disable, reducing mode) and was closed at once:
    the stop held, but the operator should know a trade existed for a moment after it."""
    window, rows = _recent_audit(
        context, "trade.closed_after_stop", "monitoring.reconciliation_window_minutes"
    )
    if not rows:
        return []
    return [
        Firing(
            "trades.closed_after_stop",
            Severity.CRITICAL,
            f"{len(rows)} trade(s) filled after entries were stopped and were closed at once in "
            f"the last {window.total_seconds() / 60:.0f} min: "
            + ", ".join(sorted({str(row["target"]) for row in rows})),
            {"trades": [{**row, "time": row["time"].isoformat()} for row in rows]},
        )
    ]


def margin_closeouts(context: Context) -> list[Firing]:
    """Trades the broker closed out because the account ran out of margin (the ledger audits
    each as ``trade.margin_closeout``): no rule of ours made those closes."""
    window, rows = _recent_audit(
        context, "trade.margin_closeout", "monitoring.margin_closeout_window_minutes"
    )
    if not rows:
        return []
    loss = sum((Decimal(str(row["details"].get("realized_pl") or 0)) for row in rows), Decimal(0))
    return [
        Firing(
            "trades.margin_closeout",
            Severity.CRITICAL,
            f"The broker closed out {len(rows)} trade(s) for lack of margin in the last "
            f"{window.total_seconds() / 3600:g} h (realised {loss} in the account currency): "
            + ", ".join(sorted({str(row["target"]) for row in rows})),
            {"trades": [{**row, "time": row["time"].isoformat()} for row in rows]},
        )
    ]


def sync_bundles_rejected(context: Context) -> list[Firing]:
    """Files of the sync inbox that a pull skipped (sync/services.py audits each skip)."""
    window, rows = _recent_audit(
        context, "sync.rejected", "monitoring.sync_rejected_window_minutes"
    )
    if not rows:
        return []
    files = sorted({row["target"] for row in rows})
    return [
        Firing(
            "sync.bundle_rejected",
            Severity.WARNING,
            f"Sync skipped {len(files)} bad file(s) of the inbox in the last "
            f"{window.total_seconds() / 60:.0f} min: {', '.join(files)}; the other bundles "
            "were imported",
            {
                "rejections": [
                    {
                        "time": row["time"].isoformat(),
                        "file": row["target"],
                        "reason": row["details"].get("reason", ""),
                    }
                    for row in rows
                ]
            },
        )
    ]


def analysis_missed(context: Context) -> list[Firing]:
    """A closed M1 candle of an enabled pair with no analysis N seconds after its close."""

    delay = timedelta(seconds=int(config_value("monitoring.missed_analysis_seconds")))
    pairs = list(Pair.objects.filter(enabled=True).values_list("symbol", flat=True))
    if not pairs:
        return []
    # Only the last half hour: older gaps are the backfill's business, not a live failure.
    latest_due = context.now - timedelta(minutes=1) - delay
    missing = (
        Candle.objects.filter(
            pair_id__in=pairs,
            timeframe="M1",
            complete=True,
            time__gte=context.now - timedelta(minutes=30),
            time__lte=latest_due,
        )
        .annotate(
            analysed=Exists(
                CandleMetrics.objects.filter(
                    pair_id=OuterRef("pair_id"), timeframe="M1", time=OuterRef("time")
                )
            )
        )
        .filter(analysed=False)
        .values_list("pair_id", "time")
    )
    by_pair: dict[str, list[datetime]] = {}
    for pair, time in missing:
        by_pair.setdefault(str(pair), []).append(time)
    return [
        Firing(
            f"analysis.missed:{pair}",
            Severity.WARNING,
            f"Missed analysis: {len(times)} closed {pair} candle(s) without QFH metrics more "
            f"than {delay.total_seconds():.0f} s after the close, newest {max(times):%H:%M} UTC",
            {"pair": pair, "candles": [time.isoformat() for time in sorted(times)[-10:]]},
        )
        for pair, times in sorted(by_pair.items())
    ]


def order_burst(context: Context) -> list[Firing]:

    limit = int(config_value("monitoring.order_burst_count"))
    # Orders sent to the broker: paper orders never leave.
    count = Order.objects.filter(
        created_at__gte=context.now - timedelta(seconds=60), paper=False
    ).count()
    if count <= limit:
        return []
    return [
        Firing(
            "orders.burst",
            Severity.CRITICAL,
            f"Unusual trading: {count} orders in the last 60 s (limit {limit})",
            {"orders_last_minute": count, "limit": limit},
        )
    ]


def loss_streak(context: Context) -> list[Firing]:

    length = int(config_value("monitoring.loss_streak_count"))
    closed = list(
        Trade.objects.filter(state=Trade.State.CLOSED, closed_at__isnull=False, paper=False)
        .order_by("-closed_at")
        .values("broker_trade_id", "pair_id", "realized_pl", "closed_at")[:length]
    )
    if len(closed) < length or any(trade["realized_pl"] >= 0 for trade in closed):
        return []
    newest: datetime | None = closed[0]["closed_at"]
    if newest is None or context.now - newest > timedelta(hours=24):
        return []
    total = sum((trade["realized_pl"] for trade in closed), Decimal(0))
    return [
        Firing(
            "trades.loss_streak",
            Severity.WARNING,
            f"Unusual trading: the last {length} closed trades all lost ({total} in total)",
            {
                "trades": [
                    {
                        "broker_trade_id": trade["broker_trade_id"],
                        "pair": trade["pair_id"],
                        "realized_pl": str(trade["realized_pl"]),
                    }
                    for trade in closed
                ]
            },
        )
    ]


def fill_slippage(context: Context) -> list[Firing]:

    limit = Decimal(str(config_value("monitoring.fill_slippage_pips")))
    orders = Order.objects.filter(
        status=Order.Status.FILLED,
        paper=False,
        filled_at__gte=context.now - timedelta(hours=1),
        fill_price__isnull=False,
        requested_price__isnull=False,
    ).select_related("pair")
    far = []
    for order in orders:
        assert order.fill_price is not None and order.requested_price is not None
        pips = abs(order.fill_price - order.requested_price) / order.pair.pip_size
        if pips > limit:
            far.append({"client_id": order.client_id, "pair": order.pair_id, "pips": str(pips)})
    if not far:
        return []
    worst = max(far, key=lambda row: Decimal(row["pips"]))
    return [
        Firing(
            "orders.fill_slippage",
            Severity.WARNING,
            f"Unusual trading: {len(far)} fill(s) in the last hour more than {limit} pips from "
            f"the requested price, worst {worst['pips']} pips ({worst['pair']})",
            {"orders": far[:20]},
        )
    ]


# Each rule with the condition key it owns (``key`` or ``key:<subject>``).
RULES: list[tuple[str, Rule]] = [
    (
        "database.unreachable",
        _from_health("database", "database.unreachable", Severity.CRITICAL, "Database errors"),
    ),
    (
        "cache.unreachable",
        _from_health("cache", "cache.unreachable", Severity.CRITICAL, "Cache database errors"),
    ),
    (
        "broker.unreachable",
        _from_health("broker", "broker.unreachable", Severity.CRITICAL, "Celery broker errors"),
    ),
    ("worker.missing", workers_missing),
    ("beat.missing", _from_health("beat", "beat.missing", Severity.CRITICAL, "Beat missing")),
    (
        "stream.down",
        _from_health("streamer", "stream.down", Severity.CRITICAL, "Streamer not running"),
    ),
    (
        "oanda.unreachable",
        _from_health("oanda", "oanda.unreachable", Severity.CRITICAL, "Connection to OANDA lost"),
    ),
    (
        "oanda.price_stream_silent",
        _from_health(
            "price_stream",
            "oanda.price_stream_silent",
            Severity.CRITICAL,
            "Connection to OANDA lost",
        ),
    ),
    (
        "oanda.transaction_stream_silent",
        _from_health(
            "transaction_stream",
            "oanda.transaction_stream_silent",
            Severity.CRITICAL,
            "Connection to OANDA lost",
        ),
    ),
    ("prices.stale", prices_stale),
    ("system.disk", _from_health("disk", "system.disk", Severity.WARNING, "System resource limit")),
    (
        "system.memory",
        _from_health("memory", "system.memory", Severity.WARNING, "System resource limit"),
    ),
    ("trading.stopped", trading_stopped),
    ("pair.demoted", pairs_demoted),
    ("market.closed", market_closed),
    ("reconciliation.difference", reconciliation_differences),
    ("trades.closed_after_stop", late_fills_closed),
    ("trades.margin_closeout", margin_closeouts),
    ("sync.bundle_rejected", sync_bundles_rejected),
    ("analysis.missed", analysis_missed),
    ("orders.burst", order_burst),
    ("trades.loss_streak", loss_streak),
    ("orders.fill_slippage", fill_slippage),
]


def owned_by(key: str, condition: str) -> bool:
    return condition == key or condition.startswith(f"{key}:")
