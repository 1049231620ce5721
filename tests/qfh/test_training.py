"""Training: walk-forward search, reproducibility, promotion gates, commands and tasks."""

from __future__ import annotations

from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from marketdata.services import candles_ingest
from qfh.evaluation.training import (
    PromotionGates,
    SearchSpace,
    check_gates,
    evaluate_parameter_sets,
    rolling_folds,
    sample_parameter_sets,
    walk_forward,
)
from qfh.models import PairModel, RuleEvaluation
from tests.qfh.test_evaluation import random_walk, real_candles, synthetic

SMALL = SearchSpace(sets=24, windows=(8, 11), horizons=(1, 5))


def test_the_same_inputs_and_seed_give_the_same_model_and_another_seed_another_search() -> None:
    candles = real_candles()

    first = walk_forward(candles, space=SMALL, folds=3, seed=7, xp=np)
    again = walk_forward(candles, space=SMALL, folds=3, seed=7, xp=np)
    other = walk_forward(candles, space=SMALL, folds=3, seed=8, xp=np)

    assert first.params == again.params
    assert first.inputs_hash == again.inputs_hash
    assert first.out_of_sample == again.out_of_sample
    assert first.folds == again.folds
    assert other.inputs_hash != first.inputs_hash
    assert other.parameter_sets != first.parameter_sets


def test_the_search_starts_from_the_published_parameters_and_keeps_weights_on_the_simplex() -> None:
    sets = sample_parameter_sets(SearchSpace(sets=50), seed=1)

    assert sets[0]["weight_stability"] == 0.40 and sets[0]["buy_threshold"] == 0.50
    for params in sets:
        total = params["weight_stability"] + params["weight_coherence"] + params["weight_entropy"]
        assert total == pytest.approx(1.0)
        assert min(params["weight_stability"], params["weight_coherence"]) >= 0.04


def test_train_windows_never_reach_into_their_test_window() -> None:
    folds = rolling_folds(7000, 4)

    for fold in folds:
        assert fold.train_start < fold.train_stop == fold.test_start < fold.test_stop
    assert folds[-1].test_stop <= 7000
    assert folds[1].train_start == folds[0].train_start + (folds[0].test_stop - folds[0].test_start)


def test_fold_sums_of_the_batched_search_match_a_plain_evaluation_of_one_set() -> None:
    # Given the real minutes, the published set and one fold over the whole test window
    from qfh import rules
    from qfh.evaluation.evaluate import evaluate_rule
    from qfh.evaluation.outcomes import Costs

    candles = real_candles()
    params = sample_parameter_sets(SearchSpace(sets=1, windows=(11,), horizons=(1,)), 0)
    folds = rolling_folds(len(candles), 1, train_ratio=1)

    # When the batched search and the single evaluation score the same test window
    _, test = evaluate_parameter_sets(candles, params, folds, costs=Costs(spread_pips=1.0), xp=np)
    fold = folds[0]
    single = evaluate_rule(
        candles.slice(0, fold.test_stop),
        rules.validate_rule("testbed", {}),
        costs=Costs(spread_pips=1.0),
        xp=np,
    )
    window = evaluate_rule(
        candles.slice(0, fold.test_start),
        rules.validate_rule("testbed", {}),
        costs=Costs(spread_pips=1.0),
        xp=np,
    )

    # Then the trades of the test window agree (the whole minus the part before it, where the
    # part before loses its last candle's label to the cut)
    trades_before = window.performance.trades
    assert test.trades[0, 0] in (
        single.performance.trades - trades_before,
        single.performance.trades - trades_before - 1,
    )


def test_a_result_fails_exactly_the_gates_it_misses() -> None:
    passing = {"hit_low": 0.53, "expectancy_pips": 0.4, "trades": 400, "max_drawdown_pips": 80.0}
    failing = {"hit_low": 0.47, "expectancy_pips": -0.1, "trades": 40, "max_drawdown_pips": 900.0}

    assert check_gates(passing, PromotionGates()) == []
    failed = check_gates(failing, PromotionGates())
    assert [reason.split(" ")[0] for reason in failed] == ["hit-rate", "expectancy", "40", "max"]
    assert "0.470 is not above 0.500" in failed[0]
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['hit'\]"):
        PromotionGates.from_mapping({"hit": 0.5})


def test_a_search_on_pure_noise_fails_the_promotion_gates() -> None:
    candles = synthetic(random_walk(6000, seed=4))

    result = walk_forward(candles, space=SMALL, folds=3, seed=0, xp=np)

    failed = check_gates(result.out_of_sample.as_dict(), PromotionGates())
    assert failed
    assert result.out_of_sample.hit_low < 0.5


# --------------------------------------------------------------------------------------------
# The Django side, on the bundled real data.


def load_seed(candles: list[dict[str, Any]]) -> None:
    result = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1")
    assert not result.rejected


@pytest.mark.django_db
def test_training_the_real_pair_stores_a_model_that_the_gates_refuse_to_promote(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    from qfh.evaluation.services import (
        PromotionRefusedError,
        pair_model_promote,
        pair_model_train,
    )

    # Given the real 48 h of EUR/USD
    load_seed(seed_candles)

    # When a model is trained on it
    model = pair_model_train(pair="EUR_USD", folds=3, sets=24, seed=1, xp=np)

    # Then it records what it was trained on and why it may not trade
    assert model.candles == len(seed_candles)
    assert len(model.inputs_hash) == 64
    assert len(model.folds) == 3
    assert model.oos_trades == model.out_of_sample["trades"]
    assert not model.passed_gates and model.failed_gates
    with pytest.raises(PromotionRefusedError, match="cannot be promoted: ") as refusal:
        pair_model_promote(model_id=model.pk)
    assert refusal.value.failed == model.failed_gates
    model.refresh_from_db()
    assert not model.promoted
    # And the same inputs and seed give the same model again
    again = pair_model_train(pair="EUR_USD", folds=3, sets=24, seed=1, xp=np)
    assert (again.inputs_hash, again.params) == (model.inputs_hash, model.params)


def passing_model(**overrides: Any) -> PairModel:
    from datetime import UTC, datetime

    figures = {"hit_low": 0.55, "expectancy_pips": 0.5, "trades": 500, "max_drawdown_pips": 50}
    values: dict[str, Any] = {
        "pair_id": "EUR_USD",
        "rule_type": "testbed",
        "params": {},
        "horizon": 1,
        "data_start": datetime(2025, 1, 1, tzinfo=UTC),
        "data_end": datetime(2025, 2, 1, tzinfo=UTC),
        "candles": 1000,
        "inputs_hash": "0" * 64,
        "seed": 0,
        "search": {},
        "folds": [],
        "out_of_sample": figures,
        "oos_trades": 500,
        "oos_hit_rate": 0.6,
        "oos_hit_low": 0.55,
        "oos_hit_high": 0.65,
        "oos_expectancy_pips": 0.5,
        "oos_pnl_pips": 250.0,
        "oos_max_drawdown_pips": 50.0,
        "oos_sharpe": 1.0,
        "gates": {},
        "passed_gates": True,
    }
    values.update(overrides)
    return PairModel.objects.create(**values)


@pytest.mark.django_db
def test_promoting_a_passing_model_demotes_the_pairs_previous_one(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    from qfh.evaluation.selectors import pair_model_promoted
    from qfh.evaluation.services import pair_model_promote

    load_seed(seed_candles[:10])
    first, second = passing_model(), passing_model()

    pair_model_promote(model_id=first.pk)
    pair_model_promote(model_id=second.pk)

    first.refresh_from_db()
    assert not first.promoted and first.promoted_at is None
    promoted = pair_model_promoted(pair="EUR_USD")
    assert promoted is not None and promoted.pk == second.pk and promoted.promoted_at
    # The database itself refuses a second promoted model for the pair
    with pytest.raises(IntegrityError), transaction.atomic():
        PairModel.objects.filter(pk=first.pk).update(promoted=True)


@pytest.mark.django_db
def test_tightened_gates_stop_a_model_that_passed_when_it_was_trained(
    timescaledb: None, seed_candles: list[dict[str, Any]], settings: Any
) -> None:
    from qfh.evaluation.services import PromotionRefusedError, pair_model_promote

    load_seed(seed_candles[:10])
    model = passing_model()
    settings.QFH_PROMOTION_GATES = {"min_trades": 1000}

    with pytest.raises(PromotionRefusedError, match="500 trades is fewer than 1000"):
        pair_model_promote(model_id=model.pk)
    model.refresh_from_db()
    assert model.failed_gates == ["500 trades is fewer than 1000"]


@pytest.mark.django_db
def test_the_evaluate_command_prints_causal_and_labelled_leaky_figures_and_stores_both(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    load_seed(seed_candles)
    out = StringIO()

    call_command("evaluate", pair="EUR_USD", leaky=True, no_progress=True, stdout=out)

    text = out.getvalue()
    assert "alignment=causal" in text
    assert "alignment=leaky (testbed alignment with look-ahead; for comparison only" in text
    assert "original_hc_accuracy_beyond_band=" in text and "baseline_random" in text
    rows = RuleEvaluation.objects.filter(pair_id="EUR_USD").order_by("id")
    assert [row.leaky for row in rows] == [False, True]
    assert rows[1].original["hc_accuracy_beyond_band"]["low"] > 0.55
    with pytest.raises(CommandError, match="buy_threshold=5 is out of range"):
        call_command("evaluate", pair="EUR_USD", params='{"buy_threshold": 5}', stdout=out)
    with pytest.raises(CommandError, match="pair='XXX_YYY' is unknown"):
        call_command("evaluate", pair="XXX_YYY", stdout=out)
    with pytest.raises(CommandError, match="--financing: '-3' is invalid; expected LONG:SHORT"):
        call_command("evaluate", pair="EUR_USD", financing="-3", stdout=out)
    with pytest.raises(CommandError, match=r"--financing: long_rate=-3\.0 is invalid"):
        call_command("evaluate", pair="EUR_USD", financing="-3:0", stdout=out)


@pytest.mark.django_db
def test_the_train_command_reports_the_out_of_sample_result_and_the_failed_gates(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    load_seed(seed_candles)
    out = StringIO()

    call_command("train", pair="EUR_USD", folds=2, sets=12, seed=3, no_progress=True, stdout=out)

    text = out.getvalue()
    assert "pair_model_id=" in text and "out_of_sample: trades=" in text
    assert "gates=failed: " in text
    assert PairModel.objects.filter(pair_id="EUR_USD").count() == 1


@pytest.mark.django_db
def test_the_tasks_are_routed_to_the_qfh_queue_and_store_their_results(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    from qfh.tasks import evaluate_rule_task, train_pair_model_task

    load_seed(seed_candles)

    evaluation_id = evaluate_rule_task("EUR_USD", horizon=5)
    model_id = train_pair_model_task("EUR_USD", folds=2, sets=8)

    for task in (evaluate_rule_task, train_pair_model_task):
        route = task.app.amqp.router.route({}, task.name)
        assert route["queue"].name == "qfh"
    assert RuleEvaluation.objects.get(pk=evaluation_id).horizon == 5
    assert PairModel.objects.filter(pk=model_id).exists()


@pytest.mark.django_db
def test_the_console_shows_a_models_failed_gates_and_lets_nobody_edit_its_figures(
    timescaledb: None, seed_candles: list[dict[str, Any]], admin_client: Any
) -> None:
    load_seed(seed_candles[:10])
    model = passing_model(failed_gates=["12 trades is fewer than 100"], passed_gates=False)

    listing = admin_client.get("/admin/qfh/pairmodel/?passed_gates__exact=0")
    page = admin_client.get(f"/admin/qfh/pairmodel/{model.pk}/change/")
    evaluations = admin_client.get("/admin/qfh/ruleevaluation/")

    assert listing.status_code == page.status_code == evaluations.status_code == 200
    assert "12 trades is fewer than 100" in page.content.decode()
    assert 'name="oos_hit_rate"' not in page.content.decode()
