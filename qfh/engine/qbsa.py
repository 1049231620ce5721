"""QBSA: the correction ratio of probe indices against expectations (QFH_SPEC.md section 3)."""

from __future__ import annotations

from typing import Any

from qfh.engine.backend import array_module
from qfh.engine.bits import window_rows
from qfh.engine.metrics import Array

# `QBSAProcessor` collapses at a correction ratio of 0.6 by default.
QBSA_COLLAPSE_THRESHOLD = 0.6
# `calculateIdentifiersWithConvergence` probes every 4th bit of the first 64.
BRIDGE_PROBE_STRIDE = 4
BRIDGE_PROBE_LIMIT = 64
# Probes before bit 16 always expect i + 1; later ones look at the share of ones in the 8 bits
# before the probe: >= 0.7 expects i + 1, <= 0.3 expects i + 2, anything between expects i.
BRIDGE_WARMUP_BITS = 16
BRIDGE_LOOKBACK_BITS = 8
BRIDGE_HIGH_SHARE = 0.7
BRIDGE_LOW_SHARE = 0.3


def qbsa_analyze(
    probes: Any,
    expectations: Any,
    *,
    collapse_threshold: float = QBSA_COLLAPSE_THRESHOLD,
) -> tuple[Array, Array]:
    """`QBSAProcessor::analyze` along the last axis: (correction ratio, collapse detected)."""
    xp = array_module(probes=probes, expectations=expectations)
    probe_array = xp.asarray(probes)
    expectation_array = xp.asarray(expectations)
    if probe_array.shape != expectation_array.shape:
        raise ValueError(
            f"probes {probe_array.shape} and expectations {expectation_array.shape} differ"
        )
    count = probe_array.shape[-1]
    corrections = (probe_array != expectation_array).sum(axis=-1)
    ratio = corrections / max(count, 1)
    return ratio, ratio >= collapse_threshold


def qbsa_correction_ratio(bits: Any, lengths: Any = None) -> Array:
    """The bridge's correction ratio for each window (row) of ``bits``.

    Probes are i = 0, 4, 8, ... < min(length, 64). A probe is a correction unless i >= 16 and
    3 to 5 of the 8 bits before it are ones, so a window of 64 bits or more scores at least 0.25.
    A window with no probe (empty) scores 0.
    """
    xp = array_module(bits=bits, lengths=lengths)
    matrix, length = window_rows(bits, lengths, xp)
    rows, width = matrix.shape
    probe = xp.arange(0, BRIDGE_PROBE_LIMIT, BRIDGE_PROBE_STRIDE, dtype=xp.int64)
    # ones[:, t] = number of ones among the first t bits of the row.
    padded = xp.zeros((rows, max(width, BRIDGE_PROBE_LIMIT) + 1), dtype=xp.int64)
    padded[:, 1 : width + 1] = xp.cumsum(matrix, axis=1)
    padded[:, width + 1 :] = padded[:, width : width + 1]
    before = xp.maximum(probe - BRIDGE_LOOKBACK_BITS, 0)
    share = (padded[:, probe] - padded[:, before]) / BRIDGE_LOOKBACK_BITS
    matches = (probe[None, :] >= BRIDGE_WARMUP_BITS) & (share < BRIDGE_HIGH_SHARE)
    matches &= share > BRIDGE_LOW_SHARE
    active = probe[None, :] < xp.minimum(length, BRIDGE_PROBE_LIMIT)[:, None]
    corrections = (active & ~matches).sum(axis=1)
    probes = active.sum(axis=1)
    return xp.where(probes > 0, corrections / xp.maximum(probes, 1), 0.0)


def duplicate_for_package(bits: Any) -> Array:
    """`QBSAProcessor::duplicateForPackage`: V = sum_(i>=1) (b_i - b_0) e^(-0.1 i), per row."""
    xp = array_module(bits=bits)
    matrix = xp.asarray(bits).astype(xp.float64)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    position = xp.arange(matrix.shape[1], dtype=xp.float64)
    return ((matrix - matrix[:, :1]) * xp.exp(-0.1 * position)[None, :]).sum(axis=1)
