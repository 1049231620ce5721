"""Writes for evaluation and training: load candles, run the pure code, store the results."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketdata.models import Pair
from qfh import rules
from qfh.evaluation.candles import Candles
from qfh.evaluation.evaluate import evaluate_rule
from qfh.evaluation.financing import FinancingRates
from qfh.evaluation.outcomes import Costs, pips_to_account
from qfh.evaluation.selectors import candle_arrays
from qfh.evaluation.training import (
    PromotionGates,
    SearchSpace,
    TrainingResult,
    check_gates,
    inputs_hash,
    walk_forward,
)
from qfh.models import PairModel, RuleEvaluation
from septrader.services import audit_record

logger = logging.getLogger(__name__)


class EvaluationError(ValueError):
    """The evaluation or training cannot run on what was asked (too few candles, bad input)."""


class PromotionRefusedError(Exception):
    """A model failed its promotion gates; ``failed`` lists them."""

    def __init__(self, model_id: int, failed: list[str]) -> None:
        self.failed = failed
        super().__init__(f"pair model {model_id} cannot be promoted: " + "; ".join(failed))


def promotion_gates() -> PromotionGates:
    """The configured gates (``QFH_PROMOTION_GATES`` in settings, a mapping), else defaults."""
    return PromotionGates.from_mapping(getattr(settings, "QFH_PROMOTION_GATES", None))


def pair_costs(pair: str, costs: Mapping[str, Any] | None = None) -> Costs:
    """The evaluation's costs of ``pair``: its spread, and the financing the broker charges it
    (the rates and days by weekday the instruments sync stored on the pair; none before a sync),
    each overridden by ``costs`` (``--spread``, ``--financing``, ...)."""
    financing = Pair.objects.filter(symbol=pair).values_list("financing", flat=True).first()
    broker = FinancingRates.from_oanda(financing).cost_fields() if financing else {}
    return Costs.for_pair(pair, **{**broker, **dict(costs or {})})


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def rule_evaluation_run(
    *,
    pair: str,
    timeframe: str = "M1",
    start: datetime | None = None,
    end: datetime | None = None,
    rule_type: str = "testbed",
    params: Mapping[str, Any] | None = None,
    horizon: int = 1,
    leaky: bool = False,
    costs: Mapping[str, Any] | None = None,
    dead_band_pips: float = 0.5,
    seed: int = 0,
    xp: ModuleType,
) -> RuleEvaluation:
    """Evaluate a rule on stored candles on the array module ``xp`` and store the result (a new
    row per run).

    ``leaky=True`` runs the original's look-ahead alignment, labelled as such, for comparison.
    """
    rule = rules.validate_rule(rule_type, params)
    if rule.params.get("confirm_threshold") is not None and timeframe != "M1":
        raise EvaluationError(
            f"timeframe={timeframe!r} cannot be confirmed by M5/M15; confirmation needs M1"
        )
    candles = candle_arrays(pair=pair, timeframe=timeframe, start=start, end=end)
    if len(candles) < horizon + 3:
        raise EvaluationError(f"{pair} {timeframe}: {len(candles)} candles are too few to evaluate")
    cost = pair_costs(pair, costs)
    evaluation = evaluate_rule(
        candles,
        rule,
        pair=pair,
        horizon=horizon,
        costs=cost,
        alignment="leaky" if leaky else "causal",
        allow_look_ahead=leaky,
        dead_band_pips=dead_band_pips,
        seed=seed,
        xp=xp,
    )
    result = evaluation.performance
    row = RuleEvaluation.objects.create(
        pair_id=pair,
        timeframe=timeframe,
        rule_type=rule.rule_type,
        params=dict(rule.params),
        horizon=horizon,
        leaky=leaky,
        alignment_label=evaluation.label,
        data_start=_moment(evaluation.start),
        data_end=_moment(evaluation.end),
        candles=evaluation.candles,
        costs=cost.as_dict(),
        performance=result.as_dict(),
        baselines={name: value.as_dict() for name, value in evaluation.baselines.items()},
        original=evaluation.original,
        equity=evaluation.equity,
        by_confidence=evaluation.by_confidence,
        trades=result.trades,
        hit_rate=result.hit_rate,
        hit_low=result.hit_low,
        hit_high=result.hit_high,
        pnl_pips=result.pnl_pips,
        inputs_hash=inputs_hash(
            candles, rule=rule.as_dict(), horizon=horizon, costs=cost.as_dict(), leaky=leaky
        ),
    )
    logger.info(
        "event=qfh_rule_evaluated pair=%s timeframe=%s rule=%s leaky=%s trades=%d hit_rate=%.4f "
        "evaluation_id=%d",
        pair,
        timeframe,
        rule.rule_type,
        leaky,
        result.trades,
        result.hit_rate,
        row.pk,
    )
    return row


def pair_model_train(
    *,
    pair: str,
    timeframe: str = "M1",
    start: datetime | None = None,
    end: datetime | None = None,
    folds: int = 4,
    sets: int = 200,
    seed: int = 0,
    space: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    min_train_trades: int = 30,
    xp: ModuleType,
    progress: Callable[[int], Any] | None = None,
) -> PairModel:
    """Walk-forward training on stored candles on the array module ``xp``; stores the model with
    its gate verdict."""
    candles = candle_arrays(pair=pair, timeframe=timeframe, start=start, end=end)
    search = SearchSpace(**{**dict(space or {}), "sets": sets})
    cost = pair_costs(pair, costs)
    try:
        result = walk_forward(
            candles,
            space=search,
            folds=folds,
            seed=seed,
            costs=cost,
            min_train_trades=min_train_trades,
            xp=xp,
            progress=progress,
        )
    except ValueError as error:
        raise EvaluationError(f"{pair} {timeframe}: {error}") from error
    gates = promotion_gates()
    oos = _out_of_sample(result, candles, pair=pair, cost=cost)
    failed = check_gates(oos, gates)
    model = PairModel.objects.create(
        pair_id=pair,
        timeframe=timeframe,
        rule_type=result.rule_type,
        params=result.params,
        horizon=result.horizon,
        data_start=_moment(int(candles.times[0])),
        data_end=_moment(int(candles.close_times[-1])),
        candles=len(candles),
        inputs_hash=result.inputs_hash,
        seed=seed,
        search={
            "space": search.as_dict(),
            "folds": folds,
            "costs": cost.as_dict(),
            "min_train_trades": min_train_trades,
            "evaluated_cells": result.evaluated_cells,
        },
        folds=result.folds,
        out_of_sample=oos,
        **_oos_columns(oos),
        gates=gates.as_dict(),
        failed_gates=failed,
        passed_gates=not failed,
    )
    logger.info(
        "event=qfh_pair_model_trained pair=%s model_id=%d sets=%d folds=%d oos_trades=%d "
        "oos_hit_rate=%.4f passed_gates=%s",
        pair,
        model.pk,
        result.sets,
        folds,
        oos["trades"],
        oos["hit_rate"],
        not failed,
    )
    return model


def _out_of_sample(
    result: TrainingResult, candles: Candles, *, pair: str, cost: Costs
) -> dict[str, Any]:
    """The out-of-sample figures of a training, with its P&L in the account's currency."""
    oos = result.out_of_sample.as_dict()
    money, currency = pips_to_account(
        oos["pnl_pips"],
        pair=pair,
        price=float(candles.close[-1]),
        units=cost.units,
        account_currency=cost.account_currency,
        pip=candles.pip,
    )
    oos.update(pnl_account=float(money), account_currency=currency)
    return oos


def _oos_columns(oos: Mapping[str, Any]) -> dict[str, Any]:
    """The out-of-sample figures a PairModel keeps in columns of their own (for the console's
    lists and ordering)."""
    return {
        "oos_trades": oos["trades"],
        "oos_hit_rate": oos["hit_rate"],
        "oos_hit_low": oos["hit_low"],
        "oos_hit_high": oos["hit_high"],
        "oos_expectancy_pips": oos["expectancy_pips"],
        "oos_pnl_pips": oos["pnl_pips"],
        "oos_max_drawdown_pips": oos["max_drawdown_pips"],
        "oos_sharpe": oos["sharpe"],
    }


def pair_model_promote(
    *, model_id: int, actor: str = "system:qfh", address: str | None = None
) -> PairModel:
    """Promote a model that passed its gates, demoting the pair's previous one.

    The gates are checked again against the stored figures and the *current* configuration, so
    tightening the gates also stops models trained before the change; a refusal stores the
    failed gates on the model (the console shows them) and raises ``PromotionRefusedError``.
    Promotions and refusals are both written to the AuditLog under ``actor``.
    """
    with transaction.atomic():
        model = PairModel.objects.select_for_update().get(pk=model_id)
        failed = check_gates(model.out_of_sample, promotion_gates())
        if failed:
            PairModel.objects.filter(pk=model.pk).update(failed_gates=failed, passed_gates=False)
        else:
            PairModel.objects.filter(pair_id=model.pair_id, promoted=True).exclude(
                pk=model.pk
            ).update(promoted=False, promoted_at=None)
            model.promoted = True
            model.promoted_at = timezone.now()
            model.save(update_fields=["promoted", "promoted_at"])
        audit_record(
            actor=actor,
            action="pair_model.promote_refused" if failed else "pair_model.promote",
            target=f"{model.pair_id} model {model.pk}",
            details={"failed_gates": failed},
            address=address,
        )
    if failed:
        logger.info(
            "event=qfh_pair_model_promotion_refused pair=%s model_id=%d failed=%d",
            model.pair_id,
            model.pk,
            len(failed),
        )
        raise PromotionRefusedError(model.pk, failed)
    logger.info("event=qfh_pair_model_promoted pair=%s model_id=%d", model.pair_id, model.pk)
    return model
