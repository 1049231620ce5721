"""Causality: the metric of the window ending at bit j never depends on bits after j."""

from __future__ import annotations

import numpy as np
import pytest

from qfh.engine import analyze_sliding, analyze_trailing, bits_from_closes
from tests.qfh.helpers import assert_results_equal

SERIES_BITS = 3000


@pytest.fixture
def series() -> np.ndarray:
    return np.random.default_rng(42).integers(0, 2, size=(2, SERIES_BITS), dtype=np.uint8)


@pytest.mark.parametrize("window", [11, 20, 64])
@pytest.mark.parametrize("cut", [1, 5, 700, 2999])
def test_truncating_the_series_after_bit_j_changes_nothing_up_to_j(
    series: np.ndarray, window: int, cut: int
) -> None:
    # Given the full series and the same series cut just after bit j = cut
    full, _ = analyze_trailing(series, window)

    # When only the bits up to j exist
    truncated, _ = analyze_trailing(series[:, : cut + 1], window)

    # Then every metric up to and including j is bit-identical
    assert_results_equal(truncated, full.map(lambda column: column[:, : cut + 1]))


@pytest.mark.parametrize("window", [11, 64])
def test_shuffling_the_future_changes_nothing_up_to_j(series: np.ndarray, window: int) -> None:
    # Given a series whose bits after j are shuffled
    j = 1234
    shuffled = series.copy()
    rng = np.random.default_rng(1)
    for pair in range(shuffled.shape[0]):
        rng.shuffle(shuffled[pair, j + 1 :])
    assert not np.array_equal(shuffled, series)

    # When both are analysed in full
    original, _ = analyze_trailing(series, window)
    changed, _ = analyze_trailing(shuffled, window)

    # Then nothing up to bit j moves, and something after it does
    assert_results_equal(
        changed.map(lambda column: column[:, : j + 1]),
        original.map(lambda column: column[:, : j + 1]),
    )
    assert not np.array_equal(changed.coherence[:, j + 1 :], original.coherence[:, j + 1 :])


@pytest.mark.parametrize("window", [11, 64])
def test_sliding_window_i_depends_on_bits_up_to_i_plus_window_minus_1(
    series: np.ndarray, window: int
) -> None:
    # Given sliding windows over the full series and over a prefix
    prefix = 1000
    full = analyze_sliding(series, window)

    # When the prefix alone is analysed
    short = analyze_sliding(series[:, :prefix], window)

    # Then its windows are exactly the first windows of the full run
    assert_results_equal(short, full.map(lambda column: column[:, : prefix - window + 1]))


def test_a_candle_close_after_j_does_not_reach_the_bits_up_to_j(
    eur_usd_closes: np.ndarray,
) -> None:
    # Given the real closes, and the same closes with every price after candle 500 changed
    changed = eur_usd_closes.copy()
    changed[501:] = changed[501:][::-1] + 0.001

    # When both become bits
    before, after = bits_from_closes(eur_usd_closes), bits_from_closes(changed)

    # Then the bits up to the move into candle 500 (bit 499) are identical
    assert np.array_equal(before[:500], after[:500])
