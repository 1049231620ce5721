"""Writes for the trading app."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from marketdata.candle_input import CandleTimeError, parse_broker_time
from trading.models import BrokerTransaction

logger = logging.getLogger(__name__)


def broker_transactions_record(
    *, account_id: str, transactions: Iterable[Mapping[str, Any]]
) -> int:
    """Store broker transactions once each (keyed by the broker's id); return how many were new.

    A transaction without a readable id or time is logged with its content and skipped.
    """
    rows = []
    for transaction in transactions:
        try:
            broker_id = int(transaction["id"])
            time = parse_broker_time(transaction["time"])
        except (KeyError, TypeError, ValueError, CandleTimeError) as error:
            logger.warning(
                "event=broker_transaction_unreadable error=%r raw=%r", str(error), dict(transaction)
            )
            continue
        rows.append(
            BrokerTransaction(
                id=broker_id,
                account_id=account_id,
                type=str(transaction.get("type", "")),
                time=time,
                payload=dict(transaction),
            )
        )
    if not rows:
        return 0
    known = set(
        BrokerTransaction.objects.filter(id__in=[row.id for row in rows]).values_list(
            "id", flat=True
        )
    )
    BrokerTransaction.objects.bulk_create(rows, ignore_conflicts=True)
    return len({row.id for row in rows} - known)
