from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import DatabaseError
from django.utils.dateparse import parse_datetime

from qfh.arrays import analysis_array_module
from qfh.evaluation.services import pair_model_train, rule_evaluation_run
from qfh.routing import analysis_queue
from qfh.services import (
    DEFAULT_WINDOW_BITS,
    candle_metrics_compute,
    live_analyses_requested,
    signals_analyze_closed,
)

logger = logging.getLogger(__name__)


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
    xp = analysis_array_module()
    runs = []
    for pair in pairs:
        for timeframe in timeframes:
            run = candle_metrics_compute(
                pair=pair,
                timeframe=timeframe,
                start=first,
                end=last,
                window_bits=window_bits,
                xp=xp,
            )
            runs.append({"pair": pair, "timeframe": timeframe, "written": run.written})
    return runs


@shared_task(name="qfh.analyze_closed_candles_task", acks_late=True)
def analyze_closed_candles_task(pairs: list[str], time: str) -> list[dict[str, Any]]:
    """Live analysis of the M1 candle starting at ``time`` for every pair that closed it: one
    engine call for all of them, a TradingSignal per BUY/SELL, execution sent on commit.
    Idempotent, so a redelivered message stores nothing twice."""
    moment = parse_datetime(time)
    if moment is None:
        raise ValueError(f"time={time!r} is not an ISO 8601 time; expected e.g. 2025-07-24T10:15Z")
    return [
        {
            "pair": outcome.pair,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "direction": outcome.direction,
            "signal_id": outcome.signal_id,
            "queue": outcome.queue,
        }
        for outcome in signals_analyze_closed(pairs=pairs, time=moment, xp=analysis_array_module())
    ]


@shared_task(name="qfh.evaluate_rule_task", acks_late=True)
def evaluate_rule_task(
    pair: str,
    timeframe: str = "M1",
    start: str | None = None,
    end: str | None = None,
    rule_type: str = "testbed",
    params: dict[str, Any] | None = None,
    horizon: int = 1,
    leaky: bool = False,
) -> int:
    """Evaluate a rule on stored candles and store the result; returns the evaluation's id."""
    row = rule_evaluation_run(
        pair=pair,
        timeframe=timeframe,
        start=parse_datetime(start) if start else None,
        end=parse_datetime(end) if end else None,
        rule_type=rule_type,
        params=params,
        horizon=horizon,
        leaky=leaky,
        xp=analysis_array_module(),
    )
    return row.pk


@shared_task(name="qfh.train_pair_model_task", acks_late=True)
def train_pair_model_task(
    pair: str,
    timeframe: str = "M1",
    start: str | None = None,
    end: str | None = None,
    folds: int = 4,
    sets: int = 200,
    seed: int = 0,
) -> int:
    """Walk-forward training of a pair's model; returns the stored PairModel's id.

    Not retried: a second run would store a second (identical) model rather than fail.
    """
    model = pair_model_train(
        pair=pair,
        timeframe=timeframe,
        start=parse_datetime(start) if start else None,
        end=parse_datetime(end) if end else None,
        folds=folds,
        sets=sets,
        seed=seed,
        xp=analysis_array_module(),
    )
    return model.pk


# A signal is for the minute that just closed; an analysis still queued after this long (the PC
# dropped off with the fallback off) would only make signals that execution expires anyway.
ANALYSIS_EXPIRES_SECONDS = 120


def enqueue_analysis(pairs: list[str], time: datetime) -> Any:
    """The streamer's hook (``marketdata.hooks.minute_closed``): live signals for the pairs whose
    M1 candle starting at ``time`` just closed, in one task (one engine call), on ``qfh`` or on
    the CPU fallback queue.

    The hand-over is noted first (``LiveAnalysis``, for the parity report); a database that
    refuses the note does not hold the analysis up."""
    try:
        live_analyses_requested(pairs=pairs, time=time)
    except DatabaseError as error:
        logger.warning(
            "event=live_analysis_request_not_noted pairs=%s time=%s error=%r",
            ",".join(pairs),
            time.isoformat(),
            str(error),
        )
    return analyze_closed_candles_task.apply_async(
        args=[pairs, time.isoformat()], queue=analysis_queue(), expires=ANALYSIS_EXPIRES_SECONDS
    )
