"""From prices to bits (QFH_SPEC.md section 1)."""

from __future__ import annotations

import numpy as np
import pytest

from qfh.engine import (
    bits_from_closes,
    bits_from_prices_pip_threshold,
    bits_from_uint32,
    parse_bit_strings,
    pip_size,
)


def test_a_close_above_the_previous_is_1_and_a_tie_or_a_fall_is_0() -> None:
    # Given closes that rise, tie, fall and rise
    closes = [1.17050, 1.17060, 1.17060, 1.17040, 1.17100]

    # When they become bits
    bits = bits_from_closes(closes)

    # Then N closes give N - 1 bits, ties giving 0
    assert bits.tolist() == [1, 0, 0, 1]
    assert bits.dtype == np.uint8


def test_closes_of_several_pairs_become_bits_row_by_row() -> None:
    # Given two pairs' closes in one (pairs, candles) array
    closes = np.array([[1.0, 2.0, 1.0], [150.0, 149.0, 149.5]])

    # When they become bits
    # Then each row is handled on its own
    assert bits_from_closes(closes).tolist() == [[1, 0], [0, 1]]


def test_moves_under_one_pip_repeat_the_previous_bit() -> None:
    # Given EUR/USD mids moving +0.5, +1.5, -0.5, -0.5, -0.9, +2.9 pips
    mids = [1.0, 1.00005, 1.0002, 1.00015, 1.0001, 1.00001, 1.0003]

    # When the bridge's pip-threshold rule is applied
    bits = bits_from_prices_pip_threshold(mids)

    # Then sub-pip moves repeat the previous bit (0 before any decided move)
    assert bits.tolist() == [0, 1, 1, 1, 1, 1]


def test_the_pip_threshold_rule_uses_the_pairs_pip_so_jpy_pairs_are_right() -> None:
    # Given USD/JPY mids moving +0.5 and +1.5 JPY pips (pip = 0.01)
    mids = [150.000, 150.005, 150.020]

    # When the rule runs with the JPY pip and with the EUR/USD pip
    jpy = bits_from_prices_pip_threshold(mids, pip=pip_size("USD_JPY"))
    wrong = bits_from_prices_pip_threshold(mids, pip=pip_size("EUR_USD"))

    # Then only the JPY pip treats the half-pip move as noise
    assert jpy.tolist() == [0, 1]
    assert wrong.tolist() == [1, 1]


@pytest.mark.parametrize(
    ("pair", "pip"), [("EUR_USD", 0.0001), ("USD_JPY", 0.01), ("EUR/JPY", 0.01), ("GBP_USD", 1e-4)]
)
def test_pip_size_follows_the_quote_currency(pair: str, pip: float) -> None:
    assert pip_size(pair) == pip


def test_pip_threshold_rows_do_not_leak_into_each_other() -> None:
    # Given a pair whose last move is up and a second pair that never moves a pip
    mids = np.array([[1.0, 1.0002, 1.0002], [1.0, 1.00001, 1.00002]])

    # When both rows are converted at once
    bits = bits_from_prices_pip_threshold(mids)

    # Then the second row repeats its own missing previous bit (0), not the first row's 1
    assert bits.tolist() == [[1, 1], [0, 0]]


def test_uint32_values_expand_least_significant_bit_first() -> None:
    # Given the value 5 (binary 101) and 2^31
    bits = bits_from_uint32([5, 1 << 31])

    # Then each becomes 32 bits, LSB first
    assert bits[:4].tolist() == [1, 0, 1, 0]
    assert bits[32:].tolist() == [0] * 31 + [1]


def test_bit_strings_become_a_left_aligned_matrix_with_lengths() -> None:
    matrix, lengths = parse_bit_strings(["0101", "1", "110"])
    assert lengths.tolist() == [4, 1, 3]
    assert matrix.tolist() == [[0, 1, 0, 1], [1, 0, 0, 0], [1, 1, 0, 0]]
