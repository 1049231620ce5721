"""Our records made equal to the broker's (DESIGN.md section 4, step 4; issue #6 item 5).

Run at start-up, after every stream reconnect and every few minutes (beat). In order:

1. transactions since the last one stored before any gap, applied once each
   (``trading.ledger``), so a fill missed while the stream was down is not skipped;
2. our ``pending`` orders older than a grace period, settled by ``@client_id`` at the broker:
   filled or cancelled as the broker says, or ``not_sent`` when the broker never saw them;
3. open trades: the broker's list against ours. A trade we lack is created, one we think open
   that the broker closed (a stop filled while we were away, a close by hand at the broker) is
   closed with the broker's realised P&L and financing, and figures that differ are corrected;
   a trade whose entry filled after a stop (kill switch, disable, reducing mode) is closed.
   Paper trades and orders (trading/paper_trades.py) were never at the broker: they are left
   alone;
4. claimed signals left without an order by a killed executor go back to ``new`` (no request can
   have left without its order row) or expire; unclaimed signals past their age expire, younger
   ones whose execution message was lost are sent again;
5. an account snapshot.

Every correction is logged and written to the AuditLog as ``reconciliation.difference``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from marketdata import oanda
from marketdata.broker_time import parse_broker_time
from marketdata.selectors import broker_now
from septrader.locks import advisory_lock
from septrader.selectors import config_values
from septrader.services import audit_record
from trading.execution import (
    account_snapshot_take,
    broker_client,
    late_fills_close,
    order_lookup,
    signal_settle,
)
from trading.ledger import (
    decimal_or_none,
    decimal_or_zero,
    demotion_check_on_commit,
    trade_open,
    transactions_apply,
)
from trading.models import Order, Trade, TradingSignal
from trading.routing import execution_queue_for, signals_send_on_commit
from trading.selectors import broker_transaction_resume_id

logger = logging.getLogger(__name__)

# An order younger than this may still be in flight (connect + read timeout of one request).
PENDING_GRACE_SECONDS = 30
RECONCILE_LOCK_KEY = 0x53455052


@dataclass
class ReconcileReport:
    transactions: int = 0
    orders_settled: int = 0
    trades_created: int = 0
    trades_closed: int = 0
    trades_corrected: int = 0
    signals_requeued: int = 0
    signals_expired: int = 0
    differences: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"transactions={self.transactions} orders_settled={self.orders_settled} "
            f"trades_created={self.trades_created} trades_closed={self.trades_closed} "
            f"trades_corrected={self.trades_corrected} signals_requeued={self.signals_requeued} "
            f"signals_expired={self.signals_expired} differences={len(self.differences)}"
        )


def _difference(report: ReconcileReport, target: str, details: dict[str, Any]) -> None:
    report.differences.append(target)
    logger.warning("event=reconciliation_difference target=%s details=%r", target, details)
    audit_record(
        actor="system:reconciliation",
        action="reconciliation.difference",
        target=target,
        details=details,
    )


def account_reconcile(
    *, client: oanda.OandaClient | None = None, now: datetime | None = None
) -> ReconcileReport | None:
    """One reconciliation pass; ``None`` when another process is reconciling right now."""
    with advisory_lock(RECONCILE_LOCK_KEY) as taken:
        if not taken:
            return None
        return _reconcile(client or broker_client(), now or timezone.now())


def _reconcile(client: oanda.OandaClient, now: datetime) -> ReconcileReport:
    report = ReconcileReport()
    account = client.account_id
    last = broker_transaction_resume_id(account)
    if last is not None:
        body = client.request(oanda.TransactionsSinceID(account, params={"id": last}))
        report.transactions = transactions_apply(
            account_id=account, transactions=body.get("transactions", [])
        )
    _settle_pending_orders(client, now, report)
    _match_open_trades(client, report)
    # A pending order settled above, or a fill the stream brought, may have landed after a stop.
    for trade_id in late_fills_close(client=client):
        report.trades_closed += 1
        _difference(report, f"trade {trade_id}", {"closed": "its entry filled after a stop"})
    _settle_signals(now, report)
    # Stamped with the broker's clock, as the snapshots taken at entries are: on a replayed
    # market (the demo) the wall clock would put them years after the trades they follow.
    account_snapshot_take(client, now=broker_now(now))
    logger.info("event=reconciled %s", report.summary())
    return report


def _settle_pending_orders(
    client: oanda.OandaClient, now: datetime, report: ReconcileReport
) -> None:
    cutoff = now - timedelta(seconds=PENDING_GRACE_SECONDS)
    stale = Order.objects.filter(
        account_id=client.account_id,
        status=Order.Status.PENDING,
        created_at__lt=cutoff,
        paper=False,
    ).select_related("signal")
    for order in stale:
        found = order_lookup(order, client=client)
        if found is None:
            continue
        if found is False:
            Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
                status=Order.Status.NOT_SENT,
                reason="the broker has no order with this client id: it was never sent",
            )
            found = Order.objects.get(pk=order.pk)
        report.orders_settled += 1
        _difference(
            report,
            f"order {order.client_id}",
            {"was": "pending", "now": found.status, "broker_trade_id": found.broker_trade_id},
        )
        if found.signal is not None and found.signal.status == TradingSignal.Status.CLAIMED:
            signal_settle(found.signal, found)


def _match_open_trades(client: oanda.OandaClient, report: ReconcileReport) -> None:
    account = client.account_id
    broker = {
        str(wire["id"]): wire
        for wire in client.request(oanda.OpenTrades(account)).get("trades", [])
    }
    # Paper trades are not the broker's: never looked up there, never closed from its list.
    ours = {
        trade.broker_trade_id: trade
        for trade in Trade.objects.filter(account_id=account, state=Trade.State.OPEN, paper=False)
    }
    for trade_id, wire in broker.items():
        trade = ours.get(trade_id)
        if trade is None:
            trade = trade_open(
                account_id=account,
                broker_trade_id=trade_id,
                pair=wire["instrument"],
                units=decimal_or_zero(wire.get("initialUnits")),
                price=decimal_or_zero(wire.get("price")),
                opened_at=parse_broker_time(wire["openTime"]),
                client_id=str((wire.get("clientExtensions") or {}).get("id", "")),
            )
            if trade.state == Trade.State.OPEN:
                report.trades_created += 1
                _difference(
                    report, f"trade {trade_id}", {"missing_here": True, "pair": wire["instrument"]}
                )
        _correct(trade, wire, report)
    for trade_id, trade in ours.items():
        if trade_id in broker:
            continue
        try:
            wire = client.request(oanda.TradeDetails(account, trade_id))["trade"]
        except oanda.OandaError as error:
            logger.warning("event=trade_lookup_failed trade=%s error=%r", trade_id, str(error))
            continue
        _correct(trade, wire, report)
        if trade.state == Trade.State.CLOSED:
            report.trades_closed += 1


def _correct(trade: Trade, wire: dict[str, Any], report: ReconcileReport) -> None:
    """Make our trade row say what the broker's trade record says."""
    state = str(wire.get("state", "OPEN"))
    wanted: dict[str, Any] = {
        "current_units": decimal_or_zero(wire.get("currentUnits")),
        "realized_pl": decimal_or_zero(wire.get("realizedPL")),
        "financing": decimal_or_zero(wire.get("financing")),
        "state": Trade.State.CLOSED if state == "CLOSED" else Trade.State.OPEN,
    }
    stop = (wire.get("stopLossOrder") or {}).get("price")
    take = (wire.get("takeProfitOrder") or {}).get("price")
    if state == "OPEN":
        if stop is not None:
            wanted["stop_loss_price"] = decimal_or_none(stop)
        if take is not None:
            wanted["take_profit_price"] = decimal_or_none(take)
    else:
        wanted["closed_at"] = (
            parse_broker_time(wire["closeTime"]) if wire.get("closeTime") else trade.closed_at
        )
        wanted["close_price"] = decimal_or_none(wire.get("averageClosePrice")) or trade.close_price
        wanted["unrealized_pl"] = Decimal(0)
    differs = {
        name: {"ours": str(getattr(trade, name)), "broker": str(value)}
        for name, value in wanted.items()
        if getattr(trade, name) != value
    }
    for name, value in wanted.items():
        setattr(trade, name, value)
    trade.unrealized_pl = (
        decimal_or_zero(wire.get("unrealizedPL")) if state == "OPEN" else Decimal(0)
    )
    trade.save()
    if "state" in differs and trade.state == Trade.State.CLOSED:
        demotion_check_on_commit(trade.pair_id)
    if differs:
        report.trades_corrected += 1
        _difference(report, f"trade {trade.broker_trade_id}", differs)


def _settle_signals(now: datetime, report: ReconcileReport) -> None:
    max_age = config_values("signals.")["signals.max_age_seconds"]
    cutoff = now - timedelta(seconds=PENDING_GRACE_SECONDS)
    # An executor killed after its order was settled but before it marked the signal.
    settled = TradingSignal.objects.filter(
        status=TradingSignal.Status.CLAIMED, updated_at__lt=cutoff, order__isnull=False
    ).exclude(order__status=Order.Status.PENDING)
    for signal in settled.select_related("order"):
        signal_settle(signal, signal.order)
    orphans = TradingSignal.objects.filter(
        status=TradingSignal.Status.CLAIMED, updated_at__lt=cutoff, order__isnull=True
    )
    for signal in orphans:
        age = (now - max(signal.time + timedelta(minutes=1), signal.created_at)).total_seconds()
        if age <= max_age:
            # No order row means no request left: running it again cannot duplicate anything.
            if TradingSignal.objects.filter(
                pk=signal.pk, status=TradingSignal.Status.CLAIMED, order__isnull=True
            ).update(
                status=TradingSignal.Status.NEW,
                status_reason="requeued by reconciliation",
                updated_at=now,
            ):
                signals_send_on_commit([str(signal.pk)], execution_queue_for(signal.pair))
                report.signals_requeued += 1
        else:
            TradingSignal.objects.filter(pk=signal.pk, status=TradingSignal.Status.CLAIMED).update(
                status=TradingSignal.Status.EXPIRED,
                status_reason="its executor stopped before sending an order, and it is now too old",
            )
            report.signals_expired += 1
    report.signals_expired += TradingSignal.objects.filter(
        status=TradingSignal.Status.NEW, created_at__lt=now - timedelta(seconds=max_age)
    ).update(status=TradingSignal.Status.EXPIRED, status_reason="not executed before it expired")
    # A signal still unclaimed after the grace period has lost its execution message: Redis was
    # down when the analysis sent it, or a worker that had taken it died. It is sent again (at
    # most once per grace period); a duplicate is harmless, the claim lets one delivery act.
    stranded = TradingSignal.objects.filter(
        status=TradingSignal.Status.NEW, created_at__lt=cutoff, updated_at__lt=cutoff
    ).select_related("pair", "pair__node")
    for signal in stranded:
        if TradingSignal.objects.filter(
            pk=signal.pk, status=TradingSignal.Status.NEW, updated_at__lt=cutoff
        ).update(updated_at=now, status_reason="sent again by reconciliation"):
            signals_send_on_commit([str(signal.pk)], execution_queue_for(signal.pair))
            report.signals_requeued += 1
