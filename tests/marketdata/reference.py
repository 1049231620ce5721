"""A plain-Python aggregation of M1 candles, the reference the database's aggregates must equal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from marketdata.broker_time import parse_broker_time


def aggregate(minutes: list[dict[str, Any]], seconds: int) -> list[dict[str, Any]]:
    """open = first, high = max, low = min, close = last, volume = sum, per epoch-aligned bucket."""
    buckets: dict[int, list[dict[str, Any]]] = {}
    for candle in sorted(minutes, key=lambda c: parse_broker_time(c["time"])):
        start = int(parse_broker_time(candle["time"]).timestamp()) // seconds * seconds
        buckets.setdefault(start, []).append(candle)
    result = []
    for start, group in sorted(buckets.items()):

        def price(value: Any) -> Decimal:
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)

        result.append(
            {
                "time": datetime.fromtimestamp(start, tz=UTC),
                "open": price(group[0]["open"]),
                "high": max(price(c["high"]) for c in group),
                "low": min(price(c["low"]) for c in group),
                "close": price(group[-1]["close"]),
                "volume": sum(c["volume"] for c in group),
                "minutes": len(group),
            }
        )
    return result
