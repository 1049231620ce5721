"""From market data to bit streams (QFH_SPEC.md section 1).

All functions work along the last axis, so a (pairs, candles) array gives (pairs, bits) at once,
in the array module of their input.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from qfh.engine.backend import array_module
from qfh.engine.metrics import Array

# OANDA quotes JPY crosses to 3 decimals (pip 0.01) and the other majors to 5 (pip 0.0001).
JPY_PIP = 0.01
STANDARD_PIP = 0.0001


def pip_size(pair: str) -> float:
    """Pip size of an OANDA instrument name such as ``EUR_USD`` or ``USD_JPY``."""
    quote = pair.replace("/", "_").upper().split("_")[-1]
    return JPY_PIP if quote == "JPY" else STANDARD_PIP


def bits_from_closes(closes: Any) -> Array:
    """Bit k = 1 if close[k+1] > close[k], else 0 (ties give 0): N closes give N - 1 bits.

    This is the rule of the testbed and of ``MultiTimeframeAnalyzer::runAnalysisPipeline``.
    """
    xp = array_module(closes=closes)
    prices = xp.asarray(closes, dtype=xp.float64)
    return (prices[..., 1:] > prices[..., :-1]).astype(xp.uint8)


def bits_from_prices_pip_threshold(
    prices: Any,
    *,
    pip: float = STANDARD_PIP,
) -> Array:
    """``QuantumSignalBridge::convertPriceToBits``: moves under one pip repeat the previous bit.

    d = trunc((p_i - p_(i-1)) / pip) as an integer; the bit is 1 if d > 0, 0 if d < 0, and the
    previous bit if d == 0 (0 when there is none). The original hard-codes a factor of 10000;
    ``pip`` makes JPY pairs (pip 0.01) behave the same way.
    """
    xp = array_module(prices=prices)
    values = xp.asarray(prices, dtype=xp.float64)
    scale = float(round(1.0 / pip)) if 1.0 / pip >= 1 else 1.0 / pip
    moves = xp.trunc((values[..., 1:] - values[..., :-1]) * scale)
    shape = moves.shape
    if moves.size == 0:
        return xp.zeros(shape, dtype=xp.uint8)
    matrix = moves.reshape(-1, shape[-1])
    decided = matrix != 0
    up = (matrix > 0).reshape(-1)
    # Forward-fill without a loop over bits: position t takes the last decided move of its row
    # at or before t. Counting decided moves per row gives which one that is, and the rows'
    # exclusive totals turn it into an index into the flattened list of decided moves.
    running = xp.cumsum(decided.astype(xp.int64), axis=1)
    row_totals = running[:, -1]
    row_offset = xp.cumsum(row_totals) - row_totals
    decided_moves = up[xp.nonzero(decided.reshape(-1))[0]]
    has_previous = running > 0
    which = xp.where(has_previous, row_offset[:, None] + running - 1, 0)
    if decided_moves.size == 0:
        # No move reached a pip: every bit repeats the missing "previous bit", which is 0.
        return xp.zeros(shape, dtype=xp.uint8)
    filled = xp.where(has_previous, decided_moves[which], False)
    return filled.astype(xp.uint8).reshape(shape)


def bits_from_uint32(values: Any) -> Array:
    """``QFHBasedProcessor::convertToBits``: 32 bits per value, least significant bit first."""
    xp = array_module(values=values)
    words = xp.asarray(values, dtype=xp.uint64).reshape(-1)
    shifts = xp.arange(32, dtype=xp.uint64)
    return ((words[:, None] >> shifts[None, :]) & 1).astype(xp.uint8).reshape(-1)


def parse_bit_strings(lines: list[str]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Strings of '0'/'1' as a left-aligned uint8 matrix and their lengths (host arrays)."""
    lengths = np.array([len(line) for line in lines], dtype=np.int64)
    width = int(lengths.max()) if len(lines) else 0
    matrix = np.zeros((len(lines), width), dtype=np.uint8)
    if len(lines):
        joined = np.frombuffer("".join(lines).encode("ascii"), dtype=np.uint8) - ord("0")
        rows = np.repeat(np.arange(len(lines)), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        columns = np.arange(joined.size) - np.repeat(starts, lengths)
        matrix[rows, columns] = joined
    return matrix, lengths


def window_rows(bits: Any, lengths: Any, xp: ModuleType) -> tuple[Array, Array]:
    """``bits`` as an int64 (windows, width) matrix on ``xp`` (a 1-D array is one window) and
    each row's number of bits: ``lengths``, or ``width`` for every row when it is None."""
    matrix = xp.asarray(bits).astype(xp.int64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    rows, width = matrix.shape
    if lengths is None:
        return matrix, xp.full(rows, width, dtype=xp.int64)
    return matrix, xp.asarray(lengths, dtype=xp.int64).reshape(-1)
