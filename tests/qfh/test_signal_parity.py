"""Training scores every parameter set with the signals evaluation computes for it.

Training vectorises the rule and its M5/M15 confirmation over blocks of parameter sets; the
evaluation (and the live analysis, through ``rule_signals``) applies one set. Both go through
``rule_signals`` and ``confirm_higher``; these tests fail as soon as the batched path and the
single path give a different signal for any set on the bundled real minutes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import pytest

from qfh import rules
from qfh.engine import to_numpy
from qfh.evaluation import training
from qfh.evaluation.evaluate import evaluate_rule, host_signals
from qfh.evaluation.outcomes import Costs
from tests.qfh.test_evaluation import real_candles

# Random sets over every window, horizon and confirmation choice (mixed within each block).
SPACE = training.SearchSpace(
    sets=13, windows=(8, 11, 16), horizons=(1, 5, 15), confirm_thresholds=(None, 0.8, 0.6)
)
SEEDS = (3, 11, 29)


def random_sets(seed: int) -> list[dict[str, Any]]:
    # Set 0 is always the published one; the rest are the seeded random draws.
    return training.sample_parameter_sets(SPACE, seed)[1:]


def as_rule(params: dict[str, Any], **overrides: Any) -> rules.Rule:
    given = {name: value for name, value in params.items() if name != "horizon"}
    return rules.validate_rule("testbed", {**given, **overrides})


def batched_signals(
    sets: list[dict[str, Any]], xp: ModuleType
) -> dict[int, tuple[list[int], np.ndarray]]:
    """Training's signals per window length: the members' indices and their (sets, candles)
    directions, scored as one block of confirming and non-confirming sets together."""
    inputs = training._search_inputs(real_candles(), sets, Costs(), xp)
    result = {}
    for window, (features, higher) in inputs.features.items():
        members = [i for i, params in enumerate(sets) if params["window"] == window]
        block = training.block_signals([sets[i] for i in members], features, higher, xp)
        result[window] = (members, to_numpy(block))
    return result


@pytest.mark.parametrize("seed", SEEDS)
def test_trainings_signals_of_each_set_equal_the_evaluations_signals(seed: int) -> None:
    # Given random parameter sets, some confirming on M5/M15 and some not
    candles = real_candles()
    sets = random_sets(seed)
    assert {params["confirm_threshold"] is None for params in sets} == {True, False}

    # When training scores them in blocks and the evaluation scores each set alone
    batched = batched_signals(sets, np)

    # Then every set's signals agree, candle for candle
    confirmed_away = 0
    for members, block in batched.values():
        for row, index in zip(block, members, strict=True):
            rule = as_rule(sets[index])
            single = host_signals(candles, rule, xp=np).direction
            np.testing.assert_array_equal(row, single, err_msg=f"set {sets[index]}")
            if rule.params["confirm_threshold"] is not None:
                plain = host_signals(candles, as_rule(sets[index], confirm_threshold=None), xp=np)
                confirmed_away += int((plain.direction != single).sum())
    # And the confirmation took part: it held back signals that the plain rule gives
    assert confirmed_away > 0


def test_the_batched_signals_on_the_device_equal_the_evaluations_on_the_host(
    strict_cupy: ModuleType,
) -> None:
    candles = real_candles()
    sets = random_sets(SEEDS[0])

    batched = batched_signals(sets, strict_cupy)

    for members, block in batched.values():
        for row, index in zip(block, members, strict=True):
            single = host_signals(candles, as_rule(sets[index]), xp=np).direction
            np.testing.assert_array_equal(row, single, err_msg=f"set {sets[index]}")


@pytest.mark.parametrize("seed", SEEDS)
def test_the_searchs_sums_of_each_set_equal_evaluate_rules_performance(seed: int) -> None:
    # Given random sets and one fold whose test window is every candle
    candles = real_candles()
    sets = random_sets(seed)
    costs = Costs(spread_pips=1.0)
    whole = [training.Fold(0, len(candles), 0, len(candles))]

    # When the search sums them and evaluate_rule scores each set at its horizon
    _, test = training.evaluate_parameter_sets(candles, sets, whole, costs=costs, xp=np)

    # Then trades, hits and P&L agree set by set
    for index, params in enumerate(sets):
        result = evaluate_rule(
            candles, as_rule(params), horizon=params["horizon"], costs=costs, xp=np
        ).performance
        assert (test.trades[index, 0], test.hits[index, 0]) == (result.trades, result.hits)
        assert test.pnl[index, 0] == pytest.approx(result.pnl_pips, abs=1e-6)
