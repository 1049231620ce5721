from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils.dateparse import parse_datetime

from qfh.services import DEFAULT_WINDOW_BITS, candle_metrics_compute


@shared_task(name="qfh.analyze_candles_task", acks_late=True)
def analyze_candles_task(
    pairs: list[str],
    timeframes: list[str],
    start: str | None = None,
    end: str | None = None,
    window_bits: int = DEFAULT_WINDOW_BITS,
) -> list[dict[str, Any]]:
    """Compute and store QFH metrics for stored candles; running it twice changes nothing."""
    first = parse_datetime(start) if start else None
    last = parse_datetime(end) if end else None
    runs = []
    for pair in pairs:
        for timeframe in timeframes:
            run = candle_metrics_compute(
                pair=pair, timeframe=timeframe, start=first, end=last, window_bits=window_bits
            )
            runs.append({"pair": pair, "timeframe": timeframe, "written": run.written})
    return runs
