"""Reads for evaluation and training: stored candles as arrays, and pair models."""

from __future__ import annotations

from datetime import datetime

from marketdata.models import Pair
from marketdata.selectors import candles_between
from marketdata.timeframes import TIMEFRAME_SECONDS
from qfh.evaluation.candles import Candles
from qfh.models import PairModel


class UnknownPairError(ValueError):
    pass


def pair_pip(pair: str) -> float:
    location = Pair.objects.filter(symbol=pair).values_list("pip_location", flat=True).first()
    if location is None:
        raise UnknownPairError(f"pair={pair!r} is unknown; add it before evaluating it")
    return float(10.0**location)


def candle_arrays(
    *, pair: str, timeframe: str = "M1", start: datetime | None = None, end: datetime | None = None
) -> Candles:
    """The closed candles of a pair starting in [start, end) as float64 arrays, oldest first."""
    pip = pair_pip(pair)
    bars = [
        bar
        for bar in candles_between(pair=pair, timeframe=timeframe, start=start, end=end)
        if bar.complete
    ]
    return Candles.from_bars(bars, seconds=TIMEFRAME_SECONDS[timeframe], pip=pip)


def pair_model_promoted(*, pair: str) -> PairModel | None:
    return PairModel.objects.filter(pair_id=pair, promoted=True).first()
