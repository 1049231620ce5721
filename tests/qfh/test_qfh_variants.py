"""The section 4 variants, the section 5.1 forward-window table and QBSA (section 3)."""

from __future__ import annotations

import numpy as np
import pytest

from qfh.engine import (
    analyze_windows,
    bridge_metrics,
    candle_volatility_pips,
    duplicate_for_package,
    forward_window_metrics,
    parse_bit_strings,
    pattern_modifier,
    pipeline_metrics,
    qbsa_analyze,
    qbsa_correction_ratio,
)
from qfh.engine import testbed_m1_metrics as m1_testbed_metrics


@pytest.mark.parametrize(
    ("bits", "coherence", "stability", "case"),
    [
        ("1111111111", 0.10, 0.10, "all ones"),
        ("0000000000", 0.95, 1.00, "all zeros"),
        ("0101010101", 0.90, 0.95, "perfectly alternating"),
        ("0000001010", 0.85, 0.88, "trend acceleration"),
        ("0101000000", 0.75, 0.70, "mean reversion"),
        ("0110011111", 0.80, 0.82, "volatility breakout"),
        ("0011111111", 0.60, 0.50, "block pattern, runs <= n/2"),
        ("0011001101", 0.40, 0.30, "other"),
    ],
)
def test_the_forward_window_table_classifies_each_case_of_section_5_1(
    bits: str, coherence: float, stability: float, case: str
) -> None:
    # Given a 10-bit window built to hit one case of the cascade
    matrix, lengths = parse_bit_strings([bits])

    # When simulateForwardWindowMetrics is looked up
    metrics = forward_window_metrics(matrix, lengths)

    # Then it returns that case's (float) coherence and stability
    assert metrics["coherence"][0] == pytest.approx(coherence, abs=1e-7), case
    assert metrics["stability"][0] == pytest.approx(stability, abs=1e-7), case


def test_the_forward_window_looks_only_at_the_first_10_bits() -> None:
    # Given an 11-bit window whose 11th bit would break the all-zeros case
    matrix, lengths = parse_bit_strings(["00000000001", "0000000000"])

    # When both windows are looked up
    metrics = forward_window_metrics(matrix, lengths)

    # Then the 11th bit is ignored, as in the testbed
    assert metrics["coherence"].tolist() == [metrics["coherence"][1]] * 2


def test_the_pattern_modifier_checks_its_cases_in_order_in_float32() -> None:
    # Given forward-window metrics of the trend, breakout, reversion and neutral cases
    coherence = np.array([0.85, 0.8, 0.75, 0.6], dtype=np.float32)
    stability = np.array([0.88, 0.82, 0.7, 0.5], dtype=np.float32)

    # When the modifier is derived
    modifier = pattern_modifier(coherence, stability)

    # Then each case gets its factor (0.7f >= 0.7f holds although 0.7f < 0.7 in double)
    assert modifier.tolist() == [1.12, 1.08, 0.95, 1.0]


def test_the_bridge_probes_make_at_least_a_quarter_of_corrections() -> None:
    # Given 64-bit windows: alternating (4 ones in every 8) and all ones
    matrix = np.array([[0, 1] * 32, [1] * 64], dtype=np.uint8)

    # When the bridge's QBSA correction ratio is computed
    ratio = qbsa_correction_ratio(matrix)

    # Then the 4 probes before bit 16 always miss, the others match only at 3-5 ones in 8
    assert ratio.tolist() == [0.25, 1.0]


def test_short_windows_use_fewer_probes() -> None:
    # Given a 20-bit window: probes 0, 4, 8, 12 (all misses) and 16 (bits 8..15 hold 4 ones)
    matrix, lengths = parse_bit_strings(["01" * 10])

    # Then 4 of the 5 probes are corrections
    assert qbsa_correction_ratio(matrix, lengths).tolist() == [0.8]


def test_qbsa_analyze_counts_mismatches_against_the_collapse_threshold() -> None:
    ratio, collapse = qbsa_analyze([[1, 2, 3], [1, 2, 3]], [[1, 0, 3], [0, 0, 0]])
    assert ratio.tolist() == pytest.approx([1 / 3, 1.0])
    assert collapse.tolist() == [False, True]


def test_duplicate_for_package_is_the_fixed_rate_damped_sum() -> None:
    bits = np.array([[0, 1, 1, 0]], dtype=np.uint8)
    expected = np.exp(-0.1) + np.exp(-0.2)
    assert duplicate_for_package(bits)[0] == pytest.approx(expected)


def test_volatility_is_the_mean_range_of_the_20_previous_candles_in_pips() -> None:
    # Given 25 candles whose range is i pips for candle i
    highs = 1.1 + np.arange(25) * 0.0001
    lows = np.full(25, 1.1)

    # When the testbed volatility is computed
    volatility = candle_volatility_pips(highs, lows)

    # Then it is 0.5 before candle 20 and the mean of candles i-20..i-1 after (never candle i)
    assert volatility[:20].tolist() == [0.5] * 20
    assert volatility[20] == pytest.approx(np.mean(np.arange(20)))
    assert volatility[24] == pytest.approx(np.mean(np.arange(4, 24)))


def test_jpy_volatility_uses_the_jpy_pip() -> None:
    highs = np.full(21, 150.05)
    lows = np.full(21, 150.0)
    assert candle_volatility_pips(highs, lows, pip=0.01)[20] == pytest.approx(5.0)


def test_the_testbed_pipeline_and_bridge_rows_follow_section_4() -> None:
    # Given the QFH result of one window
    matrix = np.array([[0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1]], dtype=np.uint8)
    result = analyze_windows(matrix)
    c, h, r = result.coherence[0], result.entropy[0], result.rupture_ratio[0]

    # When each producer's variant is derived
    testbed = m1_testbed_metrics(result, np.array([10.0]))
    pipeline = pipeline_metrics(result)
    bridge = bridge_metrics(result, np.array([0.25]))

    # Then they are the section 4 formulas
    assert testbed["coherence"][0] == pytest.approx(0.7 * c + 0.15)
    assert testbed["stability"][0] == pytest.approx(min(1.0, 1 - r + 0.2 * 10 / 20))
    assert testbed["entropy"][0] == pytest.approx(h / 2)
    assert pipeline["stability"][0] == pytest.approx(1 - r)
    assert pipeline["entropy"][0] == pytest.approx(h)
    assert bridge["stability"][0] == pytest.approx(1 - h)
    assert bridge["confidence"][0] == pytest.approx(0.75)
