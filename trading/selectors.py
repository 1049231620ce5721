"""Reads of the trading app."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max

from trading.models import AccountSnapshot, BrokerTransaction


def broker_transaction_last_id(account_id: str) -> int | None:
    """The newest broker transaction id stored for the account: where a catch-up starts."""
    newest: int | None = BrokerTransaction.objects.filter(account_id=account_id).aggregate(
        newest=Max("id")
    )["newest"]
    return newest


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
