"""The batched engines equal the scalar reference (tests/qfh/reference.py) window by window."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qfh.engine import (
    QFHParams,
    analyze_sliding,
    analyze_trailing,
    analyze_windows,
    parse_bit_strings,
)
from qfh.engine.batch import CHUNKED_MAX_BITS, LOOKUP_MAX_BITS
from tests.qfh.helpers import assert_results_close, assert_rows_close, reference_row, row

# Both sides are float64; they differ only in summation order and closed-form template norms.
TOLERANCE = 1e-9

windows = st.lists(st.integers(0, 1), min_size=2, max_size=256)


@settings(max_examples=300, deadline=None)
@given(bits=windows)
def test_one_window_of_any_length_matches_the_reference(bits: list[int]) -> None:
    # Given a random window of 2 to 256 bits
    matrix = np.array([bits], dtype=np.uint8)

    # When the batched engine analyses it
    result = row(analyze_windows(matrix), 0)

    # Then every quantity equals the scalar reference
    assert_rows_close(result, reference_row(bits), TOLERANCE)


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(windows, min_size=1, max_size=30))
def test_a_ragged_batch_matches_the_reference_row_by_row(batch: list[list[int]]) -> None:
    # Given windows of mixed lengths padded into one matrix
    matrix, lengths = parse_bit_strings(["".join(map(str, bits)) for bits in batch])

    # When they are analysed in one call
    result = analyze_windows(matrix, lengths)

    # Then padding never leaks into a window: each row equals its own reference
    for index, bits in enumerate(batch):
        assert_rows_close(row(result, index), reference_row(bits), TOLERANCE)


def test_every_length_from_2_to_256_matches_the_reference() -> None:
    # Given three random windows of every length from 2 to 256, plus constant ones
    rng = np.random.default_rng(2026)
    batch = []
    for length in range(2, 257):
        batch += [rng.integers(0, 2, size=length).tolist() for _ in range(3)]
        batch += [[0] * length, [1] * length]
    matrix, lengths = parse_bit_strings(["".join(map(str, bits)) for bits in batch])

    # When the whole batch is analysed at once
    result = analyze_windows(matrix, lengths)

    # Then every row equals the reference
    for index, bits in enumerate(batch):
        assert_rows_close(row(result, index), reference_row(bits), TOLERANCE)


@pytest.mark.parametrize("window", [2, 5, 10, 11, 12, 16, 17, 20, 21, 24, 33, 64, 100])
def test_sliding_windows_equal_the_same_windows_analysed_one_by_one(window: int) -> None:
    # Given a random series for two pairs
    rng = np.random.default_rng(window)
    series = rng.integers(0, 2, size=(2, 400), dtype=np.uint8)

    # When every sliding window is analysed by the sliding engine (look-up table or chunked)
    sliding = analyze_sliding(series, window)

    # Then it equals the dense engine on the explicit windows, and the reference on a sample
    count = series.shape[1] - window + 1
    explicit = np.stack([series[:, i : i + window] for i in range(count)], axis=1)
    dense = analyze_windows(explicit.reshape(-1, window))
    assert_results_close(sliding.map(lambda column: column.reshape(-1)), dense, TOLERANCE)
    for pair, start in [(0, 0), (1, count // 2), (1, count - 1)]:
        bits = series[pair, start : start + window].tolist()
        assert_rows_close(row(sliding, (pair, start)), reference_row(bits), TOLERANCE)


@pytest.mark.parametrize("window", [11, 40])
@pytest.mark.parametrize("original_precision", [False, True], ids=["float64", "original"])
def test_the_sliding_engines_agree_with_the_dense_engine_in_both_precisions(
    window: int, original_precision: bool
) -> None:
    # Given a random series
    series = np.random.default_rng(5).integers(0, 2, size=3000, dtype=np.uint8)

    # When it is analysed by the sliding engine and by the dense engine
    sliding = analyze_sliding(series, window, original_precision=original_precision)
    explicit = np.lib.stride_tricks.sliding_window_view(series, window)
    dense = analyze_windows(explicit, original_precision=original_precision)

    # Then the two agree
    assert_results_close(sliding, dense, TOLERANCE)


@pytest.mark.parametrize("window", [11, 64])
def test_float32_stays_within_float32_accuracy_of_float64(window: int) -> None:
    # Given a random series
    series = np.random.default_rng(11).integers(0, 2, size=5000, dtype=np.uint8)

    # When it is analysed in float32 and in float64
    single = analyze_sliding(series, window, dtype="float32")
    double = analyze_sliding(series, window)

    # Then the float32 results are float32 arrays within about 1e-5 of the float64 ones
    assert single.coherence.dtype == np.float32
    assert_results_close(single, double, 2e-5)


def test_trailing_windows_are_the_per_candle_windows_of_the_testbed() -> None:
    # Given a series of 30 bits
    rng = np.random.default_rng(3)
    series = rng.integers(0, 2, size=30, dtype=np.uint8)

    # When the window ending at each bit is analysed
    result, lengths = analyze_trailing(series, 11)

    # Then element j is bits[max(0, j - 10) : j + 1], shorter at the start
    assert lengths.tolist() == [min(j + 1, 11) for j in range(30)]
    for j in range(30):
        bits = series[max(0, j - 10) : j + 1].tolist()
        assert_rows_close(row(result, j), reference_row(bits), TOLERANCE)


def test_the_engines_agree_on_both_sides_of_each_switch() -> None:
    # Given the window sizes around each switch (look-up table, chunked sums, dense windows)
    series = np.random.default_rng(13).integers(0, 2, size=500, dtype=np.uint8)

    # When each is analysed
    # Then all agree with the dense engine
    switches = (LOOKUP_MAX_BITS, LOOKUP_MAX_BITS + 1, CHUNKED_MAX_BITS, CHUNKED_MAX_BITS + 1)
    for window in switches:
        explicit = np.lib.stride_tricks.sliding_window_view(series, window)
        assert_results_close(analyze_sliding(series, window), analyze_windows(explicit), TOLERANCE)


def test_the_collapse_threshold_is_a_parameter() -> None:
    # Given a window with a rupture ratio of 0.3
    matrix = np.array([[0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1]], dtype=np.uint8)

    # When it is analysed at the testbed's threshold 0.3 and at the default 0.5
    testbed = analyze_windows(matrix, params=QFHParams(collapse_threshold=0.3))
    default = analyze_windows(matrix)

    # Then only the testbed threshold detects a collapse
    assert bool(testbed.collapse[0]) and not bool(default.collapse[0])


@pytest.mark.parametrize("window", [11, 64])
def test_a_reused_output_is_filled_with_the_same_numbers(window: int) -> None:
    # Given the result of one series, reused as the output of another
    rng = np.random.default_rng(window)
    first, second = rng.integers(0, 2, size=(2, 2, 700), dtype=np.uint8)
    out = analyze_sliding(first, window)

    # When the second series is analysed into it
    filled = analyze_sliding(second, window, out=out)

    # Then the buffers now hold exactly what a fresh call returns
    assert filled is out
    assert_results_close(out, analyze_sliding(second, window), 0.0)


def test_an_output_of_the_wrong_shape_is_refused() -> None:
    out = analyze_sliding(np.zeros(50, dtype=np.uint8), 11)
    with pytest.raises(ValueError, match="shape"):
        analyze_sliding(np.zeros(60, dtype=np.uint8), 11, out=out)
