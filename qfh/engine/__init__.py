"""QFH engine: the original SEP QFH maths as one batched array program (NumPy or CuPy).

No Django here: everything takes and returns arrays. The API, by task:

Bits from market data (QFH_SPEC.md section 1)
    ``bits_from_closes(closes)``: bit k = close[k+1] > close[k] (ties give 0), along the last axis.
    ``bits_from_prices_pip_threshold(prices, pip=pip_size("USD_JPY"))``: the bridge's
    ``convertPriceToBits`` (moves under a pip repeat the previous bit).
    ``bits_from_uint32(values)``: 32 bits per value, LSB first. ``pip_size(pair)``.

QFH metrics (section 2), all returning a ``QFHBatchResult`` of arrays named like the golden
file's columns (plus ``base_coherence`` C0 and ``decay`` lambda):
    ``analyze_windows(bits_2d, lengths=None, params)``: any batch of windows, any lengths.
    ``analyze_sliding(bits, window, params, out=None)``: every sliding window of a (pairs, bits)
    or (bits,) array; element i covers bits i .. i + window - 1 (memory-bounded blocks, no loop
    per window; ``out`` reuses the arrays of an earlier result).
    ``analyze_trailing(bits, window, params)``: the window ending at every bit j (shorter at the
    start), i.e. the per-candle, causal view; returns (result, lengths).
    Options on all three: ``dtype="float64"|"float32"``, ``original_precision=True`` to round
    where the C++ used float.

The array module (``qfh.engine.backend``): every function computes in the module of its inputs,
NumPy for host arrays and lists, CuPy for device arrays, and refuses inputs from both
(``MixedArraysError``, naming the arguments). Nothing here reads the environment: an entry point
calls ``choose_array_module(QFH_BACKEND or its --backend flag)`` once, moves its inputs with
``xp.asarray``, and copies results back with ``to_numpy`` where it stores them.

Variants and QBSA (sections 3 and 4)
    ``testbed_m1_metrics``, ``pipeline_metrics``, ``bridge_metrics``, ``candle_volatility_pips``,
    ``forward_window_metrics`` + ``pattern_modifier`` (section 5.1 table),
    ``qbsa_correction_ratio(bits_2d)``, ``qbsa_analyze(probes, expectations)``,
    ``duplicate_for_package(bits)``.

Parameters: ``QFHParams`` and ``VariantParams`` (frozen dataclasses, original values by default).

Example::

    from qfh.engine import analyze_sliding, bits_from_closes, choose_array_module
    xp = choose_array_module("auto")
    result = analyze_sliding(bits_from_closes(xp.asarray(closes)), window=11)
    result.coherence, result.damped_value  # one value per window, on xp
"""

from qfh.engine.backend import (
    BackendError,
    MixedArraysError,
    array_module,
    choose_array_module,
    to_numpy,
)
from qfh.engine.batch import analyze_sliding, analyze_trailing, analyze_windows
from qfh.engine.bits import (
    bits_from_closes,
    bits_from_prices_pip_threshold,
    bits_from_uint32,
    parse_bit_strings,
    pip_size,
)
from qfh.engine.metrics import GOLDEN_COLUMNS, QFHBatchResult
from qfh.engine.params import DEFAULT_PARAMS, QFHParams
from qfh.engine.qbsa import duplicate_for_package, qbsa_analyze, qbsa_correction_ratio
from qfh.engine.variants import (
    DEFAULT_VARIANT_PARAMS,
    VariantParams,
    bridge_metrics,
    candle_volatility_pips,
    forward_window_metrics,
    pattern_modifier,
    pipeline_metrics,
    testbed_m1_metrics,
)

__all__ = [
    "DEFAULT_PARAMS",
    "DEFAULT_VARIANT_PARAMS",
    "GOLDEN_COLUMNS",
    "BackendError",
    "MixedArraysError",
    "QFHBatchResult",
    "QFHParams",
    "VariantParams",
    "analyze_sliding",
    "analyze_trailing",
    "analyze_windows",
    "array_module",
    "bits_from_closes",
    "bits_from_prices_pip_threshold",
    "bits_from_uint32",
    "bridge_metrics",
    "candle_volatility_pips",
    "choose_array_module",
    "duplicate_for_package",
    "forward_window_metrics",
    "parse_bit_strings",
    "pattern_modifier",
    "pip_size",
    "pipeline_metrics",
    "qbsa_analyze",
    "qbsa_correction_ratio",
    "testbed_m1_metrics",
    "to_numpy",
]
