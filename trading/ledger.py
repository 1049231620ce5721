"""Broker transactions → our orders and trades, each transaction applied exactly once.

Every path that learns of a broker transaction (the answer to an order we sent, the transaction
stream, the catch-up after a reconnect, reconciliation) hands it to ``transactions_apply``. A
transaction is inserted into ``trading_broker_transactions`` with ``ON CONFLICT DO NOTHING
RETURNING id`` and applied in the same database transaction only when that insert created the
row, so the same transaction arriving twice (stream and catch-up, or two processes) is counted
once, and a crash between storing and applying leaves neither.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from celery import current_app
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from marketdata.broker_time import CandleTimeError, parse_broker_time
from marketdata.models import PAIR_SYMBOL_PATTERN, Pair
from septrader.services import audit_record
from trading.models import Order, Trade
from trading.selectors import entries_stopped

logger = logging.getLogger(__name__)

# The broker transaction types that say an order of ours was refused outright.
REJECT_TYPES = {"MARKET_ORDER_REJECT", "LIMIT_ORDER_REJECT", "STOP_ORDER_REJECT"}
# A trade's client id is its opening order's client id with this suffix.
TRADE_SUFFIX = "-t"
# The fill reason of a close the broker made because the account ran out of margin.
MARGIN_CLOSEOUT_REASON = "MARKET_ORDER_MARGIN_CLOSEOUT"
# What a malformed transaction (a field missing, or of the wrong type or size) raises while it is
# read or applied. Such a transaction is logged and skipped, in its own savepoint, so it leaves no
# trace and the rest of its batch is still applied. IntegrityError: a fill that names an order or
# trade already taken by another one.
_UNREADABLE = (
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    CandleTimeError,
    DataError,
    IntegrityError,
)
_BIGINT = 2**63
# Closes the trades of entries that filled after entries were stopped (trading/tasks.py).
LATE_FILLS_CLOSE_TASK = "trading.close_late_fills_task"
# Checks whether a pair whose trade closed is to be demoted (trading/tasks.py, services.py).
DEMOTION_CHECK_TASK = "trading.check_pair_demotion_task"


def decimal_or_zero(value: Any) -> Decimal:
    return decimal_or_none(value) or Decimal(0)


def decimal_or_none(value: Any) -> Decimal | None:
    """The broker's number (text) as a Decimal; None when missing, not a number or not finite."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _price_or_none(value: Any) -> Decimal | None:
    price = decimal_or_none(value)
    return price if price is not None and price > 0 else None


def _insert(
    account_id: str, transaction_id: int, kind: str, time: datetime, raw: dict[str, Any]
) -> bool:
    """Store the transaction; True when this call stored it (it was not known before)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO trading_broker_transactions "
            "(id, account_id, type, time, payload, received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            [
                transaction_id,
                account_id,
                kind,
                time,
                json.dumps(raw, allow_nan=False),
                timezone.now(),
            ],
        )
        return cursor.fetchone() is not None


def transactions_apply(*, account_id: str, transactions: Iterable[Mapping[str, Any]]) -> int:
    """Store and apply broker transactions in id order; return how many were new."""
    readable = []
    for raw in transactions:
        try:
            transaction_id = int(raw["id"])
            time = parse_broker_time(raw["time"])
            if not 0 < transaction_id < _BIGINT:
                raise ValueError(f"id {transaction_id} is out of range")
            readable.append((transaction_id, time, dict(raw)))
        except _UNREADABLE as error:
            logger.warning("event=broker_transaction_unreadable error=%r raw=%r", str(error), raw)
    applied = 0
    # One database transaction for the batch (an order's answer carries three to five), in id
    # order, so a fill is applied before the stop-loss order that refers to its trade.
    with transaction.atomic():
        for transaction_id, time, raw in sorted(readable, key=lambda item: item[0]):
            try:
                with transaction.atomic():
                    if not _insert(account_id, transaction_id, str(raw.get("type", "")), time, raw):
                        continue
                    _apply(account_id, raw, time)
            except _UNREADABLE as error:
                logger.warning(
                    "event=broker_transaction_unreadable id=%s error=%r raw=%r",
                    transaction_id,
                    str(error),
                    raw,
                )
                continue
            applied += 1
    return applied


def _apply(account_id: str, raw: dict[str, Any], time: datetime) -> None:
    kind = raw.get("type", "")
    if not isinstance(kind, str):
        raise TypeError(f"type {kind!r} is not text")
    if kind == "MARKET_ORDER":
        _on_order_created(raw)
    elif kind == "ORDER_FILL":
        _on_fill(account_id, raw, time)
    elif kind == "ORDER_CANCEL":
        _on_order_cancel(raw)
    elif kind in REJECT_TYPES:
        _on_order_reject(raw)
    elif kind == "DAILY_FINANCING":
        _on_financing(account_id, raw)
    elif kind in ("STOP_LOSS_ORDER", "TAKE_PROFIT_ORDER"):
        _on_dependent_order(account_id, raw)


def _our_order(raw: Mapping[str, Any]) -> Order | None:
    # A paper order never went to the broker, so no transaction of the broker's is about one.
    orders = Order.objects.filter(paper=False)
    client_id = raw.get("clientOrderID") or (raw.get("clientExtensions") or {}).get("id")
    if client_id:
        order = orders.filter(client_id=client_id).first()
        if order is not None:
            return order
    order_id = raw.get("orderID") or raw.get("id")
    if order_id:
        return orders.filter(broker_order_id=str(order_id)).first()
    return None


def _on_order_created(raw: dict[str, Any]) -> None:
    client_id = (raw.get("clientExtensions") or {}).get("id")
    if client_id:
        Order.objects.filter(client_id=client_id, broker_order_id="").update(
            broker_order_id=str(raw["id"])
        )


def _on_order_cancel(raw: dict[str, Any]) -> None:
    order = _our_order(raw)
    if order is None or order.status == Order.Status.FILLED:
        return
    order.status = Order.Status.CANCELLED
    order.reason = str(raw.get("reason", ""))[:500]
    order.save(update_fields=["status", "reason", "updated_at"])


def _on_order_reject(raw: dict[str, Any]) -> None:
    order = _our_order(raw)
    if order is None:
        return
    order.status = Order.Status.REJECTED
    order.reason = str(raw.get("rejectReason", raw.get("reason", "")))[:500]
    order.save(update_fields=["status", "reason", "updated_at"])


def _on_fill(account_id: str, raw: dict[str, Any], time: datetime) -> None:
    order = _our_order(raw)
    price = _price_or_none(raw.get("price"))
    opened = raw.get("tradeOpened")
    # Read the whole new trade before changing anything: a fill we cannot read is skipped.
    new_trade = _trade_opened(raw, opened, price) if opened else None
    if order is not None and order.status != Order.Status.FILLED:
        order.status = Order.Status.FILLED
        order.fill_price = price
        order.filled_at = time
        order.broker_order_id = order.broker_order_id or str(raw.get("orderID", ""))
        if new_trade is not None:
            order.broker_trade_id = new_trade[0]
            _late_fill_mark(order)
        order.save()
    if new_trade is not None:
        trade_id, instrument, units, opened_price = new_trade
        trade_open(
            account_id=account_id,
            broker_trade_id=trade_id,
            pair=instrument,
            units=units,
            price=opened_price,
            opened_at=time,
            client_id=str(((opened or {}).get("clientExtensions") or {}).get("id", "")),
            order=order if order is not None and order.kind == Order.Kind.ENTRY else None,
        )
    reason = str(raw.get("reason", ""))
    if reason == MARGIN_CLOSEOUT_REASON:
        # The broker closed positions because margin ran out: the trades record it as their
        # close reason; the line says so loudly because no rule of ours made that close.
        logger.error(
            "event=margin_closeout pair=%s units=%s price=%s pl=%s",
            raw.get("instrument"),
            raw.get("units"),
            raw.get("price"),
            raw.get("pl"),
        )
    for closed in raw.get("tradesClosed") or []:
        _reduce(account_id, closed, price, time, reason, closes=True)
    if raw.get("tradeReduced"):
        _reduce(account_id, raw["tradeReduced"], price, time, reason, closes=False)


def _late_fill_mark(order: Order) -> None:
    """An entry of ours that fills after entries were stopped is marked for closing at once.

    The execution path closes its own fill right after the answer; a fill that reaches us later
    (an answer lost to a timeout, settled by the stream or reconciliation) is closed by the task
    enqueued here, and reconciliation closes any that task missed.
    """
    if order.kind != Order.Kind.ENTRY or order.signal_id is None:
        return
    stopped = entries_stopped(order.pair_id)
    if stopped is None:
        return
    order.late_fill_reason = f"filled after entries were stopped: {stopped}"[:300]
    logger.warning(
        "event=late_fill pair=%s client_id=%s reason=%r",
        order.pair_id,
        order.client_id,
        order.late_fill_reason,
    )
    transaction.on_commit(_late_fills_close_enqueue)


def _late_fills_close_enqueue() -> None:
    try:
        current_app.send_task(LATE_FILLS_CLOSE_TASK)
    except Exception as error:  # reconciliation closes it on its next pass
        logger.warning("event=late_fill_enqueue_failed error=%r", str(error))


def demotion_check_on_commit(pair: str) -> None:
    """Once the close of a trade of ``pair`` is committed, check whether the pair's live record
    now demotes it (trading/demotion.py; by task name, the check lives in services)."""
    transaction.on_commit(partial(_demotion_check_enqueue, pair))


def _demotion_check_enqueue(pair: str) -> None:
    try:
        current_app.send_task(DEMOTION_CHECK_TASK, args=[pair])
    except Exception as error:  # the beat's check_demotions_task runs it within minutes
        logger.warning("event=demotion_check_enqueue_failed pair=%s error=%r", pair, str(error))


def _trade_opened(
    raw: Mapping[str, Any], opened: Any, fill_price: Decimal | None
) -> tuple[str, str, Decimal, Decimal]:
    """(trade id, pair, units, price) of a fill's ``tradeOpened``; ValueError naming the field."""
    trade_id = opened["tradeID"]
    units = decimal_or_none(opened.get("units"))
    price = _price_or_none(opened.get("price")) or fill_price
    instrument = raw.get("instrument")
    if not trade_id or isinstance(trade_id, dict | list):
        raise ValueError(f"tradeOpened.tradeID {trade_id!r} is not an id")
    if not units or price is None:
        raise ValueError(f"tradeOpened {opened!r} has no units or no price")
    if not isinstance(instrument, str) or not re.match(PAIR_SYMBOL_PATTERN, instrument):
        raise ValueError(f"instrument {instrument!r} is not a pair like EUR_USD")
    return str(trade_id), instrument, units, price


def trade_open(
    *,
    account_id: str,
    broker_trade_id: str,
    pair: str,
    units: Decimal,
    price: Decimal,
    opened_at: datetime,
    client_id: str = "",
    order: Order | None = None,
    stop_loss_price: Decimal | None = None,
    take_profit_price: Decimal | None = None,
) -> Trade:
    """Our row for a broker trade, created once (keyed by the broker's trade id)."""
    existing = Trade.objects.filter(account_id=account_id, broker_trade_id=broker_trade_id).first()
    if existing is not None:
        return existing
    # A trade on an instrument we do not list yet (opened by hand at the broker) adds the pair.
    Pair.objects.get_or_create(symbol=pair)
    if order is None and client_id.endswith(TRADE_SUFFIX):
        order = Order.objects.filter(
            client_id=client_id.removesuffix(TRADE_SUFFIX), kind=Order.Kind.ENTRY
        ).first()
    trade, created = Trade.objects.get_or_create(
        account_id=account_id,
        broker_trade_id=broker_trade_id,
        defaults={
            "pair_id": pair,
            "initial_units": units,
            "current_units": units,
            "open_price": price,
            "opened_at": opened_at,
            "client_id": client_id,
            "order": order,
            "stop_loss_price": stop_loss_price
            if stop_loss_price is not None
            else (order.stop_loss_price if order else None),
            "take_profit_price": take_profit_price
            if take_profit_price is not None
            else (order.take_profit_price if order else None),
        },
    )
    if created:
        logger.info(
            "event=trade_opened pair=%s trade=%s units=%s price=%s client_id=%s",
            pair,
            broker_trade_id,
            units,
            price,
            client_id,
        )
    return trade


def _reduce(
    account_id: str,
    closed: Mapping[str, Any],
    price: Decimal | None,
    time: datetime,
    reason: str,
    *,
    closes: bool,
) -> None:
    trade = (
        Trade.objects.select_for_update()
        .filter(account_id=account_id, broker_trade_id=str(closed.get("tradeID")))
        .first()
    )
    if trade is None:
        # A trade opened before we kept records; reconciliation creates it from the broker.
        logger.warning("event=fill_for_unknown_trade trade=%s", closed.get("tradeID"))
        return
    if trade.state == Trade.State.CLOSED:
        # Reconciliation already closed it from the broker's record of the trade, whose figures
        # include this fill: adding it again would count its P&L twice.
        logger.info(
            "event=fill_for_closed_trade pair=%s trade=%s realized_pl=%s reason=%s",
            trade.pair_id,
            trade.broker_trade_id,
            closed.get("realizedPL"),
            reason,
        )
        return
    units = decimal_or_zero(closed.get("units"))
    trade.realized_pl += decimal_or_zero(closed.get("realizedPL"))
    trade.financing += decimal_or_zero(closed.get("financing"))
    trade.current_units += units
    trade.close_reason = reason
    if closes or trade.current_units == 0:
        trade.current_units = Decimal(0)
        trade.state = Trade.State.CLOSED
        trade.close_price = _price_or_none(closed.get("price")) or price
        trade.closed_at = time
        trade.unrealized_pl = Decimal(0)
        demotion_check_on_commit(trade.pair_id)
    trade.save()
    if reason == MARGIN_CLOSEOUT_REASON:
        # The broker closed it because margin ran out, not a rule of ours: audited once per fill
        # (a fill is applied once) and alerted from the audit row (``trades.margin_closeout``).
        audit_record(
            actor="system:broker",
            action="trade.margin_closeout",
            target=f"{trade.pair_id} trade {trade.broker_trade_id}",
            details={
                "units": str(units),
                "price": str(closed.get("price") or price or ""),
                "realized_pl": str(decimal_or_zero(closed.get("realizedPL"))),
                "financing": str(decimal_or_zero(closed.get("financing"))),
                "state": trade.state,
                "time": time.isoformat(),
            },
        )
    logger.info(
        "event=trade_reduced pair=%s trade=%s units=%s realized_pl=%s reason=%s state=%s",
        trade.pair_id,
        trade.broker_trade_id,
        units,
        closed.get("realizedPL"),
        reason,
        trade.state,
    )


def _on_financing(account_id: str, raw: dict[str, Any]) -> None:
    for position in raw.get("positionFinancings") or []:
        for item in position.get("openTradeFinancings") or []:
            trade = (
                Trade.objects.select_for_update()
                .filter(account_id=account_id, broker_trade_id=str(item.get("tradeID")))
                .first()
            )
            if trade is not None:
                trade.financing += decimal_or_zero(item.get("financing"))
                trade.save(update_fields=["financing", "updated_at"])


def _on_dependent_order(account_id: str, raw: dict[str, Any]) -> None:
    field = "stop_loss_price" if raw.get("type") == "STOP_LOSS_ORDER" else "take_profit_price"
    price = _price_or_none(raw.get("price"))
    trade_id = raw.get("tradeID")
    if trade_id and price is not None:
        Trade.objects.filter(account_id=account_id, broker_trade_id=str(trade_id)).update(
            **{field: price}
        )


def response_transactions_apply(account_id: str, response: dict[str, Any]) -> None:
    """Keep the transactions a broker answer carries (``orderFillTransaction`` and the like)."""
    transactions = [
        value
        for key, value in response.items()
        if key.endswith("Transaction") and isinstance(value, dict) and "id" in value
    ]
    transactions_apply(account_id=account_id, transactions=transactions)
