"""How far apart two runs of the analysis are: the parity logic shared by the device-path tests and
``bench/gpu_check.py`` (no Django, so that the GPU check runs on a bare GPU machine).

``max_difference`` walks any result of the project (engine results, features, evaluations,
training results, dicts, lists) and returns the largest absolute difference between matching
numbers, with device arrays copied to the host first; anything that is not a number must be equal.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qfh.engine import GOLDEN_COLUMNS, QFHBatchResult, analyze_windows, parse_bit_strings, to_numpy

GOLDEN_FILE = Path(__file__).resolve().parent / "data" / "qfh_reference_day1.csv"
# The golden file prints nine significant digits; the spec's float64 engine is within 3e-7 of it.
GOLDEN_TOLERANCE = 1e-5


class Mismatch(AssertionError):
    """Two results differ in something that is not a number (a shape, a label, a key)."""


def _host(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value
    if hasattr(value, "get") and hasattr(value, "dtype"):
        return to_numpy(value)
    return value


def max_difference(left: Any, right: Any, where: str = "result") -> float:
    """The largest |left - right| over all numbers of two results of the same shape."""
    left, right = _host(left), _host(right)
    if dataclasses.is_dataclass(left) and not isinstance(left, type):
        if type(left) is not type(right):
            raise Mismatch(f"{where}: {type(left).__name__} != {type(right).__name__}")
        return max(
            (
                max_difference(getattr(left, f.name), getattr(right, f.name), f"{where}.{f.name}")
                for f in dataclasses.fields(left)
            ),
            default=0.0,
        )
    if isinstance(left, Mapping):
        if not isinstance(right, Mapping) or set(left) != set(right):
            raise Mismatch(f"{where}: keys differ")
        return max(
            (max_difference(left[k], right[k], f"{where}[{k!r}]") for k in left), default=0.0
        )
    if isinstance(left, list | tuple):
        if not isinstance(right, list | tuple) or len(left) != len(right):
            raise Mismatch(f"{where}: lengths differ")
        return max(
            (
                max_difference(a, b, f"{where}[{i}]")
                for i, (a, b) in enumerate(zip(left, right, strict=True))
            ),
            default=0.0,
        )
    if isinstance(left, np.ndarray | np.generic) or isinstance(right, np.ndarray | np.generic):
        a, b = np.asarray(left), np.asarray(right)
        if a.shape != b.shape:
            raise Mismatch(f"{where}: shapes {a.shape} != {b.shape}")
        if a.size == 0:
            return 0.0
        if a.dtype.kind not in "biuf" or b.dtype.kind not in "biuf":
            if not np.array_equal(a, b):
                raise Mismatch(f"{where}: values differ")
            return 0.0
        a, b = a.astype(np.float64), b.astype(np.float64)
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        return float(np.max(np.where(same, 0.0, np.abs(a - b))))
    if isinstance(left, bool) or isinstance(right, bool) or not isinstance(left, int | float):
        if left != right:
            raise Mismatch(f"{where}: {left!r} != {right!r}")
        return 0.0
    if not isinstance(right, int | float):
        raise Mismatch(f"{where}: {left!r} != {right!r}")
    if math.isnan(left) and math.isnan(right):
        return 0.0
    return abs(float(left) - float(right))


def golden_rows(path: Path = GOLDEN_FILE) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def golden_parity(xp: Any, rows: list[dict[str, str]]) -> dict[str, float | int]:
    """The golden windows analysed on ``xp`` in the original precision, against the file:
    windows, values compared, values more than ``GOLDEN_TOLERANCE`` off, the largest difference."""
    matrix, lengths = parse_bit_strings([row["bits"] for row in rows])
    result: QFHBatchResult = analyze_windows(
        xp.asarray(matrix), xp.asarray(lengths), original_precision=True
    )
    compared = mismatches = 0
    worst = 0.0
    for name, values in result.columns().items():
        produced = to_numpy(values).astype(np.float64)
        expected = np.array([float(row[name]) for row in rows])
        difference = np.abs(produced - expected)
        compared += difference.size
        mismatches += int((difference > GOLDEN_TOLERANCE).sum())
        worst = max(worst, float(difference.max(initial=0.0)))
    assert list(result.columns()) == list(GOLDEN_COLUMNS)
    return {"windows": len(rows), "values": compared, "mismatches": mismatches, "max": worst}
