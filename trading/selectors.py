"""Reads of the trading app."""

from __future__ import annotations

from django.db.models import Max

from trading.models import BrokerTransaction


def broker_transaction_last_id(account_id: str) -> int | None:
    """The newest broker transaction id stored for the account: where a catch-up starts."""
    newest: int | None = BrokerTransaction.objects.filter(account_id=account_id).aggregate(
        newest=Max("id")
    )["newest"]
    return newest
