"""The stability / entropy / coherence variants that callers derived from QFH (QFH_SPEC.md §4).

`QFHBasedProcessor::analyze` never computes stability; every producer built its own. The signal
rules need these rows of the section 4 table:

* ``testbed_m1_metrics``: the testbed M1 row behind the published accuracy figures;
* ``pipeline_metrics``: the M5/M15 pipeline row (testbed and HEAD);
* ``bridge_metrics``: the bridge convergence loop in closed form;
* ``forward_window_metrics`` and ``pattern_modifier``: `simulateForwardWindowMetrics` (the CPU
  look-up table of section 5.1) and the multiplier the testbed derives from it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qfh.engine.backend import array_module
from qfh.engine.bits import STANDARD_PIP, window_rows
from qfh.engine.metrics import Array, QFHBatchResult


@dataclass(frozen=True)
class VariantParams:
    """Constants of the section 4 variants and of the section 5.1 pattern modifier."""

    # Testbed M1: C = 0.7*C_QFH + 0.3*0.5 (matchKnownPaths on a one-element path gives 0.5).
    testbed_qfh_weight: float = 0.7
    testbed_path_weight: float = 0.3
    testbed_path_confidence: float = 0.5
    # Testbed M1: S = min(1, 1 - rupture + 0.2 * vol / 20), vol = mean range of the previous 20
    # candles in pips, 0.5 before candle 20 (`AdvancedMarketAnalyzer::analyzeMarketRegime`).
    volatility_lookback: int = 20
    volatility_default_pips: float = 0.5
    volatility_weight: float = 0.2
    volatility_scale_pips: float = 20.0
    # Testbed M1 halves the QFH entropy.
    testbed_entropy_divisor: float = 2.0
    # `simulateForwardWindowMetrics` looks at the first 10 bits of its window.
    forward_window_bits: int = 10
    # Section 5.1 pattern modifier, checked in order on (coh_fw, stab_fw).
    trend_coherence: float = 0.85
    trend_modifier: float = 1.12
    breakout_coherence: float = 0.8
    breakout_stability: float = 0.82
    breakout_modifier: float = 1.08
    reversion_coherence: float = 0.75
    reversion_stability: float = 0.7
    reversion_modifier: float = 0.95


DEFAULT_VARIANT_PARAMS = VariantParams()


def candle_volatility_pips(
    highs: Any,
    lows: Any,
    *,
    pip: float = STANDARD_PIP,
    params: VariantParams = DEFAULT_VARIANT_PARAMS,
) -> Array:
    """For candle i: mean(high - low) of candles i-20 .. i-1 in pips, or 0.5 when i < 20.

    Only earlier candles enter, so the value at candle i is causal. Works along the last axis.
    """
    xp = array_module(highs=highs, lows=lows)
    ranges = (xp.asarray(highs, dtype=xp.float64) - xp.asarray(lows, dtype=xp.float64)) / pip
    lookback = params.volatility_lookback
    total = xp.cumsum(ranges, axis=-1)
    zeros = xp.zeros((*ranges.shape[:-1], 1), dtype=xp.float64)
    total = xp.concatenate([zeros, total], axis=-1)  # total[..., i] = sum of ranges before i
    count = ranges.shape[-1]
    index = xp.arange(count)
    start = xp.maximum(index - lookback, 0)
    window_sum = total[..., index] - total[..., start]
    return xp.where(index >= lookback, window_sum / lookback, params.volatility_default_pips)


def testbed_m1_metrics(
    result: QFHBatchResult,
    volatility_pips: Any,
    params: VariantParams = DEFAULT_VARIANT_PARAMS,
) -> dict[str, Array]:
    """Section 4 row "Testbed M1": coherence, stability and (halved) entropy per window."""
    xp = array_module(result=result.coherence, volatility_pips=volatility_pips)
    coherence = (
        params.testbed_qfh_weight * result.coherence
        + params.testbed_path_weight * params.testbed_path_confidence
    )
    stability = xp.minimum(
        1.0,
        1.0
        - result.rupture_ratio
        + params.volatility_weight * xp.asarray(volatility_pips) / params.volatility_scale_pips,
    )
    return {
        "coherence": coherence,
        "stability": stability,
        "entropy": result.entropy / params.testbed_entropy_divisor,
    }


def pipeline_metrics(result: QFHBatchResult) -> dict[str, Array]:
    """Section 4 row "M5/M15 pipeline": C_QFH, 1 - rupture, H_QFH (not halved)."""
    return {
        "coherence": result.coherence,
        "stability": 1.0 - result.rupture_ratio,
        "entropy": result.entropy,
    }


def bridge_metrics(result: QFHBatchResult, correction_ratio: Any) -> dict[str, Array]:
    """Section 4 row "Bridge convergence loop" in closed form (section 5.3).

    The loop x <- 0.9x + 0.1*target on constant targets converges to the target, so: coherence
    C_QFH (analysed at collapse threshold 0.5), stability clamp(1 - H), entropy H, confidence
    1 - QBSA correction ratio.
    """
    xp = array_module(result=result.entropy, correction_ratio=correction_ratio)
    return {
        "coherence": result.coherence,
        "stability": xp.clip(1.0 - result.entropy, 0.0, 1.0),
        "entropy": result.entropy,
        "confidence": 1.0 - xp.asarray(correction_ratio),
    }


def _forward_window_row(window: list[int]) -> tuple[float, float, float, float, int, int]:
    """`simulateForwardWindowMetrics` on one window of at most 10 bits (470ceea CPU version)."""
    f32 = np.float32
    size = len(window)
    flips = sum(1 for i in range(1, size) if window[i] != window[i - 1])
    ruptures = sum(1 for i in range(1, size) if window[i] == window[i - 1] == 1)
    ones = sum(window)
    zeros = size - ones
    entropy = 0.0
    if ones and zeros:
        p1, p0 = ones / size, zeros / size
        entropy = -(p1 * math.log2(p1) + p0 * math.log2(p0))

    def trend_acceleration() -> bool:
        if size < 6:
            return False
        half = size // 2
        first = sum(1 for i in range(1, half) if window[i] != window[i - 1])
        second = sum(1 for i in range(half + 1, size) if window[i] != window[i - 1])
        return second >= first * 2

    def mean_reversion() -> bool:
        if size < 4:
            return False
        turns = sum(
            1
            for i in range(1, size - 1)
            if window[i - 1] == window[i + 1] and window[i] != window[i - 1]
        )
        return turns >= size // 3

    def volatility_breakout() -> bool:
        if size < 6:
            return False
        longest = current = 1
        for i in range(1, size):
            current = current + 1 if window[i] == window[i - 1] else 1
            longest = max(longest, current)
        return longest >= size // 3 and flips >= size // 3

    if size <= 1:
        coherence, stability = 0.0, 0.0
    elif ones == size:
        coherence, stability = 0.1, 0.1
    elif zeros == size:
        coherence, stability = 0.95, 1.0
    elif flips == size - 1:
        coherence, stability = 0.9, 0.95
    elif trend_acceleration():
        coherence, stability = 0.85, 0.88
    elif mean_reversion():
        coherence, stability = 0.75, 0.7
    elif volatility_breakout():
        coherence, stability = 0.8, 0.82
    elif flips + 1 <= size // 2:
        coherence, stability = 0.6, 0.5
    else:
        coherence, stability = 0.4, 0.3
    # The struct holds floats, so the values are the float32 roundings of these literals.
    confidence = f32(min(f32(1.0), f32(size) / f32(10.0)) * f32(coherence))
    return (
        float(f32(coherence)),
        float(f32(stability)),
        float(f32(entropy)),
        float(confidence),
        flips,
        ruptures,
    )


@functools.cache
def _forward_window_table(max_bits: int) -> NDArray[np.float64]:
    """Rows indexed by (1 << size) | code for every window of up to ``max_bits`` bits."""
    table = np.zeros((1 << (max_bits + 1), 6), dtype=np.float64)
    for size in range(max_bits + 1):
        for code in range(1 << size):
            window = [(code >> t) & 1 for t in range(size)]
            table[(1 << size) | code] = _forward_window_row(window)
    return table


def forward_window_metrics(
    bits: Any,
    lengths: Any = None,
    params: VariantParams = DEFAULT_VARIANT_PARAMS,
) -> dict[str, Array]:
    """`simulateForwardWindowMetrics(window, 0)` for each row, on its first 10 bits.

    The original is a cascade of hand-written pattern tests; since it only sees 10 bits, every
    possible window is tabulated once and each row becomes a look-up by its bit code.
    """
    xp = array_module(bits=bits, lengths=lengths)
    matrix, length = window_rows(bits, lengths, xp)
    width = matrix.shape[1]
    size = xp.minimum(length, params.forward_window_bits)
    used = min(width, params.forward_window_bits)
    position = xp.arange(used, dtype=xp.int64)
    inside = position[None, :] < size[:, None]
    code = (xp.where(inside, matrix[:, :used], 0) << position[None, :]).sum(axis=1)
    table = xp.asarray(_forward_window_table(params.forward_window_bits))
    looked_up = table[(xp.left_shift(1, size)) | code]
    names = ("coherence", "stability", "entropy", "confidence", "flip_count", "rupture_count")
    return {name: looked_up[:, column] for column, name in enumerate(names)}


def pattern_modifier(
    coherence: Any,
    stability: Any,
    params: VariantParams = DEFAULT_VARIANT_PARAMS,
) -> Array:
    """Section 5.1 pattern modifier from the forward-window metrics (compared in float32)."""
    xp = array_module(coherence=coherence, stability=stability)
    f32 = np.float32
    coh = xp.asarray(coherence).astype(f32)
    stab = xp.asarray(stability).astype(f32)
    modifier = xp.ones(coh.shape, dtype=xp.float64)
    reversion = (coh >= f32(params.reversion_coherence)) & (stab >= f32(params.reversion_stability))
    breakout = (coh >= f32(params.breakout_coherence)) & (stab >= f32(params.breakout_stability))
    trend = coh >= f32(params.trend_coherence)
    # Applied from the last case to the first, so the first matching case of the original wins.
    modifier = xp.where(reversion, params.reversion_modifier, modifier)
    modifier = xp.where(breakout, params.breakout_modifier, modifier)
    return xp.where(trend, params.trend_modifier, modifier)
