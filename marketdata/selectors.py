"""Reads of market data. Higher timeframes come from the database's M1 aggregates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Model, QuerySet

from marketdata.models import AggregatedCandle, Candle, CandleH1, CandleM5, CandleM15
from marketdata.timeframes import Timeframe, timeframe_duration

_AGGREGATE_MODELS: dict[str, type[AggregatedCandle]] = {
    Timeframe.M5: CandleM5,
    Timeframe.M15: CandleM15,
    Timeframe.H1: CandleH1,
}


class UnknownTimeframeError(ValueError):
    pass


def _candles(pair: str, timeframe: str) -> QuerySet[Any]:
    if timeframe == Timeframe.M1:
        return Candle.objects.filter(pair_id=pair, timeframe=timeframe)
    model = _AGGREGATE_MODELS.get(timeframe)
    if model is None:
        expected = ", ".join([Timeframe.M1, *_AGGREGATE_MODELS])
        raise UnknownTimeframeError(f"timeframe={timeframe!r} is not served; expected {expected}")
    return model.objects.filter(pair=pair)


def _finish(rows: list[Model], timeframe: str, now: datetime | None) -> list[Model]:
    # An aggregated candle is complete only once its period is over, however complete its minutes.
    if timeframe != Timeframe.M1:
        moment = now or datetime.now(UTC)
        width = timeframe_duration(timeframe)
        for row in rows:
            row.complete = bool(row.complete) and row.time + width <= moment  # type: ignore[attr-defined]
    return rows


def candles_between(
    *,
    pair: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> list[Model]:
    """Candles of one pair whose start time lies in [start, end), oldest first."""
    queryset = _candles(pair, timeframe)
    if start is not None:
        queryset = queryset.filter(time__gte=start)
    if end is not None:
        queryset = queryset.filter(time__lt=end)
    return _finish(list(queryset.order_by("time")), timeframe, now)


def candles_last(
    *,
    pair: str,
    timeframe: str,
    count: int,
    until: datetime | None = None,
    now: datetime | None = None,
) -> list[Model]:
    """The last ``count`` candles of one pair starting before ``until`` (if given), oldest first."""
    queryset = _candles(pair, timeframe)
    if until is not None:
        queryset = queryset.filter(time__lt=until)
    rows = list(queryset.order_by("-time")[:count])
    rows.reverse()
    return _finish(rows, timeframe, now)
