"""CuPy gives the NumPy numbers (1e-9 in float64). Runs only where CuPy sees a CUDA device.

No Django here, so that a bare GPU machine (Python, NumPy, CuPy, pytest) can run it:
``python -m pytest -p no:django -p no:cacheprovider tests/qfh/test_qfh_gpu.py``.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from qfh.engine import (
    analyze_sliding,
    analyze_trailing,
    analyze_windows,
    bits_from_closes,
    bits_from_prices_pip_threshold,
    forward_window_metrics,
    parse_bit_strings,
    qbsa_correction_ratio,
    to_numpy,
)
from qfh.evaluation.outcomes import Costs
from qfh.evaluation.training import (
    SearchSpace,
    evaluate_parameter_sets,
    rolling_folds,
    sample_parameter_sets,
)
from tests.qfh.helpers import assert_results_close
from tests.qfh.test_evaluation import real_candles

pytestmark = pytest.mark.gpu
TOLERANCE = 1e-9


def test_the_golden_windows_give_the_same_numbers_on_the_gpu(
    cupy: ModuleType, golden_rows: list[dict[str, str]]
) -> None:
    # Given the golden windows on the host and on the device
    matrix, lengths = parse_bit_strings([golden["bits"] for golden in golden_rows])

    # When both backends analyse them
    host = analyze_windows(matrix, lengths)
    device = analyze_windows(cupy.asarray(matrix), cupy.asarray(lengths))

    # Then the device result lives on the device and equals the host result
    assert isinstance(device.coherence, cupy.ndarray)
    assert_results_close(device, host, TOLERANCE)


@pytest.mark.parametrize("window", [11, 16, 17, 64, 100])
def test_sliding_windows_give_the_same_numbers_on_the_gpu(cupy: ModuleType, window: int) -> None:
    # Given random bits for 7 pairs
    bits = np.random.default_rng(window).integers(0, 2, size=(7, 5000), dtype=np.uint8)

    # When both backends analyse every sliding window
    host = analyze_sliding(bits, window)
    device = analyze_sliding(cupy.asarray(bits), window)

    # Then they agree to 1e-9
    assert_results_close(device, host, TOLERANCE)


def test_trailing_windows_and_float32_work_on_the_gpu(cupy: ModuleType) -> None:
    bits = np.random.default_rng(3).integers(0, 2, size=(2, 3000), dtype=np.uint8)
    host, _ = analyze_trailing(bits, 11)
    device, _ = analyze_trailing(cupy.asarray(bits), 11)
    assert_results_close(device, host, TOLERANCE)
    single = analyze_sliding(cupy.asarray(bits), 64, dtype="float32")
    assert single.coherence.dtype == np.float32


def test_bits_variants_and_qbsa_give_the_same_numbers_on_the_gpu(cupy: ModuleType) -> None:
    closes = 1.17 + np.cumsum(np.random.default_rng(5).normal(0, 1e-4, size=(3, 500)), axis=1)
    assert np.array_equal(
        to_numpy(bits_from_closes(cupy.asarray(closes))), bits_from_closes(closes)
    )
    assert np.array_equal(
        to_numpy(bits_from_prices_pip_threshold(cupy.asarray(closes))),
        bits_from_prices_pip_threshold(closes),
    )
    windows = np.random.default_rng(6).integers(0, 2, size=(200, 64), dtype=np.uint8)
    assert np.allclose(
        to_numpy(qbsa_correction_ratio(cupy.asarray(windows))), qbsa_correction_ratio(windows)
    )
    host = forward_window_metrics(windows)
    device = forward_window_metrics(cupy.asarray(windows))
    for name, values in host.items():
        assert np.allclose(to_numpy(device[name]), values), name


def test_the_search_gives_the_same_sums_on_the_gpu_as_on_the_cpu(cupy: ModuleType) -> None:
    candles = real_candles()
    sets = sample_parameter_sets(SearchSpace(sets=40), seed=2)
    folds = rolling_folds(len(candles), 3)

    on_cpu = evaluate_parameter_sets(candles, sets, folds, costs=Costs(), xp=np)
    on_gpu = evaluate_parameter_sets(candles, sets, folds, costs=Costs(), xp=cupy)

    for cpu, gpu in zip(on_cpu, on_gpu, strict=True):
        for name in ("trades", "hits"):
            assert np.array_equal(getattr(cpu, name), getattr(gpu, name)), name
        for name in ("pnl", "pnl2"):
            assert np.allclose(getattr(cpu, name), getattr(gpu, name), atol=1e-6), name
