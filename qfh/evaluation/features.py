"""Per-candle QFH features for the signal rules, with the moment each one became known.

Two alignments exist, and every feature array carries ``known_at``: the epoch second of the
latest candle close it used. The evaluation refuses labels that start before that moment
(``qfh.evaluation.evaluate.LookAheadError``), so the look-ahead of the original cannot slip in.

Let T[c] be the testbed's numbers for candle c: the QFH window of bits ending at bit c (bit c is
close[c + 1] > close[c]), the pattern modifier of the first 10 bits of bits[c - 11 .. c - 1], the
20-candle volatility before c and candle c's volume.

* ``causal``: the signal at candle j uses T[j - 1]: bits up to j - 1, i.e. closes up to close[j].
  It is known at candle j's close, before any move it is scored on.
* ``leaky``: the testbed's alignment (QFH_SPEC.md section 6.1). Its first candle is skipped, so
  the signal scored at index i is T[i + 1], whose window holds bit i (the move being scored) and
  bit i + 1; vm is the mean range of the last 100 candles of the whole series. For the labelled
  comparison only.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from qfh import rules
from qfh.engine import (
    QFHBatchResult,
    QFHParams,
    analyze_trailing,
    bits_from_closes,
    candle_volatility_pips,
    forward_window_metrics,
    pattern_modifier,
    testbed_m1_metrics,
)
from qfh.evaluation.candles import Candles, aggregate

ALIGNMENTS = ("causal", "leaky")
# The testbed and the M5/M15 pipeline analyse at collapse threshold 0.3 (QFH_SPEC.md 2.2).
TESTBED_QFH = QFHParams(collapse_threshold=0.3)
# simulateForwardWindowMetrics looks at the first 10 bits of an 11-bit window.
PATTERN_BITS = 10
HIGHER_TIMEFRAMES = (300, 900)
# The key of a table's engine result: per bit k, the QFH of the window ending with move k.
RAW = "qfh"
# A shift of the candle index: causal uses T[j - 1], leaky T[j + 1].
SHIFT = {"causal": -1, "leaky": 1}


@dataclass(frozen=True)
class Features:
    """Arrays of one value per candle (NaN-free; ``valid`` marks candles that have a window)."""

    coherence: Any
    stability: Any
    entropy: Any
    multiplier: Any
    volatility: Any
    modifier: Any
    valid: Any
    known_at: Any
    alignment: str
    # The engine's result per bit (window ending with move k, so candle k + 1's numbers).
    qfh: Any = None


@dataclass(frozen=True)
class HigherTimeframe:
    """A higher timeframe's pipeline metrics (section 5.2) on its own candles, and for every M1
    candle the index of the higher candle it is joined to (-1: none, which never confirms).

    Rules score the higher candles first and gather the answers onto the M1 grid: a higher
    timeframe has 5 or 15 times fewer candles, so this is the cheap order.
    """

    seconds: int
    coherence: Any
    stability: Any
    entropy: Any
    modifier: Any
    valid: Any
    known_at: Any
    index: Any
    # The higher candles' start times (epoch seconds) and the engine's result per bit.
    times: Any = None
    qfh: Any = None

    def found(self) -> Any:
        """Whether each M1 candle has a joined higher candle with a window."""
        return (self.index >= 0) & rules.gather_closed(self.valid, self.index, False)


def _pattern_modifier(bits: Any, xp: ModuleType) -> Any:
    """pm for every candle c (pattern index p = c - 1): the section 5.1 look-up on the first 10
    bits of bits[max(0, p - 10) : p + 1]; 1 where there is no window. Works along the last axis,
    so one call serves a (series, bits) batch."""
    count = bits.shape[-1]
    candle = xp.arange(count)
    pattern = candle - 1
    start = xp.maximum(pattern - 10, 0)
    length = xp.clip(pattern + 1 - start, 0, PATTERN_BITS)
    tail = xp.zeros((*bits.shape[:-1], PATTERN_BITS), dtype=bits.dtype)
    padded = xp.concatenate([bits, tail], axis=-1)
    rows = padded[..., start[:, None] + xp.arange(PATTERN_BITS)[None, :]]
    lengths = xp.broadcast_to(length, rows.shape[:-1])
    table = forward_window_metrics(rows.reshape(-1, PATTERN_BITS), lengths.reshape(-1))
    modifier = pattern_modifier(table["coherence"], table["stability"])
    return modifier.reshape(rows.shape[:-1])


def _to_module(series: Sequence[Candles], xp: ModuleType) -> list[Candles]:
    """Host candles on ``xp``: each field of every series concatenated on the host and copied in
    one transfer, then cut into views (the way in; a no-op copy on NumPy)."""
    if xp is np or not series:
        return list(series)
    bounds = np.cumsum([0, *(len(candles) for candles in series)])
    fields = {
        name: xp.asarray(np.concatenate([getattr(candles, name) for candles in series]))
        for name in ("times", "open", "high", "low", "close", "volume")
    }
    return [
        replace(candles, **{name: values[start:stop] for name, values in fields.items()})
        for candles, start, stop in zip(series, bounds[:-1], bounds[1:], strict=True)
    ]


def _tables(
    items: Sequence[tuple[Candles, bool]], window: int, xp: ModuleType
) -> list[dict[str, Any]]:
    """T[c] for c = 0 .. N - 2 (the last candle has no bit of its own) of every series in
    ``items`` (candles on ``xp``, testbed row or pipeline row), from one engine call for all.

    The series' bits are stacked into one (series, bits) matrix padded on the right. Every
    window looks back only (it ends at its own bit), so padding after a series' last bit never
    changes a number of that series: a batch gives exactly what each series gives alone.
    """
    bit_rows = [bits_from_closes(candles.close) for candles, _ in items]
    width = max((int(row.shape[-1]) for row in bit_rows), default=0)
    matrix = xp.zeros((len(bit_rows), width), dtype=xp.uint8)
    for index, row in enumerate(bit_rows):
        matrix[index, : row.shape[-1]] = row
    batch_result, batch_lengths = analyze_trailing(matrix, window, TESTBED_QFH)
    batch_modifier = _pattern_modifier(matrix, xp) if width else xp.ones((len(items), 0))
    tables = []
    for index, (candles, testbed) in enumerate(items):
        count = int(bit_rows[index].shape[-1])
        # Every column's row of this series, cut to its own bits: column[index, :count].
        result = batch_result.map(operator.itemgetter((index, slice(0, count))))
        lengths = batch_lengths[index, :count]
        modifier = batch_modifier[index, :count]
        tables.append(_finish_table(candles, result, lengths, modifier, xp, testbed=testbed))
    return tables


def _finish_table(
    candles: Candles,
    result: QFHBatchResult,
    lengths: Any,
    modifier: Any,
    xp: ModuleType,
    *,
    testbed: bool,
) -> dict[str, Any]:
    count = int(lengths.shape[-1])
    if testbed:
        volatility = candle_volatility_pips(candles.high, candles.low, pip=candles.pip)[:count]
        metrics = testbed_m1_metrics(result, volatility)
        coherence = metrics["coherence"]
        # The temporal factor runs over the pattern list, which starts at candle 1.
        temporal = xp.concatenate([xp.ones(1), rules.temporal_factor(coherence[1:])])
        volume = rules.volume_factor(candles.volume[:count])
        multiplier = volume * temporal[:count] * modifier
    else:
        coherence = result.coherence
        metrics = {
            "coherence": coherence,
            "stability": 1.0 - result.rupture_ratio,
            "entropy": result.entropy,
        }
        multiplier = modifier
    return {
        "coherence": metrics["coherence"],
        "stability": metrics["stability"],
        "entropy": metrics["entropy"],
        "multiplier": multiplier,
        "modifier": modifier,
        "valid": lengths >= 2,
        RAW: result,
    }


def _aligned(
    table: dict[str, Any], candles: Candles, alignment: str, xp: ModuleType
) -> tuple[dict[str, Any], Any]:
    """Move T onto the candle grid for ``alignment``; returns (arrays, known_at)."""
    count = len(candles)
    source = xp.arange(count) + SHIFT[alignment]
    inside = (source >= 0) & (source < count - 1)
    safe = xp.clip(source, 0, max(count - 2, 0))
    out = {}
    for name, values in table.items():
        if name == RAW:
            continue
        if count < 2:
            out[name] = xp.zeros(count, dtype=values.dtype)
            continue
        fill = False if values.dtype == bool else 0.0
        out[name] = xp.where(inside, values[safe], fill)
    out["valid"] = out["valid"] & inside if count else out["valid"]
    # T[c] uses closes up to close[c + 1].
    known_index = xp.clip(source + 1, 0, max(count - 1, 0))
    known_at = candles.close_times[known_index] if count else xp.zeros(0, dtype=xp.int64)
    return out, known_at


def _testbed_from_table(
    candles: Candles,
    table: dict[str, Any],
    volatility_lookback: int,
    alignment: str,
    xp: ModuleType,
) -> Features:
    out, known_at = _aligned(table, candles, alignment, xp)
    ranges = candles.range_pips
    if alignment == "causal":
        volatility = rules.volatility_multiplier(ranges, lookback=volatility_lookback)
    else:
        volatility = rules.leaky_volatility_multiplier(ranges, lookback=volatility_lookback)
        if len(candles):
            known_at = xp.maximum(known_at, candles.close_times[-1])
    return Features(
        coherence=out["coherence"],
        stability=out["stability"],
        entropy=out["entropy"],
        multiplier=out["multiplier"],
        volatility=volatility,
        modifier=out["modifier"],
        valid=out["valid"],
        known_at=known_at,
        alignment=alignment,
        qfh=table[RAW],
    )


def _higher_from_table(
    candles: Candles,
    higher: Candles,
    table: dict[str, Any],
    seconds: int,
    alignment: str,
    xp: ModuleType,
) -> HigherTimeframe:
    """The M5/M15 pipeline metrics of section 5.2 on the ``higher`` candles (aggregated from the
    M1 ``candles``), joined onto each M1 candle.

    Causal: the latest higher candle that had closed by the M1 candle's close, keyed on the
    floored bucket time, with its own causal window. Leaky: the bucket that *contains* the M1
    candle (the original's key), with the testbed alignment.
    """
    out, known_at = _aligned(table, higher, alignment, xp)
    if alignment == "causal":
        index = rules.closed_bucket_index(candles.times, candles.seconds, higher.times, seconds)
    else:
        key = (candles.times // seconds) * seconds
        position = xp.clip(xp.searchsorted(higher.times, key), 0, len(higher) - 1)
        index = xp.where(higher.times[position] == key, position, -1)
    return HigherTimeframe(
        seconds=seconds,
        coherence=out["coherence"],
        stability=out["stability"],
        entropy=out["entropy"],
        modifier=out["modifier"],
        valid=out["valid"],
        known_at=known_at,
        index=index,
        times=higher.times,
        qfh=table[RAW],
    )


def history_needed(*, window: int, volatility_lookback: int, confirm: bool) -> int:
    """How many M1 candles up to candle j make j's features the same as over any longer series.

    The live analysis reads this many, so its numbers equal the offline evaluation's (which sees
    the whole range). For the causal features of candle j (T[j - 1]):

    * the QFH window: closes j - window .. j, so window + 1 candles;
    * the temporal factor: the coherence of the 15 previous patterns, each with a full window,
      so window + 16 candles;
    * the stability's volatility: the ranges of the 20 candles before j - 1, so 22 candles;
    * vm: the ranges of the last ``volatility_lookback`` candles;
    * with confirmation (and to store M5/M15 metrics): the last closed M15 bucket's window and
      pattern modifier reach max(window, 12) buckets further back; one more bucket for the
      partial first bucket of the history and up to 14 minutes after the last closed bucket.
    """
    need = max(window + 16, 22, volatility_lookback)
    if confirm:
        slowest = max(HIGHER_TIMEFRAMES) // 60
        need = max(need, (max(window, PATTERN_BITS + 2) + 2) * slowest + slowest - 1)
    return need


@dataclass(frozen=True)
class FeatureRequest:
    """One series to featurise in a batch: its M1 candles and the rule's feature settings."""

    candles: Candles
    window: int = 11
    volatility_lookback: int = 100
    confirm: bool = False


def features_batch(
    requests: Sequence[FeatureRequest],
    *,
    xp: ModuleType,
    alignment: str = "causal",
) -> list[tuple[Features, list[HigherTimeframe]]]:
    """Section 5.1 inputs for every candle of many series: C, S, H (testbed M1 row),
    m = vf * tc * pm and vm, and where ``confirm`` the M5/M15 pipeline metrics of section 5.2
    joined onto the M1 candles.

    ``requests`` hold host candles; they are aggregated to M5/M15 on the host and copied to ``xp``
    once, and the features come back on ``xp``. Every M1, M5 and M15 series that shares a window
    length goes through one engine call: the live analysis serves all pairs that closed the same
    minute this way, training every window length of a search, and a batch gives exactly what
    each series gives alone (see ``_tables``)."""
    if alignment not in ALIGNMENTS:
        raise ValueError(f"alignment={alignment!r} is unknown; expected one of {ALIGNMENTS}")
    host: list[Candles] = []
    for request in requests:
        host.append(request.candles)
        if request.confirm:
            host.extend(aggregate(request.candles, seconds) for seconds in HIGHER_TIMEFRAMES)
    moved = iter(_to_module(host, xp))
    series: list[tuple[Candles, list[Candles]]] = []
    for request in requests:
        candles = next(moved)
        frames = [next(moved) for _ in HIGHER_TIMEFRAMES] if request.confirm else []
        series.append((candles, frames))
    results: list[tuple[Features, list[HigherTimeframe]] | None] = [None] * len(requests)
    for window in sorted({request.window for request in requests}):
        chosen = [index for index, request in enumerate(requests) if request.window == window]
        items: list[tuple[Candles, bool]] = []
        for index in chosen:
            candles, frames = series[index]
            items.append((candles, True))
            items.extend((frame, False) for frame in frames)
        tables = iter(_tables(items, window, xp))
        for index in chosen:
            candles, frames = series[index]
            features = _testbed_from_table(
                candles, next(tables), requests[index].volatility_lookback, alignment, xp
            )
            higher = [
                _higher_from_table(candles, frame, next(tables), seconds, alignment, xp)
                for seconds, frame in zip(HIGHER_TIMEFRAMES, frames, strict=False)
            ]
            results[index] = (features, higher)
    return [result for result in results if result is not None]
