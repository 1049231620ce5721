from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils.dateparse import parse_datetime

from marketdata.oanda import OandaClient
from marketdata.services import candles_backfill


@shared_task(name="marketdata.backfill_candles_task", acks_late=True)
def backfill_candles_task(
    pairs: list[str], timeframe: str = "M1", start: str | None = None, end: str | None = None
) -> list[str]:
    """Backfill candles for pairs (resuming after the newest stored candle); safe to repeat."""
    client = OandaClient()
    first = parse_datetime(start) if start else None
    last = parse_datetime(end) if end else None
    summaries: list[str] = []
    for pair in pairs:
        result: Any = candles_backfill(
            client=client, pair=pair, timeframe=timeframe, start=first, end=last
        )
        summaries.append(result.summary())
    return summaries
