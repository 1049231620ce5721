"""Small helpers shared by the QFH tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from qfh.engine import QFHBatchResult, to_numpy
from tests.qfh import reference

FIELDS = (
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
    "base_coherence",
    "decay",
)


def row(result: QFHBatchResult, index: Any) -> dict[str, float]:
    """One window of a batch result as plain floats."""
    return {name: float(to_numpy(getattr(result, name))[index]) for name in FIELDS}


def reference_row(bits: list[int], collapse_threshold: float = 0.5) -> dict[str, float]:
    result = reference.analyze(bits, collapse_threshold)
    return {name: float(getattr(result, name)) for name in FIELDS}


def assert_rows_close(actual: dict[str, float], expected: dict[str, float], tolerance: float):
    for name in FIELDS:
        assert np.isclose(actual[name], expected[name], rtol=tolerance, atol=tolerance), (
            f"{name}: engine {actual[name]!r} != reference {expected[name]!r}"
        )


def assert_results_equal(actual: QFHBatchResult, expected: QFHBatchResult) -> None:
    """Bit-identical arrays, field by field."""
    for name in FIELDS:
        left = to_numpy(getattr(actual, name))
        right = to_numpy(getattr(expected, name))
        assert left.shape == right.shape, f"{name}: shapes {left.shape} != {right.shape}"
        assert np.array_equal(left, right), f"{name} differs"


def assert_results_close(actual: QFHBatchResult, expected: QFHBatchResult, tolerance: float):
    for name in FIELDS:
        left = to_numpy(getattr(actual, name)).astype(np.float64)
        right = to_numpy(getattr(expected, name)).astype(np.float64)
        assert left.shape == right.shape, f"{name}: shapes {left.shape} != {right.shape}"
        worst = float(np.max(np.abs(left - right))) if left.size else 0.0
        assert np.allclose(left, right, rtol=tolerance, atol=tolerance), (
            f"{name} differs by up to {worst}"
        )
