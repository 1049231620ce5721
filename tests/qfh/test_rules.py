"""Signal rules: pure array functions shared by the evaluation and the live pipeline."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from qfh import rules


def test_a_rule_fills_in_the_published_defaults() -> None:
    rule = rules.validate_rule("testbed", {"buy_threshold": 0.55})

    assert rule.params["buy_threshold"] == 0.55
    assert rule.params["weight_stability"] == 0.40
    assert rule.params["min_confidence"] == 0.65
    assert rule.params["confirm_threshold"] is None


@pytest.mark.parametrize(
    ("rule_type", "params", "message"),
    [
        ("magic", {}, r"rule_type='magic' is unknown; expected one of \['testbed'"),
        ("testbed", {"speed": 1}, r"unknown parameter\(s\) \['speed'\]"),
        ("testbed", {"window": 1}, r"window=1 is out of range; expected 2 to 64"),
        ("testbed", {"buy_threshold": "high"}, r"buy_threshold='high' is not a finite number"),
        ("testbed", {"buy_threshold": float("nan")}, r"buy_threshold=nan is not a finite"),
        ("testbed", {"weight_entropy": 0.9}, r"weight_stability \+ .* = 1.4; expected 1"),
        ("testbed", {"high_confidence_only": 1}, r"high_confidence_only=1 is not a boolean"),
        ("pattern_threshold", {"buy_min_coherence": -1}, r"buy_min_coherence=-1 is out of range"),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_parameter_value_and_expectation(
    rule_type: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(rules.RuleError, match=message):
        rules.validate_rule(rule_type, params)


def test_the_testbed_scores_every_parameter_set_at_once_as_it_scores_each_alone() -> None:
    # Given metrics for 500 candles and three parameter sets as (sets, 1) columns
    rng = np.random.default_rng(3)
    metrics = {
        "coherence": rng.uniform(0.1, 0.9, 500),
        "stability": rng.uniform(0.0, 1.0, 500),
        "entropy": rng.uniform(0.05, 0.5, 500),
        "multiplier": rng.uniform(0.7, 1.5, 500),
        "volatility": rng.uniform(0.8, 1.5, 500),
    }
    sets = [(0.4, 0.1, 0.5, 0.50, 0.52), (0.2, 0.3, 0.5, 0.45, 0.60), (0.6, 0.2, 0.2, 0.6, 0.4)]
    columns = np.array(sets)[:, :, None]

    # When they are scored together and one by one
    together, _, _ = rules.testbed_signals(
        **metrics,
        weight_stability=columns[:, 0],
        weight_coherence=columns[:, 1],
        weight_entropy=columns[:, 2],
        buy_threshold=columns[:, 3],
        sell_threshold=columns[:, 4],
    )
    alone = [
        rules.testbed_signals(
            **metrics,
            weight_stability=s[0],
            weight_coherence=s[1],
            weight_entropy=s[2],
            buy_threshold=s[3],
            sell_threshold=s[4],
        )[0]
        for s in sets
    ]

    # Then the answers are identical, and some signals of each kind exist
    assert together.shape == (3, 500)
    assert np.array_equal(together, np.stack(alone))
    assert set(np.unique(together)) <= {-1, 0, 1}
    assert (together != 0).any()


def test_a_testbed_buy_needs_the_score_above_the_threshold_scaled_by_volatility() -> None:
    # Given a candle whose buy score is 0.55 (S = 0.5, C = 0.5, H = 0.5 with weights .4/.1/.5)
    values = {"coherence": 0.5, "stability": 0.5, "entropy": 0.4, "multiplier": 1.0}
    high_gate = {"min_confidence": 0.0, "min_coherence": 0.0}

    # When the volatility multiplier is 1 and then 1.2
    calm = rules.testbed_signals(**values, volatility=np.array([1.0]), **high_gate)
    wild = rules.testbed_signals(**values, volatility=np.array([1.2]), **high_gate)

    # Then it buys in calm markets (0.55 > 0.50) and holds when the bar is raised (0.55 < 0.60)
    assert calm[0].tolist() == [rules.BUY]
    assert calm[1].tolist() == pytest.approx([0.55])
    assert wild[0].tolist() == [rules.HOLD]


def test_the_volatility_multiplier_of_a_candle_ignores_every_later_candle() -> None:
    rng = np.random.default_rng(5)
    ranges = rng.uniform(0.5, 20.0, 300)
    changed = ranges.copy()
    changed[150:] = rng.uniform(0.5, 20.0, 150)

    before = rules.volatility_multiplier(ranges)
    after = rules.volatility_multiplier(changed)

    assert np.array_equal(before[:150], after[:150])
    assert not np.array_equal(before[150:], after[150:])
    # The original's vm is one number from the series' end, which moves with the future.
    assert (
        rules.leaky_volatility_multiplier(ranges)[0]
        != rules.leaky_volatility_multiplier(changed)[0]
    )


def test_the_pattern_threshold_rule_sells_first_then_buys_then_holds() -> None:
    direction, confidence = rules.pattern_threshold_signals(
        coherence=np.array([0.8, 0.8, 0.5]),
        stability=np.array([0.2, 0.7, 0.7]),
        entropy=np.array([0.8, 0.2, 0.2]),
    )

    assert direction.tolist() == [rules.SELL, rules.BUY, rules.HOLD]
    assert confidence.tolist() == pytest.approx([0.8 * 0.8, 0.8 * 0.7, 0.0])


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_an_m1_candle_is_joined_to_the_last_m5_candle_that_had_closed_by_its_close() -> None:
    # Given M5 candles at 10:00 and 10:05 and M1 candles from 10:03 to 10:09
    m5 = np.array([epoch("2025-07-24T09:55"), epoch("2025-07-24T10:00"), epoch("2025-07-24T10:05")])
    m1 = np.array([epoch(f"2025-07-24T10:0{minute}") for minute in range(3, 10)])

    # When each M1 candle looks for its confirmation
    index = rules.closed_bucket_index(m1, 60, m5, 300)

    # Then 10:03 (closing 10:04) still sees 09:55; 10:04 closes at 10:05 with the 10:00 candle;
    # 10:09 closes at 10:10 with the 10:05 candle, never with a candle still forming
    assert index.tolist() == [0, 1, 1, 1, 1, 1, 2]


def test_a_missing_higher_candle_never_confirms() -> None:
    m15 = np.array([epoch("2025-07-24T09:30")])
    m1 = np.array([epoch("2025-07-24T10:00")])

    index = rules.closed_bucket_index(m1, 60, m15, 900)
    gathered = rules.gather_closed(np.array([rules.BUY]), index, rules.HOLD)
    kept = rules.confirm(np.array([rules.BUY]), [(gathered, np.array([0.99]))], 0.8)

    assert index.tolist() == [-1]
    assert kept.tolist() == [rules.HOLD]


def test_confirmation_keeps_signals_that_both_higher_timeframes_agree_with_strongly() -> None:
    m1 = np.array([1, -1, 1, 1], dtype=np.int8)
    m5 = (np.array([1, -1, 1, -1]), np.array([0.9, 0.9, 0.7, 0.9]))
    m15 = (np.array([1, -1, 1, 1]), np.array([0.85, 0.81, 0.9, 0.9]))

    kept = rules.confirm(m1, [m5, m15], 0.8)

    assert kept.tolist() == [1, -1, 0, 0]


def test_on_real_minutes_confirmation_keeps_some_signals_and_each_agrees_with_m5_and_m15() -> None:
    # Given the bundled EUR/USD minutes and the testbed rule confirmed at the published 0.80
    from qfh.evaluation.evaluate import compute_features, rule_signals
    from tests.qfh.test_evaluation import real_candles

    candles = real_candles()
    rule = rules.validate_rule("testbed", {"confirm_threshold": 0.8, "high_confidence_only": False})

    # When the signals are computed (the keys join each minute to the last closed M5/M15 candle)
    features, higher = compute_features(candles, rule, xp=np)
    signals = rule_signals(rule.rule_type, rule.params, features, higher)

    # Then some signals survive (the original's keys never matched, so none did), and every
    # survivor has the same direction as both higher timeframes' signals
    kept = np.flatnonzero(signals.direction != rules.HOLD)
    assert 0 < len(kept) < np.count_nonzero(signals.raw_direction)
    for frame in higher:
        direction, confidence = rules.pipeline_signals(
            coherence=frame.coherence,
            stability=frame.stability,
            entropy=frame.entropy,
            modifier=frame.modifier,
        )
        joined = rules.gather_closed(direction, frame.index)[kept]
        assert np.array_equal(joined, signals.direction[kept])
        assert (rules.gather_closed(confidence, frame.index)[kept] > 0.8).all()
