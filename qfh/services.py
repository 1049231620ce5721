"""Writes for the QFH app: per-candle metrics computed from stored candles."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction

from marketdata.selectors import Bar, candles_between, candles_last
from qfh.engine import DEFAULT_PARAMS, QFHParams, analyze_trailing, bits_from_closes, to_numpy
from qfh.models import CandleMetrics

logger = logging.getLogger(__name__)

# The testbed's window: candle i used at most 11 bits (QFH_SPEC.md section 1).
DEFAULT_WINDOW_BITS = 11
# A window needs two bits to hold one transition; the original skips shorter ones.
MIN_WINDOW_BITS = 2
_WRITE_BATCH = 5000
_METRIC_FIELDS = (
    "window_bits",
    "null_count",
    "flip_count",
    "rupture_count",
    "entropy",
    "coherence",
    "base_coherence",
    "rupture_ratio",
    "flip_ratio",
    "collapse",
    "damped_value",
    "decay",
    "trajectory_confidence",
)


def params_version(params: QFHParams, window_bits: int) -> str:
    """A short stable name for an engine configuration: the same inputs give the same name."""
    text = json.dumps({"window_bits": window_bits, **asdict(params)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MetricsRun:
    pair: str
    timeframe: str
    params_version: str
    candles: int
    written: int


def candle_metrics_compute(
    *,
    pair: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    window_bits: int = DEFAULT_WINDOW_BITS,
    params: QFHParams = DEFAULT_PARAMS,
    backend: str | None = None,
) -> MetricsRun:
    """Compute and store the metrics of every candle of a pair starting in [start, end).

    The candles just before ``start`` are read too, so the first candles of the range get full
    windows and the result is the same however the range is split into runs. Rows are upserted on
    (pair, timeframe, params_version, time): running the same analysis again writes identical rows.
    """
    if window_bits < MIN_WINDOW_BITS:
        raise ValueError(f"window_bits={window_bits} is too small; expected at least 2")
    history: list[Bar] = []
    if start is not None:
        history = candles_last(pair=pair, timeframe=timeframe, count=window_bits, until=start)
    # A forming candle's close still moves, so only closed candles are analysed.
    bars = [
        bar
        for bar in candles_between(pair=pair, timeframe=timeframe, start=start, end=end)
        if bar.complete
    ]
    version = params_version(params, window_bits)
    series = history + bars
    if len(series) < 2 or not bars:
        return MetricsRun(pair, timeframe, version, len(bars), 0)
    closes = np.array([float(bar.close) for bar in series], dtype=np.float64)
    bits = bits_from_closes(closes)
    result, lengths = analyze_trailing(bits, window_bits, params, backend=backend)
    columns = {name: to_numpy(value).reshape(-1) for name, value in result.as_dict().items()}
    columns["window_bits"] = to_numpy(lengths).reshape(-1)
    # Bit j is the move from candle j to candle j + 1, so candle j + 1's window ends at bit j.
    rows = []
    for offset, bar in enumerate(bars):
        bit = len(history) + offset - 1
        if bit < 0 or columns["window_bits"][bit] < MIN_WINDOW_BITS:
            continue
        values: dict[str, Any] = {name: columns[name][bit].item() for name in _METRIC_FIELDS}
        values["collapse"] = bool(values["collapse"])
        rows.append(
            CandleMetrics(
                pair_id=pair, timeframe=timeframe, time=bar.time, params_version=version, **values
            )
        )
    with transaction.atomic():
        for first in range(0, len(rows), _WRITE_BATCH):
            CandleMetrics.objects.bulk_create(
                rows[first : first + _WRITE_BATCH],
                update_conflicts=True,
                unique_fields=["pair", "timeframe", "params_version", "time"],
                update_fields=list(_METRIC_FIELDS),
            )
    logger.info(
        "event=qfh_metrics_stored pair=%s timeframe=%s params_version=%s candles=%d written=%d",
        pair,
        timeframe,
        version,
        len(bars),
        len(rows),
    )
    return MetricsRun(pair, timeframe, version, len(bars), len(rows))
