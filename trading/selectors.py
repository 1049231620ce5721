"""Reads of the trading app."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, Max, Min, OuterRef, QuerySet

from marketdata.models import Pair
from septrader.selectors import rows_narrowed
from trading.models import (
    AccountSnapshot,
    BrokerTransaction,
    Order,
    Trade,
    TradingSignal,
    TradingState,
)

# How many of the newest transaction ids are searched for a gap (an anti-join on the primary key:
# a few milliseconds). A transaction missed longer ago than this is reconciliation's business.
GAP_SEARCH_WINDOW = 10_000


def broker_transaction_last_id(account_id: str) -> int | None:
    """The newest broker transaction id stored for the account."""
    newest: int | None = BrokerTransaction.objects.filter(account_id=account_id).aggregate(
        newest=Max("id")
    )["newest"]
    return newest


def broker_transaction_resume_id(account_id: str) -> int | None:
    """Where a catch-up starts: the last id before the first gap among the newest stored ids,
    or the newest id when there is no gap (None when nothing is stored).

    The broker numbers an account's transactions without gaps, but they reach us by several
    paths (an order's answer, the transaction stream, reconciliation): an order's answer can be
    stored while the stream that carries an earlier stop-loss fill is silent. Starting from the
    newest id would skip that fill for good.
    """
    newest = broker_transaction_last_id(account_id)
    if newest is None:
        return None
    stored = BrokerTransaction.objects.filter(account_id=account_id)
    before_gap: int = (
        stored.filter(id__gt=newest - GAP_SEARCH_WINDOW)
        .annotate(followed=Exists(stored.filter(id=OuterRef("id") + 1)))
        .filter(followed=False)
        .aggregate(first=Min("id"))["first"]
    )
    return before_gap


def account_snapshot_latest(account_id: str | None = None) -> AccountSnapshot | None:
    snapshots = AccountSnapshot.objects.all()
    if account_id is not None:
        snapshots = snapshots.filter(account_id=account_id)
    return snapshots.order_by("-time").first()


def account_snapshot_opening(
    day_start: datetime, account_id: str | None = None
) -> AccountSnapshot | None:
    """The account as the trading day began: the last snapshot at or before ``day_start``, or,
    when none is that old (a new installation), the first one after it. The base of the daily
    loss limit and of the daily P&L figures."""
    snapshots = AccountSnapshot.objects.all()
    if account_id is not None:
        snapshots = snapshots.filter(account_id=account_id)
    return (
        snapshots.filter(time__lte=day_start).order_by("-time").first()
        or snapshots.filter(time__gte=day_start).order_by("time").first()
    )


def entries_stopped(pair: str) -> str | None:
    """Why no entry on ``pair`` may be sent right now (trading mode, pair state), or None.

    Read fresh from the database each time: the execution path asks it again immediately before
    an order leaves, and the ledger when an entry's fill lands, because a kill switch or a
    disable may have been committed during the broker calls in between.
    """
    state = TradingState.objects.filter(pk=1).values_list("mode", "reason").first()
    if state is not None and state[0] != TradingState.Mode.TRADING:
        return f"trading is {state[0]} ({state[1] or 'no reason given'})"
    row = Pair.objects.filter(symbol=pair).values_list("enabled", "state").first()
    if row is None:
        return f"{pair} is not a known pair"
    enabled, pair_state = row
    if not enabled or pair_state != Pair.State.TRADING:
        return f"{pair} is not trading (state {pair_state}, enabled={enabled})"
    return None


def signals_listed(
    *,
    pair: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[TradingSignal]:
    """Signals, newest first: of one pair, status and direction when given, timed in
    [start, end)."""
    rows = TradingSignal.objects.order_by("-time")
    return rows_narrowed(
        rows, start=start, end=end, pair_id=pair, status=status, direction=direction
    )


def orders_listed(
    *,
    pair: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Order]:
    """Orders, newest first: of one pair, status and kind when given, created in [start, end)."""
    rows = Order.objects.order_by("-created_at", "-id")
    return rows_narrowed(
        rows, time_field="created_at", start=start, end=end, pair_id=pair, status=status, kind=kind
    )


def trades_listed(
    *,
    pair: str | None = None,
    state: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Trade]:
    """Trades, newest first: of one pair and state (OPEN, CLOSED) when given, opened in
    [start, end)."""
    rows = Trade.objects.order_by("-opened_at", "-id")
    return rows_narrowed(
        rows, time_field="opened_at", start=start, end=end, pair_id=pair, state=state
    )
