"""Batched QFH: every window of every pair in one array program (QFH_SPEC.md section 0.4).

Three engines share the formulas of ``qfh.engine.metrics``:

* ``analyze_windows``: the general dense engine for a batch of windows of any lengths. Counts
  are masked row sums; the damped sum V, the path and its template sums are (windows x width)
  array operations, with e^(-lambda j) gathered from a table over the few distinct lambdas.
* ``analyze_sliding`` with a window of up to ``LOOKUP_MAX_BITS`` bits: every possible window is a
  ``window``-bit integer, so the dense engine evaluates all 2^window of them once and each
  sliding window becomes a table look-up by its bit code.
* ``analyze_sliding`` with a longer window (up to ``CHUNKED_MAX_BITS``): the window is cut into
  8-bit chunks. Inside chunk c the path is A_c (its value before the chunk) plus a partial sum
  that depends only on (lambda, c, first bit, chunk byte), so per-length tables give each
  chunk's end value, its sums and its whole contribution to the template sums: 7 look-ups per
  chunk and a short running sum over the chunks, with no (windows x width) matrix. Longer
  windows go through the dense engine as explicit windows.

Causality holds by construction: a window's numbers come from its own bits only, and window i of
``analyze_sliding`` ends at bit i + window - 1.
"""

from __future__ import annotations

import functools
import math
import operator
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from qfh.engine.backend import array_module, block_items
from qfh.engine.metrics import (
    Array,
    CountMetrics,
    EngineRun,
    FloatType,
    PathConstants,
    QFHBatchResult,
    blend_coherence,
    count_metrics,
    local_decay,
    trajectory_confidence,
)
from qfh.engine.params import DEFAULT_PARAMS, QFHParams

# Windows of up to 16 bits use a table over all 2^16 = 65,536 codes (a few MB): building it costs
# about as much as 65,536 windows, so it pays off from a few hundred thousand windows on.
LOOKUP_MAX_BITS = 16
# On the CPU the dense engine works on blocks of about 2^22 cells (32 MB per float64 temporary).
DENSE_BLOCK_CELLS = 1 << 22
# On the CPU the sliding engines work on blocks of this many windows (over all pairs), so that a
# block's temporaries stay in cache whatever the series length.
SLIDING_BLOCK_WINDOWS = 1 << 16
# On a device blocks follow the free memory (``backend.block_items``) through the peak bytes that
# one item takes while its block is worked on, output excluded: measured with tracemalloc on NumPy
# in float64 (float32 takes less) and rounded up; tests/qfh/test_qfh_blocks.py measures them again.
# The same operations run on CuPy, so the same arrays are allocated there. Measured: 45-61 bytes
# per dense cell (widths 256 to 12), 166 per window up to 16 bits, 359 + 64 per 8-bit chunk above.
DENSE_BYTES_PER_CELL = 64
LOOKUP_BYTES_PER_WINDOW = 176
CHUNKED_BYTES_PER_WINDOW = 384
CHUNKED_BYTES_PER_CHUNK = 64

DTYPES: dict[str, FloatType] = {"float64": np.float64, "float32": np.float32}


def _resolve_dtype(dtype: DTypeLike) -> FloatType:
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
        return DTYPES[dtype]
    resolved = np.dtype(dtype).type
    if resolved is np.float64:
        return np.float64
    if resolved is np.float32:
        return np.float32
    raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")


def _as_bits(bits: Any, xp: ModuleType) -> Array:
    """Bits as a uint8 array on the backend, refusing anything but 0 and 1."""
    array = xp.asarray(bits)
    if array.dtype == bool:
        return array.astype(xp.uint8)
    if array.size and bool(((array != 0) & (array != 1)).any()):
        raise ValueError("bits must contain only 0 and 1")
    return array.astype(xp.uint8)


def _empty_result(shape: tuple[int, ...], xp: ModuleType, ftype: FloatType) -> QFHBatchResult:
    def counts() -> Array:
        return xp.zeros(shape, dtype=xp.int32)

    def floats() -> Array:
        return xp.zeros(shape, dtype=ftype)

    return QFHBatchResult(
        null_count=counts(),
        flip_count=counts(),
        rupture_count=counts(),
        entropy=floats(),
        coherence=floats(),
        rupture_ratio=floats(),
        flip_ratio=floats(),
        collapse=xp.zeros(shape, dtype=bool),
        damped_value=floats(),
        trajectory_confidence=floats(),
        base_coherence=floats(),
        decay=floats(),
    )


def _store(
    target: QFHBatchResult, index: slice | tuple[slice, slice], part: QFHBatchResult
) -> None:
    for name, value in part.as_dict().items():
        getattr(target, name)[index] = value


def _gather_constants(
    table: PathConstants, lengths: Array, xp: ModuleType, ftype: FloatType
) -> dict[str, Array]:
    names = ("sum_k", "sum_k2", "sum_exp2", "sum_sin", "sum_sin2")
    return {name: xp.asarray(getattr(table, name), dtype=ftype)[lengths] for name in names}


@functools.cache
def _path_constants(max_length: int, params: QFHParams) -> PathConstants:
    return PathConstants(max_length, params)


def _finish(
    null: Array,
    flip: Array,
    rupture: Array,
    lengths: Array,
    decay: Array,
    damped: Array,
    confidence: Array,
    run: EngineRun,
    counts: CountMetrics | None = None,
) -> QFHBatchResult:
    """Assemble the result from counts and trajectory parts (0 where there is no trajectory).

    ``counts`` may come precomputed (looked up from a table); by default it is computed here.
    """
    params, xp, ftype = run.params, run.xp, run.ftype
    n = xp.maximum(lengths - 1, 0)
    if counts is None:
        counts = count_metrics(null, flip, rupture, n, run)
    has_trajectory = lengths > params.trajectory_min_bits
    out_type = run.work
    zero = out_type(0)
    damped = xp.where(has_trajectory, damped, zero).astype(out_type, copy=False)
    confidence = xp.where(has_trajectory, confidence, zero).astype(out_type, copy=False)
    blended = blend_coherence(
        counts.base_coherence, confidence, damped, params, xp, run.original_precision
    )
    coherence = xp.where(has_trajectory, blended, counts.base_coherence)
    return QFHBatchResult(
        null_count=null.astype(xp.int32, copy=False),
        flip_count=flip.astype(xp.int32, copy=False),
        rupture_count=rupture.astype(xp.int32, copy=False),
        entropy=counts.entropy.astype(ftype, copy=False),
        coherence=coherence.astype(ftype, copy=False),
        rupture_ratio=counts.rupture_ratio.astype(ftype, copy=False),
        flip_ratio=counts.flip_ratio.astype(ftype, copy=False),
        collapse=(n > 0) & (counts.rupture_ratio >= params.collapse_threshold),
        damped_value=damped.astype(ftype, copy=False),
        trajectory_confidence=confidence.astype(ftype, copy=False),
        base_coherence=counts.base_coherence.astype(ftype, copy=False),
        decay=xp.where(has_trajectory, decay, zero).astype(ftype, copy=False),
    )


def _event_counts(classes: Array, n: Array, xp: ModuleType) -> tuple[Array, Array, Array]:
    """(null, flip, rupture) among the first ``n[i]`` transition classes of each row."""
    in_window = xp.arange(classes.shape[1])[None, :] < n[:, None]
    null = ((classes == 0) & in_window).sum(axis=1)
    rupture = ((classes == 2) & in_window).sum(axis=1)
    return null, n - null - rupture, rupture


def _dense_block(
    bits: Array,
    lengths: Array,
    params: QFHParams,
    xp: ModuleType,
    ftype: FloatType,
    original_precision: bool,
) -> QFHBatchResult:
    """The dense engine on one block of (windows, width) bits; row i holds lengths[i] bits."""
    run = EngineRun(params, xp, ftype, original_precision)
    rows, width = bits.shape
    lengths = lengths.astype(xp.int64)
    # Transition classes 0 (00), 1 (01/10), 2 (11) for each adjacent pair, masked to the window.
    classes = bits[:, :-1] + bits[:, 1:]
    null, flip, rupture = _event_counts(classes, xp.maximum(lengths - 1, 0), xp)
    n_local = xp.maximum(xp.minimum(lengths, params.local_window) - 1, 0)
    null_local, flip_local, rupture_local = _event_counts(classes, n_local, xp)
    decay = local_decay(null_local, flip_local, rupture_local, n_local, run)
    if width <= params.trajectory_min_bits or rows == 0:
        damped = confidence = xp.zeros(rows, dtype=run.work)
    else:
        damped, confidence = _dense_trajectory(bits, lengths, decay, run)
    return _finish(null, flip, rupture, lengths, decay, damped, confidence, run)


def _dense_trajectory(
    bits: Array, lengths: Array, decay: Array, run: EngineRun
) -> tuple[Array, Array]:
    """(damped value V, trajectory confidence) of each row, from its (windows, width) path."""
    xp, params, work_type = run.xp, run.params, run.work
    width = bits.shape[1]
    # e^(-lambda j) is gathered from a table over the distinct lambdas: lambda depends only on
    # the counts of the first 20 bits, so a batch rarely holds more than a few dozen values, and
    # each weight is then computed exactly as the original's std::exp(-lambda * j).
    position = xp.arange(width)
    position_f = position.astype(work_type)
    distinct, which = xp.unique(decay.astype(work_type), return_inverse=True)
    weights = xp.exp(-distinct[:, None] * position_f[None, :])[which.reshape(-1)]
    inside = position[None, :] < lengths[:, None]
    first = bits[:, 0].astype(work_type)
    steps = xp.where(inside, bits.astype(work_type) - first[:, None], 0) * weights
    # A sequential cumulative sum adds the terms in the original's order, so V is bit-identical.
    partial = xp.cumsum(steps, axis=1)
    last_index = xp.maximum(lengths - 1, 0)
    damped = xp.take_along_axis(partial, last_index[:, None], axis=1)[:, 0]
    path = xp.where(inside, partial, 0)
    path[:, 0] = first
    exp_template = xp.exp(-params.exponential_template_rate * position_f)
    distinct_lengths, length_row = xp.unique(lengths, return_inverse=True)
    sines = xp.sin(
        (2.0 * math.pi * position_f[None, :]) / distinct_lengths[:, None].astype(work_type)
    )
    sum_sin_p = (path * sines[length_row.reshape(-1)]).sum(axis=1)
    constants = _gather_constants(_path_constants(width, params), lengths, xp, work_type)
    confidence = trajectory_confidence(
        first,
        damped,
        lengths,
        path.sum(axis=1),
        (path * path).sum(axis=1),
        (path * position_f).sum(axis=1),
        (path * exp_template).sum(axis=1),
        sum_sin_p,
        constants,
        params,
        xp,
    )
    return damped, confidence


def dense_block_rows(xp: ModuleType, width: int) -> int:
    """Rows (windows of ``width`` bits) per block of the dense engine on ``xp``."""
    cells = block_items(xp, host_items=DENSE_BLOCK_CELLS, bytes_per_item=DENSE_BYTES_PER_CELL)
    return max(1, cells // max(width, 1))


def analyze_windows(
    bits: Any,
    lengths: Any = None,
    params: QFHParams = DEFAULT_PARAMS,
    *,
    dtype: DTypeLike = "float64",
    original_precision: bool = False,
) -> QFHBatchResult:
    """`QFHBasedProcessor::analyze` for each row of ``bits`` (windows, width).

    ``lengths`` gives each row's number of bits (the rest of the row is ignored); by default every
    row is ``width`` bits long. The result holds one element per window, in the array module of
    the inputs (NumPy for host arrays and lists, CuPy for device arrays).
    """
    xp = array_module(bits=bits, lengths=lengths)
    ftype = _resolve_dtype(dtype)
    matrix = _as_bits(bits, xp)
    if matrix.ndim != 2:
        raise ValueError(f"bits must be 2-D (windows, width), got shape {matrix.shape}")
    rows, width = matrix.shape
    if lengths is None:
        lengths_array = xp.full(rows, width, dtype=xp.int64)
    else:
        lengths_array = xp.asarray(lengths, dtype=xp.int64).reshape(-1)
        if lengths_array.shape[0] != rows:
            raise ValueError(f"lengths has {lengths_array.shape[0]} entries for {rows} windows")
        if rows and bool(((lengths_array < 0) | (lengths_array > width)).any()):
            raise ValueError(f"lengths must lie in [0, {width}]")
    result = _empty_result((rows,), xp, ftype)
    block = dense_block_rows(xp, width)
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        part = _dense_block(
            matrix[start:stop], lengths_array[start:stop], params, xp, ftype, original_precision
        )
        _store(result, slice(start, stop), part)
    return result


@functools.cache
def _lookup_table(window: int, run: EngineRun) -> QFHBatchResult:
    """The metrics of every possible ``window``-bit window, indexed by its code sum(b_t << t)."""
    xp = run.xp
    codes = xp.arange(1 << window, dtype=xp.int64)
    shifts = xp.arange(window, dtype=xp.int64)
    patterns = ((codes[:, None] >> shifts[None, :]) & 1).astype(xp.uint8)
    return analyze_windows(
        patterns, None, run.params, dtype=run.ftype, original_precision=run.original_precision
    )


def _sliding_codes(series: Array, start: int, count: int, window: int, xp: ModuleType) -> Array:
    """Code sum(b[s + t] << t) of the windows starting at start..start+count-1 of each row."""
    code = xp.zeros((*series.shape[:-1], count), dtype=xp.int64)
    for offset in range(window):
        # One shifted add per bit position (not per window): window passes over the block.
        code |= series[..., start + offset : start + offset + count].astype(xp.int64) << offset
    return code


def sliding_bytes_per_window(window: int) -> int:
    """Peak bytes one sliding window takes while its block is worked on (float64)."""
    if window <= LOOKUP_MAX_BITS:
        return LOOKUP_BYTES_PER_WINDOW
    if window <= CHUNKED_MAX_BITS:
        chunks = -(-window // CHUNK_BITS)
        return CHUNKED_BYTES_PER_WINDOW + CHUNKED_BYTES_PER_CHUNK * chunks
    return DENSE_BYTES_PER_CELL * window


def sliding_block_windows(xp: ModuleType, window: int) -> int:
    """Windows (over all pairs) per block of ``analyze_sliding`` on ``xp``: cache-sized on the
    CPU, a share of the free device memory on a GPU."""
    return block_items(
        xp, host_items=SLIDING_BLOCK_WINDOWS, bytes_per_item=sliding_bytes_per_window(window)
    )


def analyze_sliding(
    bits: Any,
    window: int,
    params: QFHParams = DEFAULT_PARAMS,
    *,
    dtype: DTypeLike = "float64",
    original_precision: bool = False,
    block_windows: int | None = None,
    out: QFHBatchResult | None = None,
) -> QFHBatchResult:
    """QFH of every ``window``-bit sliding window of a series (1-D) or of many series (2-D).

    For a series of N bits the result has N - window + 1 elements per series; element i is the
    window of bits i .. i + window - 1, so it depends on bits up to i + window - 1 only.

    ``block_windows`` bounds the windows worked on at once (``sliding_block_windows`` by default).
    ``out`` (a result of an earlier call with the same shapes and dtype) is filled in place and
    returned: a caller that analyses series after series saves allocating and first-touching
    about 80 bytes per window, which costs as much as the analysis itself on some machines.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 bit, got {window}")
    xp = array_module(bits=bits, out=None if out is None else out.coherence)
    ftype = _resolve_dtype(dtype)
    series = _as_bits(bits, xp)
    if series.ndim not in (1, 2):
        raise ValueError(f"bits must be 1-D or 2-D (pairs, bits), got shape {series.shape}")
    flat = series.reshape(-1, series.shape[-1])
    count = max(flat.shape[1] - window + 1, 0)
    shape = (*series.shape[:-1], count)
    if out is None:
        result = _empty_result((flat.shape[0], count), xp, ftype)
    else:
        expected = _empty_result((0,), xp, ftype)
        for name, column in out.as_dict().items():
            if column.shape != shape or column.dtype != getattr(expected, name).dtype:
                raise ValueError(
                    f"out.{name} must have shape {shape} and dtype "
                    f"{getattr(expected, name).dtype}, got {column.shape} {column.dtype}"
                )
        result = out.map(lambda column: column.reshape(flat.shape[0], count))
    # A block holds about block_windows windows over all pairs, whatever the number of pairs.
    if block_windows is None:
        block_windows = sliding_block_windows(xp, window)
    per_pair = max(1, block_windows // max(flat.shape[0], 1))
    run = EngineRun(params, xp, ftype, original_precision)
    for start in range(0, count, per_pair):
        stop = min(count, start + per_pair)
        if window <= LOOKUP_MAX_BITS:
            table = _lookup_table(window, run)
            codes = _sliding_codes(flat, start, stop - start, window, xp)
            # Every column of the table looked up at the block's codes: column[codes].
            part = table.map(operator.itemgetter(codes))
        elif window > CHUNKED_MAX_BITS:
            part = _dense_sliding(flat, start, stop - start, window, run)
        else:
            part = _chunked_sliding(flat, start, stop - start, window, run)
        _store(result, (slice(None), slice(start, stop)), part)
    return out if out is not None else result.map(lambda column: column.reshape(shape))


def analyze_trailing(
    bits: Any,
    window: int,
    params: QFHParams = DEFAULT_PARAMS,
    *,
    dtype: DTypeLike = "float64",
    original_precision: bool = False,
) -> tuple[QFHBatchResult, Array]:
    """QFH of the window ending at each bit j: bits[max(0, j - window + 1) : j + 1].

    This is the per-candle view the signal rules use: element j depends on bits <= j only. The
    first window - 1 windows are shorter; their lengths come back as the second value (a window
    of one bit has no events and scores 0 everywhere, as in the original).
    """
    xp = array_module(bits=bits)
    ftype = _resolve_dtype(dtype)
    series = _as_bits(bits, xp)
    flat = series.reshape(-1, series.shape[-1])
    pairs, total = flat.shape
    head = min(window - 1, total)
    lengths = xp.minimum(xp.arange(total, dtype=xp.int64) + 1, window)
    result = _empty_result((pairs, total), xp, ftype)
    if head:
        # Head window j holds bits 0..j, left-aligned in a (pairs * head, head) matrix.
        position = xp.arange(head)
        head_bits = xp.broadcast_to(flat[:, None, :head], (pairs, head, head))
        head_bits = xp.where(position[None, None, :] <= position[None, :, None], head_bits, 0)
        head_lengths = xp.broadcast_to(position + 1, (pairs, head)).reshape(-1)
        part = analyze_windows(
            head_bits.reshape(pairs * head, head),
            head_lengths,
            params,
            dtype=ftype,
            original_precision=original_precision,
        )
        _store(result, (slice(None), slice(0, head)), part.map(lambda c: c.reshape(pairs, head)))
    if total >= window:
        body = analyze_sliding(
            flat, window, params, dtype=ftype, original_precision=original_precision
        )
        _store(result, (slice(None), slice(window - 1, total)), body)
    shape = series.shape
    return result.map(lambda column: column.reshape(shape)), xp.broadcast_to(lengths, shape)


CHUNK_BITS = 8
# Per (lambda, chunk, first bit, code) the table holds 7 numbers about the chunk's partial sums
# P_t = sign * sum_(t' <= t) e_t' e^(-lambda (8c + t')): P at the chunk's end, sum P, sum P^2,
# and the chunk's whole contribution to sum S, sum k S, sum e^(-0.1k) S and sum sin(2 pi k/W) S.
CHUNK_STATS = 7
# The per-chunk tables take about 29 KB per (lambda, chunk) in float64, with up to 210 lambdas:
# 34 MB at 64 bits, 136 MB at 256. Longer windows go through the dense engine instead.
CHUNKED_MAX_BITS = 256


class _ChunkTables:
    """Per-window-length tables of the chunked sliding engine (built once, cached)."""

    def __init__(self, window: int, run: EngineRun) -> None:
        xp, params = run.xp, run.params
        self.chunks = -(-window // CHUNK_BITS)
        self.local_events = min(params.local_window, window) - 1
        self.side = self.local_events + 1
        self.decays, self.decay_index = _decay_table(self.local_events, run)
        ends = np.minimum((np.arange(self.chunks) + 1) * CHUNK_BITS, window)
        stats = _chunk_statistics(window, self.chunks, ends, self.decays, run)
        self.stat_tables = [xp.ascontiguousarray(stats[:, m]) for m in range(CHUNK_STATS)]
        self.sizes = [float(size) for size in ends - np.arange(self.chunks) * CHUNK_BITS]
        # With the window length fixed, (null, rupture) determine entropy, ratios and C0.
        null_all = xp.repeat(xp.arange(window), window)
        rupture_all = xp.tile(xp.arange(window), window)
        self.count_table = count_metrics(
            null_all,
            window - 1 - null_all - rupture_all,
            rupture_all,
            xp.full(window * window, window - 1),
            run,
        )
        constants = _path_constants(window, params)
        self.constants = {
            name: xp.asarray(getattr(constants, name)[window], dtype=run.work)
            for name in ("sum_k", "sum_k2", "sum_exp2", "sum_sin", "sum_sin2")
        }


def _decay_table(local_events: int, run: EngineRun) -> tuple[Array, Array]:
    """The distinct lambdas, and for each (null, rupture) count pair of the first 20 bits
    (row null * (local_events + 1) + rupture) the index of its lambda.

    lambda depends only on those counts, so it is tabulated for every pair and the distinct
    values index the chunk tables.
    """
    xp = run.xp
    side = local_events + 1
    null = xp.repeat(xp.arange(side), side)
    rupture = xp.tile(xp.arange(side), side)
    flip = local_events - null - rupture
    events = xp.full(side * side, local_events)
    decay = local_decay(null, flip, rupture, events, run)
    # Impossible pairs (null + rupture > events) get the first valid lambda; never looked up.
    decay = xp.where(flip >= 0, decay, decay[0])
    decays, which = xp.unique(decay.astype(run.work), return_inverse=True)
    return decays, which.reshape(-1).astype(xp.int32)


def _chunk_templates(
    window: int, chunks: int, ends: NDArray[np.int64], run: EngineRun
) -> tuple[Array, Array, Array, Array]:
    """Per chunk position: k, whether it lies inside the window, the four templates' weights
    (1, k, e^(-0.1k), sin(2 pi k/W)) as (4, chunks, 8), and the sums of the same four over the
    positions after each chunk as (chunks, 4) (a chunk's end value shifts every later point)."""
    xp, work = run.xp, run.work
    rate = run.params.exponential_template_rate
    position = np.arange(chunks)[:, None] * CHUNK_BITS + np.arange(CHUNK_BITS)[None, :]
    inside = position < window
    k = xp.asarray(position, dtype=work)
    used = xp.asarray(inside, dtype=work)
    all_k = np.arange(window, dtype=np.float64)
    exp_k = np.exp(-rate * all_k)
    sin_k = np.sin(2.0 * math.pi * all_k / window)
    after = np.array(
        [[window - end, all_k[end:].sum(), exp_k[end:].sum(), sin_k[end:].sum()] for end in ends]
    )
    template = xp.stack(
        [
            used,
            k * used,
            xp.asarray(np.where(inside, np.exp(-rate * position), 0)),
            xp.asarray(np.where(inside, np.sin(2.0 * math.pi * position / window), 0)),
        ]
    ).astype(work)
    return k, used, template, xp.asarray(after, dtype=work)


def _chunk_statistics(
    window: int, chunks: int, ends: NDArray[np.int64], decays: Array, run: EngineRun
) -> Array:
    """The ``CHUNK_STATS`` numbers of every (lambda, chunk, first bit, code), one row each:
    ((lambda index * chunks + chunk) * 2 + first bit) * 256 + code."""
    xp, work = run.xp, run.work
    k, used, template, after = _chunk_templates(window, chunks, ends, run)
    # The weights are e^(-lambda j) for the window position j, as in the original.
    weights = xp.exp(-decays[:, None, None] * k[None, :, :]) * used[None, :, :]
    codes = xp.arange(1 << CHUNK_BITS)
    code_bits = ((codes[:, None] >> xp.arange(CHUNK_BITS)[None, :]) & 1).astype(work)
    halves = []
    for first_bit in (0, 1):
        # d_j = b_j - b_0: the chunk's bits when b_0 = 0, minus their complement when b_0 = 1.
        steps = code_bits if first_bit == 0 else 1 - code_bits
        sign = 1.0 if first_bit == 0 else -1.0
        terms = steps[None, None, :, :] * weights[:, :, None, :]  # (lambdas, chunks, codes, 8)
        running = sign * xp.cumsum(terms, axis=3)
        # Weights past a short last chunk are 0, so the running sum's last entry is the
        # chunk's end value; the points past the window are then masked out of the sums.
        end = running[..., CHUNK_BITS - 1]
        partial = running * used[None, :, None, :]
        linear = [
            (partial * template[m][None, :, None, :]).sum(axis=3) + after[None, :, None, m] * end
            for m in range(4)
        ]
        stats = xp.stack(
            [end, partial.sum(axis=3), (partial * partial).sum(axis=3), *linear], axis=3
        )
        halves.append(stats)  # (lambdas, chunks, codes, CHUNK_STATS)
    return xp.stack(halves, axis=2).reshape(-1, CHUNK_STATS)


@functools.cache
def _chunk_tables(window: int, run: EngineRun) -> _ChunkTables:
    return _ChunkTables(window, run)


def _chunked_sliding(
    flat: Array, start: int, count: int, window: int, run: EngineRun
) -> QFHBatchResult:
    """Sliding windows of more than ``LOOKUP_MAX_BITS`` bits, with O(window / 8) work each.

    With S_k = sum_(j=1..k) (b_j - b_0) e^(-lambda j) and the window cut into 8-bit chunks,
    S inside chunk c is A_c + P_t: A_c is S before the chunk and P_t a partial sum over the
    chunk's code (its bits, complemented and negated when b_0 = 1) that depends only on
    (lambda, chunk, b_0, code), so it is looked up. Every template sum is linear in the chunks'
    looked-up numbers (a chunk's end value shifts all later points, which the tables fold in);
    only sum S^2 needs A_c, an exclusive cumulative sum over the chunks.

    """
    xp = run.xp
    tables = _chunk_tables(window, run)
    pairs = flat.shape[0]
    span = flat[:, start : start + count + window - 1]
    null, flip, rupture, which, decay = _sliding_counts(span, count, window, tables, xp)
    first = span[:, :count].astype(xp.int64)
    rows = _chunk_rows(span, count, which.reshape(pairs, count), first, tables, xp)
    damped, confidence = _chunk_trajectory(rows, first.reshape(-1), window, tables, run)
    pair_index = null * window + rupture
    counts = CountMetrics(
        **{
            name: xp.take(getattr(tables.count_table, name), pair_index)
            for name in ("entropy", "rupture_ratio", "flip_ratio", "base_coherence")
        }
    )
    lengths = xp.full(pairs * count, window, dtype=xp.int64)
    part = _finish(null, flip, rupture, lengths, decay, damped, confidence, run, counts=counts)
    return part.map(lambda column: column.reshape(pairs, count))


def _sliding_counts(
    span: Array, count: int, window: int, tables: _ChunkTables, xp: ModuleType
) -> tuple[Array, Array, Array, Array, Array]:
    """(null, flip, rupture, lambda index, lambda) of the ``count`` windows starting in
    ``span``, flat over (pairs, count): transition counts from prefix sums, O(1) per window."""
    classes = span[:, :-1] + span[:, 1:]
    zero = xp.zeros((span.shape[0], 1), dtype=xp.int32)
    null_sum = xp.concatenate([zero, xp.cumsum(classes == 0, axis=1, dtype=xp.int32)], axis=1)
    rupture_sum = xp.concatenate([zero, xp.cumsum(classes == 2, axis=1, dtype=xp.int32)], axis=1)

    def within(prefix: Array, events: int) -> Array:
        # The count among the first ``events`` transitions of every window.
        return (prefix[:, events : events + count] - prefix[:, :count]).reshape(-1)

    events = window - 1
    null, rupture = within(null_sum, events), within(rupture_sum, events)
    local = tables.local_events
    which = xp.take(
        tables.decay_index, within(null_sum, local) * tables.side + within(rupture_sum, local)
    )
    return null, events - null - rupture, rupture, which, xp.take(tables.decays, which)


def _chunk_rows(
    span: Array, count: int, which: Array, first: Array, tables: _ChunkTables, xp: ModuleType
) -> Array:
    """The stat-table row of every (chunk, window): ((lambda index * chunks + c) * 2 + b_0) *
    256 + the chunk's byte code, as a chunk-major (chunks, windows) array."""
    pairs = span.shape[0]
    # Byte codes of every start position: CHUNK_BITS shifted adds over the block.
    padded = xp.concatenate([span, xp.zeros((pairs, CHUNK_BITS), dtype=span.dtype)], axis=1)
    width = count + CHUNK_BITS * (tables.chunks - 1)
    byte = xp.zeros((pairs, width), dtype=xp.int32)
    for offset in range(CHUNK_BITS):
        byte |= padded[:, offset : offset + width].astype(xp.int32) << offset
    base = ((which * tables.chunks) * 2 + first) * (1 << CHUNK_BITS)
    # Chunk-major layout: every per-chunk array below is contiguous over the windows.
    rows = xp.empty((tables.chunks, pairs, count), dtype=xp.int64)
    for c in range(tables.chunks):
        begin = CHUNK_BITS * c
        rows[c] = byte[:, begin : begin + count] + (base + c * 2 * (1 << CHUNK_BITS))
    return rows.reshape(tables.chunks, pairs * count)


def _chunk_trajectory(
    rows: Array, first: Array, window: int, tables: _ChunkTables, run: EngineRun
) -> tuple[Array, Array]:
    """(damped value V, trajectory confidence) of every window from its chunks' table rows."""
    xp = run.xp
    windows = rows.shape[1]
    # One gather per statistic from its own table, so that each is a contiguous
    # (chunks, windows) array and the operations below run over contiguous memory.
    looked_up = [xp.take(table, rows) for table in tables.stat_tables]
    totals = [values.sum(axis=0) for values in looked_up]
    # sum S^2 = sum_c (size_c A_c^2 + 2 A_c sum P + sum P^2), where A_c, the value of S before
    # chunk c, is a running sum of the chunks' end values (a loop over the 8-bit chunks).
    ends, partial_sums = looked_up[0], looked_up[1]
    before = xp.zeros(windows, dtype=ends.dtype)
    sum_s2 = totals[2].copy()
    for c in range(1, tables.chunks):
        before += ends[c - 1]
        sum_s2 += (tables.sizes[c] * before + 2 * partial_sums[c]) * before
    first_f = first.astype(run.work)
    damped = totals[0]
    confidence = trajectory_confidence(
        first_f,
        damped,
        xp.full(windows, window, dtype=xp.int64),
        totals[3] + first_f,
        sum_s2 + first_f,
        totals[4],
        totals[5] + first_f,
        totals[6],
        tables.constants,
        run.params,
        xp,
    )
    return damped, confidence


def _dense_sliding(
    flat: Array, start: int, count: int, window: int, run: EngineRun
) -> QFHBatchResult:
    """Sliding windows too long for the chunk tables: explicit windows through the dense engine."""
    xp = run.xp
    pairs = flat.shape[0]
    starts = xp.arange(start, start + count)
    matrix = flat[:, starts[:, None] + xp.arange(window)[None, :]].reshape(pairs * count, window)
    part = analyze_windows(
        matrix, None, run.params, dtype=run.ftype, original_precision=run.original_precision
    )
    return part.map(lambda column: column.reshape(pairs, count))
