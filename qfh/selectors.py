"""Reads of the QFH app: candle metrics by time range, pair models and rule evaluations."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from qfh.models import CandleMetrics, PairModel, RuleEvaluation
from septrader.selectors import rows_narrowed


def candle_metrics_between(
    *,
    pair: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    limit: int,
    params_version: str | None = None,
) -> list[CandleMetrics]:
    """The metrics of the pair's candles in [start, end), oldest first, of one parameter version
    when given; at most ``limit`` rows, since several versions may cover one candle."""
    rows = CandleMetrics.objects.filter(
        pair_id=pair, timeframe=timeframe, time__gte=start, time__lt=end
    )
    if params_version is not None:
        rows = rows.filter(params_version=params_version)
    return list(rows.order_by("time", "params_version")[:limit])


def pair_models(*, pair: str | None = None, promoted: bool | None = None) -> QuerySet[PairModel]:
    """Pair models, newest first: of one pair, and promoted or not, when given."""
    models = PairModel.objects.order_by("-created_at", "-id")
    return rows_narrowed(models, pair_id=pair, promoted=promoted)


def pair_model_exists(model_id: int) -> bool:
    return PairModel.objects.filter(pk=model_id).exists()


def rule_evaluations(
    *, pair: str | None = None, leaky: bool | None = None
) -> QuerySet[RuleEvaluation]:
    """Rule evaluations, newest first: of one pair, and leaky or not, when given."""
    evaluations = RuleEvaluation.objects.order_by("-created_at", "-id")
    return rows_narrowed(evaluations, pair_id=pair, leaky=leaky)
