"""Elementwise QFH formulas: from transition counts and trajectory sums to the golden columns.

Everything here works on whole arrays (one element per window) through ``xp``, so the same code
serves the dense engine, the lookup-table engine and CuPy. Two precisions exist:

* the spec precision (``original_precision=False``): every formula in ``dtype`` (float64 by
  default), as in the Python port that produced the test vectors of QFH_SPEC.md section 2.5;
* the original precision (``original_precision=True``): the operations that the C++ code does in
  ``float`` are rounded to float32 exactly where it did. The golden file was produced that way, and
  this mode reproduces all of its printed digits (see ``tests/qfh/test_golden.py``). In the C++
  code the `QFHResult` fields are ``double`` but the locals (`null_ratio`, `pattern_coherence`,
  `stability_factor`, ...) and the literals (``1.585f``, ``1.2f``) are ``float``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import ModuleType
from typing import Any, cast

import numpy as np

from qfh.engine.params import QFHParams

# A NumPy or CuPy array: the engine computes in the module of its inputs, and CuPy ships no type
# information, so device and host arrays share this alias (host-only values are NDArray).
Array = Any
# The float types an analysis computes and returns in.
FloatType = type[np.float64] | type[np.float32]

GOLDEN_COLUMNS = (
    "null_count",
    "flip_count",
    "rupture_count",
    "entropy",
    "coherence",
    "rupture_ratio",
    "flip_ratio",
    "collapse",
    "damped_value",
    "trajectory_confidence",
)


@dataclass(frozen=True)
class QFHBatchResult:
    """QFH metrics for a batch of windows: one array per quantity, all of the same shape.

    The first ten fields are the golden file's columns (``GOLDEN_COLUMNS``). ``base_coherence`` is
    C0 before the trajectory blend and ``decay`` is the window's damping rate lambda; both, like
    ``damped_value`` and ``trajectory_confidence``, are 0 for windows of ``trajectory_min_bits``
    bits or fewer (the original skips the trajectory there), except ``base_coherence``.
    """

    null_count: Array
    flip_count: Array
    rupture_count: Array
    entropy: Array
    coherence: Array
    rupture_ratio: Array
    flip_ratio: Array
    collapse: Array
    damped_value: Array
    trajectory_confidence: Array
    base_coherence: Array
    decay: Array

    def columns(self) -> dict[str, Array]:
        """The golden columns, in the golden file's order."""
        return {name: getattr(self, name) for name in GOLDEN_COLUMNS}

    def as_dict(self) -> dict[str, Array]:
        """Every field, by name."""
        return {field.name: getattr(self, field.name) for field in fields(self)}

    def map(self, function: Callable[[Array], Array]) -> QFHBatchResult:
        """A result with ``function`` applied to every array (reshaping, copying to the host...)."""
        return QFHBatchResult(**{name: function(value) for name, value in self.as_dict().items()})

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.entropy.shape)


@dataclass(frozen=True)
class CountMetrics:
    """What the transition counts alone determine (QFH_SPEC.md section 2.2)."""

    entropy: Array
    rupture_ratio: Array
    flip_ratio: Array
    base_coherence: Array


def _safe_counts(n: Array, xp: ModuleType, ftype: FloatType) -> Array:
    # A window of one bit has no events; the original then leaves every field at 0, and dividing
    # by 1 instead of 0 keeps the arrays free of NaN before the final ``where``.
    return xp.where(n > 0, n, 1).astype(ftype)


@functools.cache
def _libm_log2f() -> Callable[[float], float]:
    libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    log2f = libm.log2f
    log2f.restype = ctypes.c_float
    log2f.argtypes = [ctypes.c_float]
    return cast(Callable[[float], float], log2f)


def _log2(values: Array, xp: ModuleType, ftype: FloatType) -> Array:
    """log2 in ``ftype``; in float32 on the CPU, the C library's ``log2f`` as the original called.

    NumPy's own float32 log2 takes a vectorised AVX-512 path where the CPU has it, a few units in
    the last place away from ``log2f`` (and float64 rounded once is not ``log2f`` either): the
    golden file matched on one machine and not on another. The ratios are count/n with small
    integers, so a batch holds few distinct values: each is computed once by ``log2f``.
    """
    if xp is not np or np.dtype(ftype) != np.float32:
        return xp.log2(values)
    distinct, where = np.unique(values, return_inverse=True)
    log2f = _libm_log2f()
    logs = np.array([log2f(float(value)) for value in distinct], dtype=np.float32)
    return logs[where.reshape(values.shape)]


def entropy_sum(
    null: Array, flip: Array, rupture: Array, n: Array, xp: ModuleType, ftype: FloatType
) -> tuple[Array, Array, Array]:
    """-(sum p*log2 p) over the three event classes, and the flip and rupture ratios, in ``ftype``.

    The terms are added in the original's order (null, flip, rupture), which matters in float32.
    """
    total = _safe_counts(n, xp, ftype)
    ratios = [count.astype(ftype) / total for count in (null, flip, rupture)]
    one = ftype(1)
    terms = [
        xp.where(p > 0, p * _log2(xp.where(p > 0, p, one), xp, ftype), ftype(0)) for p in ratios
    ]
    return -((terms[0] + terms[1]) + terms[2]), ratios[1], ratios[2]


@dataclass(frozen=True)
class EngineRun:
    """What every step of one analysis shares: the constants, the array module, the output
    float type and whether to round where the C++ used float (hashable: it keys the caches)."""

    params: QFHParams
    xp: ModuleType
    ftype: FloatType
    original_precision: bool = False

    @property
    def work(self) -> FloatType:
        """The float type of lambda and the trajectory: float64 in the original precision (the
        C++ used doubles there), else the output type."""
        return np.float64 if self.original_precision else self.ftype


def _clamped_entropy(total: Array, params: QFHParams, xp: ModuleType, ftype: FloatType) -> Array:
    """The entropy sum normalised by 1.585 and clamped to [0.05, 1], in ``ftype``."""
    entropy = total.astype(ftype, copy=False) / ftype(params.entropy_normaliser)
    return xp.maximum(
        ftype(params.entropy_floor), xp.minimum(ftype(params.entropy_ceiling), entropy)
    )


def count_metrics(
    null: Array, flip: Array, rupture: Array, n: Array, run: EngineRun
) -> CountMetrics:
    """Entropy, ratios and base coherence C0 from the counts (arrays of the same shape)."""
    params, xp = run.params, run.xp
    has_events = n > 0
    if run.original_precision:
        f32, f64 = np.float32, np.float64
        total, flip_ratio32, rupture_ratio32 = entropy_sum(null, flip, rupture, n, xp, f32)
        # `result.entropy` is a double, but the sum was computed in float and 1.585f is a float.
        entropy = total.astype(f64) / f64(f32(params.entropy_normaliser))
        entropy = xp.maximum(
            f64(f32(params.entropy_floor)), xp.minimum(f64(f32(params.entropy_ceiling)), entropy)
        )
        rupture_ratio = rupture_ratio32.astype(f64)
        flip_ratio = flip_ratio32.astype(f64)
        # `float x = (1.0f - result.entropy) * 1.2f` is evaluated in double and stored as float.
        pattern = ((1.0 - entropy) * f64(f32(params.pattern_boost))).astype(f32)
        stability = ((1.0 - rupture_ratio) * f64(f32(params.stability_boost))).astype(f32)
        flipc = ((1.0 - flip_ratio) * f64(f32(params.flip_boost))).astype(f32)
        raw = (
            pattern * f32(params.pattern_weight)
            + stability * f32(params.stability_weight)
            + flipc * f32(params.flip_weight)
        )
        base = xp.maximum(f32(0), xp.minimum(f32(1), raw * raw * f32(params.coherence_scale)))
        base = base.astype(f64)
    else:
        ftype = run.ftype
        total, flip_ratio, rupture_ratio = entropy_sum(null, flip, rupture, n, xp, ftype)
        entropy = _clamped_entropy(total, params, xp, ftype)
        raw = (
            (1 - entropy) * ftype(params.pattern_boost) * ftype(params.pattern_weight)
            + (1 - rupture_ratio) * ftype(params.stability_boost) * ftype(params.stability_weight)
            + (1 - flip_ratio) * ftype(params.flip_boost) * ftype(params.flip_weight)
        )
        base = xp.clip(raw * raw * ftype(params.coherence_scale), 0, 1)
    zero = entropy.dtype.type(0)
    return CountMetrics(
        entropy=xp.where(has_events, entropy, zero),
        rupture_ratio=xp.where(has_events, rupture_ratio, zero),
        flip_ratio=xp.where(has_events, flip_ratio, zero),
        base_coherence=xp.where(has_events, base, zero),
    )


def local_decay(null: Array, flip: Array, rupture: Array, n: Array, run: EngineRun) -> Array:
    """lambda of `integrateFutureTrajectories` from the counts of the first 20 bits (section 2.3).

    The original computes the entropy sum in float but the normalisation, the clamp and lambda in
    double (its literals there are doubles), so only the sum is float32 in the original precision.
    """
    params, xp, ftype = run.params, run.xp, run.work
    sum_type = np.float32 if run.original_precision else ftype
    total, _, _ = entropy_sum(null, flip, rupture, n, xp, sum_type)
    entropy = _clamped_entropy(total, params, xp, ftype)
    entropy = xp.where(n > 0, entropy, ftype(params.default_local_entropy))
    coherence = 1 - entropy
    decay = ftype(params.lambda_entropy_weight) * entropy + ftype(
        params.lambda_coherence_weight
    ) * (1 - coherence)
    return xp.maximum(ftype(params.lambda_min), xp.minimum(ftype(params.lambda_max), decay))


class PathConstants:
    """Sums over k = 0..L-1 that the template norms need, tabulated for every L up to a maximum.

    They are summed term by term in float64 (not by closed forms), so that sum(sin(2 pi k / L))
    carries the same rounding as the original's loop.
    """

    def __init__(self, max_length: int, params: QFHParams) -> None:
        lengths = np.arange(max_length + 1)
        k = np.arange(max(max_length, 1), dtype=np.float64)
        decay = np.exp(-params.exponential_template_rate * k)
        self.sum_k = lengths * (lengths - 1) / 2.0
        self.sum_k2 = (lengths - 1) * lengths * (2 * lengths - 1) / 6.0
        self.sum_exp2 = np.concatenate([[0.0], np.cumsum(decay * decay)])[: max_length + 1]
        self.sum_sin = np.zeros(max_length + 1)
        self.sum_sin2 = np.zeros(max_length + 1)
        for length in range(1, max_length + 1):
            sines = np.sin(2.0 * math.pi * np.arange(length) / length)
            self.sum_sin[length] = sines.sum()
            self.sum_sin2[length] = (sines * sines).sum()


def inverse_norm(norm2: Array, xp: ModuleType) -> Array:
    """1/sqrt(norm2), or 0 where the norm is 0: a zero vector has cosine 0 with anything.

    This is `calculateCosineSimilarity`'s "0 if either norm is 0" rule, with the division turned
    into multiplications so that the three template cosines share the path's norm.
    """
    positive = norm2 > 0
    return xp.where(positive, 1 / xp.sqrt(xp.where(positive, norm2, 1)), 0)


def trajectory_confidence(
    first: Array,
    last: Array,
    length: Array,
    sum_p: Array,
    sum_p2: Array,
    sum_kp: Array,
    sum_exp_p: Array,
    sum_sin_p: Array,
    constants: dict[str, Array],
    params: QFHParams,
    xp: ModuleType,
) -> Array:
    """`matchKnownPaths` from the path's sums (section 2.4), without materialising templates.

    With k = 0..L-1 and path P: the exponential template is P0*e^(-0.1k), the linear one
    P0 + s*k with s = (P_last - P0)/(L-1), the sinusoid m + a*sin(2 pi k/L). Each dot product
    and template norm expands into the sums passed in and the per-length ``constants``.
    """
    ftype = sum_p.dtype.type
    length_f = length.astype(ftype)
    path_scale = inverse_norm(sum_p2, xp)
    exp_similarity = first * sum_exp_p * inverse_norm(first * first * constants["sum_exp2"], xp)
    slope = (last - first) / xp.maximum(length_f - 1, 1)
    linear_norm2 = (
        length_f * first * first
        + 2 * first * slope * constants["sum_k"]
        + slope * slope * constants["sum_k2"]
    )
    linear_similarity = (first * sum_p + slope * sum_kp) * inverse_norm(linear_norm2, xp)
    mean = (last + first) / 2
    amplitude = (last - first) / 2
    sine_norm2 = (
        length_f * mean * mean
        + 2 * mean * amplitude * constants["sum_sin"]
        + amplitude * amplitude * constants["sum_sin2"]
    )
    sine_similarity = (mean * sum_p + amplitude * sum_sin_p) * inverse_norm(sine_norm2, xp)
    best = xp.maximum(xp.maximum(exp_similarity, linear_similarity), sine_similarity)
    best = xp.clip(best * path_scale, 0, 1)
    return xp.where(length >= params.match_min_path, best, ftype(params.match_default_confidence))


def blend_coherence(
    base: Array,
    confidence: Array,
    damped: Array,
    params: QFHParams,
    xp: ModuleType,
    original_precision: bool = False,
) -> Array:
    """C = 0.3*T + 0.7*C0, divided by 1 + 0.1|V| when |V| < 2, clamped to [0, 1]."""
    if original_precision:
        f32, f64 = np.float32, np.float64
        blended = (
            f32(params.trajectory_weight) * confidence.astype(f32)
            + f32(params.base_coherence_weight) * base.astype(f32)
        ).astype(f64)
        factor = f32(1) / (f32(1) + f32(params.damping_coefficient) * xp.abs(damped.astype(f32)))
        blended = xp.where(xp.abs(damped) < params.damping_guard, blended * factor, blended)
        return xp.maximum(f64(0), xp.minimum(f64(1), blended))
    ftype = base.dtype.type
    blended = (
        ftype(params.trajectory_weight) * confidence + ftype(params.base_coherence_weight) * base
    )
    factor = 1 / (1 + ftype(params.damping_coefficient) * xp.abs(damped))
    blended = xp.where(xp.abs(damped) < ftype(params.damping_guard), blended * factor, blended)
    return xp.clip(blended, 0, 1)
