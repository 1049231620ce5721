"""Signals from the live analysis into trading (the ``qfh.hooks.signal_made`` hook)."""

from __future__ import annotations

from qfh.hooks import NewSignal, StoredSignal
from trading.models import TradingSignal
from trading.routing import execution_queue_for, signals_send_on_commit


def signal_store(new: NewSignal) -> StoredSignal:
    """Store ``new`` once per pair and minute (a rerun finds the stored row) and, while it is
    still ``new``, send it to its pair's execution queue after the commit."""
    signal, created = TradingSignal.objects.get_or_create(
        pair_id=new.pair.symbol,
        timeframe="M1",
        time=new.time,
        defaults={
            "direction": new.direction,
            "confidence": new.confidence,
            "price": new.price,
            "qfh_metrics": new.metrics,
            "pair_model": new.model,
        },
    )
    queue = execution_queue_for(new.pair)
    if signal.status == TradingSignal.Status.NEW:
        signals_send_on_commit([str(signal.id)], queue)
    return StoredSignal(str(signal.id), signal.direction, signal.confidence, created, queue)
