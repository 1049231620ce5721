"""Signal rules as pure array functions: metrics in, direction and confidence out.

The live signal pipeline and the evaluation/training code share these functions, so a rule
behaves the same in a backtest and in production. Nothing here imports Django or reads data:
callers pass the engine's per-candle arrays (``qfh.engine``) and get back

* ``direction``: int8, +1 buy, -1 sell, 0 hold;
* ``confidence``: float64, the winning score (it can exceed 1, as in the original).

They compute in the array module of their inputs (``qfh.engine.array_module``): NumPy for host
arrays, CuPy for device arrays, and an error naming the arguments when both are mixed.

Every parameter may be a Python number or an array that broadcasts against the candles. Training
passes each parameter as a (sets, 1) column, so one call scores every parameter set on every
candle and returns (sets, candles) arrays (QFH_SPEC.md section 0.4).

A rule is stored as data, ``Rule(rule_type, params)``; ``validate_rule`` fills defaults and
refuses anything else with an error that names the parameter, the value and what was expected.
The rules (QFH_SPEC.md section 5):

* ``testbed``: the section 5.1 scoring behind the original's 60.73%, made causal: the volatility
  multiplier vm comes from a trailing mean of past candle ranges, never from the file's end.
  Optionally gated by the section 5.2 multi-timeframe confirmation (``confirm_threshold``).
* ``pattern_threshold``: the PatternMetricEngine threshold rule of section 5.4.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from qfh.engine import array_module

Array = Any

BUY = 1
SELL = -1
HOLD = 0


class RuleError(ValueError):
    """A rule's type or parameters are invalid; the message names the parameter."""


# The published testbed values (QFH_SPEC.md sections 5.1, 5.2 and 6.1).
TESTBED_DEFAULTS: dict[str, Any] = {
    # Weights of (1 - S), C and (1 - H) in the buy score: the "stability inversion".
    "weight_stability": 0.40,
    "weight_coherence": 0.10,
    "weight_entropy": 0.50,
    # BUY if buy * m > buy_threshold * vm, else SELL if sell * m > sell_threshold * vm.
    "buy_threshold": 0.50,
    "sell_threshold": 0.52,
    # The "high-confidence" gate: confidence >= 0.65, C >= 0.30, S >= 0.
    "min_confidence": 0.65,
    "min_coherence": 0.30,
    "min_stability": 0.0,
    # True trades only high-confidence signals (the 60.73% figure's population).
    "high_confidence_only": True,
    # Bits per QFH window: the testbed used at most 11.
    "window": 11,
    # The causal vm is the mean range of the last 100 candles up to the signal candle.
    "volatility_lookback": 100,
    # None: no confirmation. A number: M5 and M15 must agree with confidence above it (0.80).
    "confirm_threshold": None,
}

PATTERN_THRESHOLD_DEFAULTS: dict[str, Any] = {
    "buy_min_coherence": 0.7,
    "buy_min_stability": 0.6,
    "buy_max_entropy": 0.3,
    "sell_max_stability": 0.3,
    "sell_min_entropy": 0.7,
    "window": 11,
    "confirm_threshold": None,
}

RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "testbed": TESTBED_DEFAULTS,
    "pattern_threshold": PATTERN_THRESHOLD_DEFAULTS,
}

# Window lengths the engine serves by table look-up (qfh.engine.batch.LOOKUP_MAX_BITS and more).
MIN_WINDOW, MAX_WINDOW = 2, 64


@dataclass(frozen=True)
class Rule:
    """A signal rule as data: its type and a complete, validated parameter mapping."""

    rule_type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule_type": self.rule_type, "params": dict(self.params)}

    def version(self) -> str:
        """A short stable name for the rule and its parameters: the same rule, the same name
        (the live analysis records it each minute; the parity report compares it with the
        model's)."""
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RuleError(f"{name}={value!r} is not a finite number; expected {low} to {high}")
    if not low <= value <= high:
        raise RuleError(f"{name}={value!r} is out of range; expected {low} to {high}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(f"{name}={value!r} is not an integer; expected {low} to {high}")
    if not low <= value <= high:
        raise RuleError(f"{name}={value!r} is out of range; expected {low} to {high}")
    return value


def validate_rule(rule_type: str, params: Mapping[str, Any] | None = None) -> Rule:
    """Check a rule and fill in the defaults of the parameters it leaves out."""
    if rule_type not in RULE_DEFAULTS:
        raise RuleError(
            f"rule_type={rule_type!r} is unknown; expected one of {list(RULE_DEFAULTS)}"
        )
    defaults = RULE_DEFAULTS[rule_type]
    given = dict(params or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise RuleError(
            f"{rule_type} rule: unknown parameter(s) {unknown}; expected some of {sorted(defaults)}"
        )
    merged = {**defaults, **given}
    checked: dict[str, Any] = {}
    for name, value in merged.items():
        if name == "window":
            checked[name] = _integer(name, value, MIN_WINDOW, MAX_WINDOW)
        elif name == "volatility_lookback":
            checked[name] = _integer(name, value, 1, 100_000)
        elif name == "high_confidence_only":
            if not isinstance(value, bool):
                raise RuleError(f"{name}={value!r} is not a boolean; expected true or false")
            checked[name] = value
        elif name == "confirm_threshold":
            checked[name] = None if value is None else _number(name, value, 0.0, 3.0)
        elif name.startswith("weight_"):
            checked[name] = _number(name, value, 0.0, 1.0)
        else:
            checked[name] = _number(name, value, 0.0, 3.0)
    if rule_type == "testbed":
        total = (
            checked["weight_stability"] + checked["weight_coherence"] + checked["weight_entropy"]
        )
        if abs(total - 1.0) > 1e-6:
            raise RuleError(
                f"weight_stability + weight_coherence + weight_entropy = {total:.6g}; "
                "expected 1 (the sell score is the buy score's complement)"
            )
    return Rule(rule_type, checked)


# ---------------------------------------------------------------------------------------------
# Section 5.1: the testbed scoring.


def volatility_multiplier(
    range_pips: Array, *, lookback: int = 100, base_pips: float = 10.0, slope: float = 0.02
) -> Array:
    """Causal vm per candle: clamp(1 + (mean range of the last ``lookback`` candles - 10) * 0.02,
    0.8, 1.5), the mean taken over candles j - lookback + 1 .. j (fewer at the start).

    The original took the mean over the last 100 candles *of the file*, a look-ahead from every
    candle but the last; here candle j sees only ranges that were known at its close.
    """
    xp = array_module(range_pips=range_pips)
    ranges = xp.asarray(range_pips, dtype=xp.float64)
    total = xp.concatenate([xp.zeros((*ranges.shape[:-1], 1)), xp.cumsum(ranges, axis=-1)], -1)
    index = xp.arange(ranges.shape[-1])
    start = xp.maximum(index + 1 - lookback, 0)
    mean = (total[..., index + 1] - total[..., start]) / (index + 1 - start)
    return xp.clip(1.0 + (mean - base_pips) * slope, 0.8, 1.5)


def leaky_volatility_multiplier(
    range_pips: Array, *, lookback: int = 100, base_pips: float = 10.0, slope: float = 0.02
) -> Array:
    """The original's vm: one value from the last ``lookback`` candles of the whole series.

    For the labelled leaky comparison only: every candle but the last sees the future.
    """
    xp = array_module(range_pips=range_pips)
    ranges = xp.asarray(range_pips, dtype=xp.float64)
    mean = ranges[..., -lookback:].mean(axis=-1, keepdims=True)
    return xp.broadcast_to(xp.clip(1.0 + (mean - base_pips) * slope, 0.8, 1.5), ranges.shape)


def volume_factor(volume: Array) -> Array:
    """vf = clamp(0.85 + 0.3 * volume / 150, 0.7, 1.4)."""
    xp = array_module(volume=volume)
    return xp.clip(0.85 + 0.3 * xp.asarray(volume, dtype=xp.float64) / 150.0, 0.7, 1.4)


def temporal_factor(coherence: Array) -> Array:
    """tc per pattern: 1.15 if C is close to the mean of the previous 5 and that to the previous 15,
    1.08 if only close to the previous 5, else 1; 1 before pattern index 15. Past values only."""
    xp = array_module(coherence=coherence)
    values = xp.asarray(coherence, dtype=xp.float64)
    total = xp.concatenate([xp.zeros((*values.shape[:-1], 1)), xp.cumsum(values, axis=-1)], -1)
    index = xp.arange(values.shape[-1])
    five = (total[..., index] - total[..., xp.maximum(index - 5, 0)]) / 5.0
    fifteen = (total[..., index] - total[..., xp.maximum(index - 15, 0)]) / 15.0
    steady = (xp.abs(values - five) < 0.1) & (xp.abs(five - fifteen) < 0.1)
    result = xp.where(steady, 1.15, xp.where(xp.abs(values - five) < 0.2, 1.08, 1.0))
    return xp.where(index >= 15, result, 1.0)


def testbed_buy_score(
    *,
    coherence: Array,
    stability: Array,
    entropy: Array,
    weight_stability: Any,
    weight_coherence: Any,
    weight_entropy: Any,
) -> tuple[Array, Array]:
    """(buy0, sell0) = (wS(1-S) + wC C + wE(1-H), wS S + wC(1-C) + wE H)."""
    buy = weight_stability * (1.0 - stability) + weight_coherence * coherence
    buy += weight_entropy * (1.0 - entropy)
    sell = weight_stability * stability + weight_coherence * (1.0 - coherence)
    sell += weight_entropy * entropy
    return buy, sell


def testbed_signals(
    *,
    coherence: Array,
    stability: Array,
    entropy: Array,
    multiplier: Array,
    volatility: Array,
    weight_stability: Any = 0.40,
    weight_coherence: Any = 0.10,
    weight_entropy: Any = 0.50,
    buy_threshold: Any = 0.50,
    sell_threshold: Any = 0.52,
    min_confidence: Any = 0.65,
    min_coherence: Any = 0.30,
    min_stability: Any = 0.0,
    high_confidence_only: Any = True,
) -> tuple[Array, Array, Array]:
    """Section 5.1: (direction, confidence, high_confidence) for every candle (and set).

    ``multiplier`` is m = vf * tc * pm and ``volatility`` the vm threshold scale, both per candle.
    BUY if buy0 * m > buy_threshold * vm, else SELL if sell0 * m > sell_threshold * vm, else HOLD;
    confidence is the winning score. With ``high_confidence_only`` the signals outside the
    high-confidence gate become HOLD (the population of the original's headline figure).
    """
    xp = array_module(
        coherence=coherence,
        stability=stability,
        entropy=entropy,
        multiplier=multiplier,
        volatility=volatility,
        weight_stability=weight_stability,
        weight_coherence=weight_coherence,
        weight_entropy=weight_entropy,
        buy_threshold=buy_threshold,
        sell_threshold=sell_threshold,
        min_confidence=min_confidence,
        min_coherence=min_coherence,
        min_stability=min_stability,
        high_confidence_only=high_confidence_only,
    )
    buy, sell = testbed_buy_score(
        coherence=coherence,
        stability=stability,
        entropy=entropy,
        weight_stability=weight_stability,
        weight_coherence=weight_coherence,
        weight_entropy=weight_entropy,
    )
    # Training passes (sets, candles) arrays of a few hundred MB through here, so the steps
    # below work in place and avoid nested ``where``: each saved pass is a measurable share.
    buy = buy * multiplier
    sell = sell * multiplier
    is_buy = buy > buy_threshold * volatility
    is_sell = sell > sell_threshold * volatility
    is_sell &= ~is_buy
    direction = is_buy.astype(xp.int8)
    direction -= is_sell
    confidence = xp.where(is_buy, buy, sell)
    confidence *= is_buy | is_sell
    high = confidence >= min_confidence
    high &= direction != HOLD
    high &= coherence >= min_coherence
    high &= stability >= min_stability
    if isinstance(high_confidence_only, bool | np.bool_):
        if high_confidence_only:
            direction *= high
    else:
        direction *= high | ~xp.asarray(high_confidence_only, dtype=bool)
    return direction, confidence, high


def pipeline_signals(
    *,
    coherence: Array,
    stability: Array,
    entropy: Array,
    modifier: Array,
    weight_stability: Any = 0.40,
    weight_coherence: Any = 0.10,
    weight_entropy: Any = 0.50,
) -> tuple[Array, Array]:
    """Section 5.2 M5/M15 pipeline: BUY if buy > sell else SELL, confidence = max(buy, sell)."""
    xp = array_module(
        coherence=coherence,
        stability=stability,
        entropy=entropy,
        modifier=modifier,
        weight_stability=weight_stability,
        weight_coherence=weight_coherence,
        weight_entropy=weight_entropy,
    )
    buy0, sell0 = testbed_buy_score(
        coherence=coherence,
        stability=stability,
        entropy=entropy,
        weight_stability=weight_stability,
        weight_coherence=weight_coherence,
        weight_entropy=weight_entropy,
    )
    buy, sell = buy0 * modifier, sell0 * modifier
    direction = xp.where(buy > sell, BUY, SELL).astype(xp.int8)
    return direction, xp.maximum(buy, sell)


# ---------------------------------------------------------------------------------------------
# Section 5.4: PatternMetricEngine thresholds.


def pattern_threshold_signals(
    *,
    coherence: Array,
    stability: Array,
    entropy: Array,
    buy_min_coherence: Any = 0.7,
    buy_min_stability: Any = 0.6,
    buy_max_entropy: Any = 0.3,
    sell_max_stability: Any = 0.3,
    sell_min_entropy: Any = 0.7,
) -> tuple[Array, Array]:
    """SELL if S < 0.3 and H > 0.7; else BUY if C > 0.7, S > 0.6, H < 0.3; else HOLD.

    Confidence is C * S for a buy and (1 - S) * H for a sell.
    """
    xp = array_module(
        coherence=coherence,
        stability=stability,
        entropy=entropy,
        buy_min_coherence=buy_min_coherence,
        buy_min_stability=buy_min_stability,
        buy_max_entropy=buy_max_entropy,
        sell_max_stability=sell_max_stability,
        sell_min_entropy=sell_min_entropy,
    )
    sell = (stability < sell_max_stability) & (entropy > sell_min_entropy)
    buy = (
        ~sell
        & (coherence > buy_min_coherence)
        & (stability > buy_min_stability)
        & (entropy < buy_max_entropy)
    )
    direction = xp.where(buy, BUY, xp.where(sell, SELL, HOLD)).astype(xp.int8)
    confidence = xp.where(buy, coherence * stability, xp.where(sell, (1 - stability) * entropy, 0))
    return direction, confidence


# ---------------------------------------------------------------------------------------------
# Section 5.2: multi-timeframe confirmation with keys that match.


def closed_bucket_index(
    times: Array, seconds: int, bucket_times: Array, bucket_seconds: int
) -> Array:
    """For each candle starting at ``times`` (epoch seconds, width ``seconds``): the index into
    ``bucket_times`` (sorted start times of the higher timeframe) of the latest higher-timeframe
    candle that had closed by this candle's close, or -1 when that candle is missing.

    The key is the floored bucket start: floor(close / width) * width - width. The original keyed
    on the bucket *containing* the M1 candle, which had not closed yet (and its keys never matched).
    """
    xp = array_module(times=times, bucket_times=bucket_times)
    closes = xp.asarray(times, dtype=xp.int64) + seconds
    key = (closes // bucket_seconds) * bucket_seconds - bucket_seconds
    buckets = xp.asarray(bucket_times, dtype=xp.int64)
    if buckets.shape[-1] == 0:
        return xp.full(key.shape, -1, dtype=xp.int64)
    position = xp.clip(xp.searchsorted(buckets, key), 0, buckets.shape[-1] - 1)
    return xp.where(buckets[position] == key, position, -1).astype(xp.int64)


def gather_closed(values: Array, index: Array, missing: Any = 0) -> Array:
    """``values`` of a higher timeframe (last axis) taken at ``index`` (from
    ``closed_bucket_index``), with ``missing`` where the index is -1."""
    xp = array_module(values=values, index=index, missing=missing)
    safe = xp.where(index >= 0, index, 0)
    return xp.where(index >= 0, values[..., safe], missing)


def confirm(direction: Array, higher: list[tuple[Array, Array]], threshold: Any) -> Array:
    """Keep a signal only where every higher timeframe agrees with confidence above threshold.

    ``higher`` holds (direction, confidence) per higher timeframe, already on the M1 grid
    (``gather_closed``): HOLD where no closed higher candle exists, which never confirms.
    """
    xp = array_module(
        direction=direction,
        threshold=threshold,
        **{f"higher[{i}]": pair[0] for i, pair in enumerate(higher)},
        **{f"higher[{i}] confidence": pair[1] for i, pair in enumerate(higher)},
    )
    keep = direction != HOLD
    for higher_direction, higher_confidence in higher:
        keep = keep & (higher_direction == direction) & (higher_confidence > threshold)
    return xp.where(keep, direction, HOLD).astype(xp.int8)
