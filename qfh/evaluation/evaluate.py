"""Evaluate a signal rule on one pair's candles: causal features, signals, costed outcomes,
scores, and the same scores for baselines (pure NumPy/CuPy; the service stores the result).

The features and signals run on the array module the caller passes (``xp``); the signals come
back to the host once, where they meet the costed outcomes and the scores (NumPy).

The leak guard: every feature carries the moment it became known, every label the moment its
prices start (the signal candle's close). ``evaluate_rule`` refuses any signal whose features
were known after its label started, unless the caller asks for the labelled leaky comparison
(``alignment="leaky", allow_look_ahead=True``), which exists only to reproduce the original's
figures next to the honest ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import ModuleType
from typing import Any

import numpy as np

from qfh import rules
from qfh.engine import array_module, to_numpy
from qfh.evaluation.candles import Candles
from qfh.evaluation.features import (
    FeatureRequest,
    Features,
    HigherTimeframe,
    features_batch,
)
from qfh.evaluation.metrics import Performance, performance, wilson_interval
from qfh.evaluation.outcomes import Costs, Outcomes, pips_to_account, trade_outcomes

LEAKY_LABEL = "leaky (testbed alignment with look-ahead; for comparison only, not a result)"
CAUSAL_LABEL = "causal"
EQUITY_POINTS = 400
# The testbed parameters that ``rules.testbed_signals`` scores with (numbers or (sets, 1) columns).
TESTBED_SCORING = (
    "weight_stability",
    "weight_coherence",
    "weight_entropy",
    "buy_threshold",
    "sell_threshold",
    "min_confidence",
    "min_coherence",
    "min_stability",
)


class LookAheadError(ValueError):
    """A signal would be scored on a move that its own features had already seen."""


@dataclass(frozen=True)
class Signals:
    """A rule's output on the candle grid (arrays broadcast over parameter sets when given)."""

    direction: Any
    confidence: Any
    raw_direction: Any  # before the high-confidence gate and confirmation
    high_confidence: Any
    valid: Any
    known_at: Any


@dataclass(frozen=True)
class Evaluation:
    rule: rules.Rule
    pair: str
    alignment: str
    label: str
    horizon: int
    costs: Costs
    candles: int
    start: int
    end: int
    performance: Performance
    baselines: dict[str, Performance]
    original: dict[str, Any]
    equity: list[tuple[int, float]] = field(default_factory=list)
    by_confidence: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "rule": self.rule.as_dict(),
            "pair": self.pair,
            "alignment": self.alignment,
            "label": self.label,
            "horizon": self.horizon,
            "costs": self.costs.as_dict(),
            "candles": self.candles,
            "performance": self.performance.as_dict(),
            "baselines": {name: value.as_dict() for name, value in self.baselines.items()},
            "original": self.original,
        }


def compute_features(
    candles: Candles,
    rule: rules.Rule,
    *,
    xp: ModuleType,
    alignment: str = "causal",
) -> tuple[Features, list[HigherTimeframe]]:
    """Features on ``xp`` of every (host) candle for ``rule``, and its higher timeframes when it
    confirms."""
    return compute_features_many([(candles, rule)], xp=xp, alignment=alignment)[0]


def compute_features_many(
    items: Sequence[tuple[Candles, rules.Rule]],
    *,
    xp: ModuleType,
    alignment: str = "causal",
) -> list[tuple[Features, list[HigherTimeframe]]]:
    """``compute_features`` for many (candles, rule) pairs through one engine call per window
    length; the live analysis serves every pair that closed the same minute this way."""
    requests = [
        FeatureRequest(
            candles=candles,
            window=rule.params["window"],
            volatility_lookback=rule.params.get("volatility_lookback", 100),
            confirm=rule.params.get("confirm_threshold") is not None,
        )
        for candles, rule in items
    ]
    return features_batch(requests, xp=xp, alignment=alignment)


def rule_signals(
    rule_type: str,
    params: Mapping[str, Any],
    features: Features,
    higher: list[HigherTimeframe] | None = None,
) -> Signals:
    """Apply a rule to features (on their array module). ``params`` values may be numbers or
    (sets, 1) arrays of the same module: live analysis and evaluation pass one set, training a
    block of sets (``confirm_threshold`` then a column with NaN for the sets that do not
    confirm), and all three get their signals, and their confirmation, from here."""
    xp = array_module(coherence=features.coherence, known_at=features.known_at)
    direction, confidence, raw, high, weights = _rule_directions(rule_type, params, features, xp)
    known_at = features.known_at
    threshold = params.get("confirm_threshold")
    if higher and threshold is not None:
        direction = confirm_higher(direction, higher, weights=weights, threshold=threshold)
        known_at = higher_known_at(known_at, higher)
    direction = xp.where(features.valid, direction, rules.HOLD).astype(xp.int8)
    return Signals(direction, confidence, raw, high, features.valid, known_at)


def _rule_directions(
    rule_type: str, params: Mapping[str, Any], features: Features, xp: ModuleType
) -> tuple[Any, Any, Any, Any, tuple[Any, Any, Any]]:
    """(direction, confidence, raw direction, high confidence, confirmation weights) of the rule
    on the M1 features, before the confirmation and the validity mask."""
    metrics = {
        "coherence": features.coherence,
        "stability": features.stability,
        "entropy": features.entropy,
    }
    if rule_type == "testbed":
        weights = (
            params["weight_stability"],
            params["weight_coherence"],
            params["weight_entropy"],
        )
        direction, confidence, high = rules.testbed_signals(
            **metrics,
            multiplier=features.multiplier,
            volatility=features.volatility,
            **{name: params[name] for name in TESTBED_SCORING},
            high_confidence_only=False,
        )
        raw = direction
        if params.get("high_confidence_only", True):
            direction = xp.where(high, direction, rules.HOLD).astype(xp.int8)
        return direction, confidence, raw, high, weights
    if rule_type == "pattern_threshold":
        direction, confidence = rules.pattern_threshold_signals(
            **metrics,
            buy_min_coherence=params["buy_min_coherence"],
            buy_min_stability=params["buy_min_stability"],
            buy_max_entropy=params["buy_max_entropy"],
            sell_max_stability=params["sell_max_stability"],
            sell_min_entropy=params["sell_min_entropy"],
        )
        return direction, confidence, direction, direction != rules.HOLD, (0.40, 0.10, 0.50)
    raise rules.RuleError(f"rule_type={rule_type!r} is unknown")


def confirm_higher(
    direction: Any,
    higher: Sequence[HigherTimeframe],
    *,
    weights: tuple[Any, Any, Any],
    threshold: Any,
) -> Any:
    """Section 5.2 confirmation: keep a signal only where every higher timeframe's pipeline
    signal (scored with ``weights``) agrees with confidence above ``threshold``.

    The one implementation for live analysis, evaluation and training. ``direction`` is
    (candles,) for one parameter set or (sets, candles) for a block; ``weights`` and
    ``threshold`` are numbers or (sets, 1) columns of the same array module. In a column, NaN
    marks a set that does not confirm: its signals pass unchanged.
    """
    if not higher or threshold is None:
        return direction
    xp = array_module(direction=direction, threshold=threshold)
    unset = None
    if not isinstance(threshold, int | float):
        unset = xp.isnan(threshold)
        if not bool(xp.any(~unset)):
            return direction
        threshold = xp.nan_to_num(threshold, nan=0.0)
    votes = [_higher_vote(frame, weights, xp) for frame in higher]
    confirmed = rules.confirm(direction, votes, threshold)
    if unset is None:
        return confirmed
    return xp.where(unset, direction, confirmed).astype(xp.int8)


def _higher_vote(
    frame: HigherTimeframe, weights: tuple[Any, Any, Any], xp: ModuleType
) -> tuple[Any, Any]:
    """A higher timeframe's (direction, confidence) on the M1 grid: scored on its own candles,
    then gathered at each M1 candle's latest closed higher candle (HOLD where there is none)."""
    direction, confidence = rules.pipeline_signals(
        coherence=frame.coherence,
        stability=frame.stability,
        entropy=frame.entropy,
        modifier=frame.modifier,
        weight_stability=weights[0],
        weight_coherence=weights[1],
        weight_entropy=weights[2],
    )
    found = frame.found()
    return (
        xp.where(found, rules.gather_closed(direction, frame.index), rules.HOLD),
        rules.gather_closed(confidence, frame.index),
    )


def higher_known_at(known_at: Any, higher: Sequence[HigherTimeframe]) -> Any:
    """When a confirmed signal became known: the later of the M1 features' moment and that of
    each joined higher candle."""
    xp = array_module(known_at=known_at)
    for frame in higher:
        joined = rules.gather_closed(frame.known_at, frame.index)
        known_at = xp.maximum(known_at, xp.where(frame.found(), joined, 0))
    return known_at


def check_causal(signals: Signals, outcomes: Outcomes, *, allow_look_ahead: bool) -> None:
    """Refuse signals whose features were known after their label's prices started."""
    known = signals.known_at
    active = signals.valid & outcomes.valid
    leaks = active & (known > outcomes.label_start)
    if leaks.any() and not allow_look_ahead:
        first = int(np.flatnonzero(leaks)[0])
        raise LookAheadError(
            f"{int(leaks.sum())} signal(s) use prices after their label starts (first at candle "
            f"{first}: features known at {int(known[first])}, label starts at "
            f"{int(outcomes.label_start[first])}); evaluate causally, or ask for the labelled "
            "leaky comparison explicitly (alignment='leaky', allow_look_ahead=True)"
        )


def _net(direction: np.ndarray, outcomes: Outcomes) -> np.ndarray:
    return np.where(
        direction > 0, outcomes.long_net, np.where(direction < 0, outcomes.short_net, 0)
    )


def score(
    direction: np.ndarray,
    outcomes: Outcomes,
    eligible: np.ndarray,
    times: np.ndarray,
    *,
    dead_band_pips: float,
) -> Performance:
    return performance(
        direction,
        net_pips=_net(direction, outcomes),
        move_pips=outcomes.move_pips,
        bars_held=outcomes.bars_held,
        eligible=eligible,
        times=times,
        dead_band_pips=dead_band_pips,
    )


def baseline_signals(
    candles: Candles, eligible: np.ndarray, signal_rate: float, seed: int
) -> dict[str, np.ndarray]:
    """Random (same signal rate, fair coin for the side, fixed seed), momentum (the sign of the
    last move, known at the close) and always-long, on the same eligible candles."""
    rng = np.random.default_rng(seed)
    count = len(candles)
    fire = rng.random(count) < signal_rate
    side = np.where(rng.random(count) < 0.5, 1, -1)
    previous = np.r_[candles.close[0] if count else 0.0, candles.close[:-1]]
    momentum = np.sign(candles.close - previous).astype(np.int8)
    return {
        "random": np.where(fire & eligible, side, 0).astype(np.int8),
        "momentum": np.where(eligible, momentum, 0).astype(np.int8),
        "always_long": np.where(eligible, 1, 0).astype(np.int8),
    }


def evaluate_rule(
    candles: Candles,
    rule: rules.Rule,
    *,
    pair: str = "EUR_USD",
    horizon: int = 1,
    costs: Costs | None = None,
    alignment: str = "causal",
    allow_look_ahead: bool = False,
    dead_band_pips: float = 0.5,
    seed: int = 0,
    xp: ModuleType,
) -> Evaluation:
    """Score ``rule`` on ``candles`` at ``horizon`` candles, after costs, with baselines.

    ``candles`` are host arrays; the features and signals are computed on ``xp`` and the signals
    copied back once, here, before they are scored.
    """
    costs = costs or Costs.for_pair(pair)
    rule = rules.validate_rule(rule.rule_type, rule.params)
    signals = host_signals(candles, rule, xp=xp, alignment=alignment)
    outcomes = trade_outcomes(candles, horizon=horizon, costs=costs)
    check_causal(signals, outcomes, allow_look_ahead=allow_look_ahead)
    eligible = signals.valid & outcomes.valid
    times = candles.times
    result = _account_score(
        signals.direction, outcomes, eligible, candles, pair, costs, dead_band_pips
    )
    baselines = {
        name: score(direction, outcomes, eligible, times, dead_band_pips=dead_band_pips)
        for name, direction in baseline_signals(candles, eligible, result.signal_rate, seed).items()
    }
    equity, by_confidence = _trade_series(signals, outcomes, eligible, times)
    return Evaluation(
        rule=rule,
        pair=pair,
        alignment=alignment,
        label=LEAKY_LABEL if alignment == "leaky" else CAUSAL_LABEL,
        horizon=horizon,
        costs=costs,
        candles=len(candles),
        start=int(times[0]) if len(candles) else 0,
        end=int(candles.close_times[-1]) if len(candles) else 0,
        performance=result,
        baselines=baselines,
        original=_original_figures(signals, outcomes, eligible, dead_band_pips),
        equity=equity,
        by_confidence=by_confidence,
    )


def host_signals(
    candles: Candles, rule: rules.Rule, *, xp: ModuleType, alignment: str = "causal"
) -> Signals:
    """``rule``'s signals on ``candles`` (host arrays), computed on ``xp`` and copied back to the
    host once: what ``evaluate_rule`` scores."""
    features, higher = compute_features(candles, rule, xp=xp, alignment=alignment)
    signals = rule_signals(rule.rule_type, rule.params, features, higher)
    return Signals(*(to_numpy(getattr(signals, item.name)) for item in fields(Signals)))


def _account_score(
    direction: np.ndarray,
    outcomes: Outcomes,
    eligible: np.ndarray,
    candles: Candles,
    pair: str,
    costs: Costs,
    dead_band_pips: float,
) -> Performance:
    """The rule's score, with its P&L also in the account currency at the last close."""
    result = score(direction, outcomes, eligible, candles.times, dead_band_pips=dead_band_pips)
    price = float(candles.close[-1]) if len(candles) else 1.0
    money, currency = pips_to_account(
        result.pnl_pips,
        pair=pair,
        price=price,
        units=costs.units,
        account_currency=costs.account_currency,
        pip=candles.pip,
    )
    return Performance(
        **{**result.as_dict(), "pnl_account": float(money), "account_currency": currency}
    )


def _trade_series(
    signals: Signals, outcomes: Outcomes, eligible: np.ndarray, times: np.ndarray
) -> tuple[list[tuple[int, float]], list[dict[str, Any]]]:
    """The equity curve (at most about ``EQUITY_POINTS`` points) and the confidence buckets of
    the traded signals."""
    trade = (signals.direction != 0) & eligible
    pnl = _net(signals.direction, outcomes)[trade]
    cumulative = np.cumsum(pnl)
    step = max(1, len(cumulative) // EQUITY_POINTS)
    equity = [
        (int(times[index]), round(float(value), 3))
        for index, value in zip(np.flatnonzero(trade)[::step], cumulative[::step], strict=False)
    ]
    by_confidence = confidence_buckets(np.asarray(signals.confidence, dtype=np.float64)[trade], pnl)
    return equity, by_confidence


CONFIDENCE_BUCKETS = 5


def confidence_buckets(
    confidence: np.ndarray, net_pips: np.ndarray, buckets: int = CONFIDENCE_BUCKETS
) -> list[dict[str, Any]]:
    """Hit rate (net P&L > 0 after costs) per confidence quintile of the traded signals.

    A rule whose confidence means something shows rising hit rates from bucket to bucket; each
    row carries its Wilson interval, so a thin bucket reads as the guess it is.
    """
    if len(confidence) == 0:
        return []
    edges = np.unique(np.quantile(confidence, np.linspace(0.0, 1.0, buckets + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for bucket in range(len(edges) - 1):
        chosen = index == bucket
        trades = int(chosen.sum())
        if trades == 0:
            continue
        hits = int((net_pips[chosen] > 0).sum())
        low, high = wilson_interval(hits, trades)
        rows.append(
            {
                "low": round(float(edges[bucket]), 4),
                "high": round(float(edges[bucket + 1]), 4),
                "trades": trades,
                "hits": hits,
                "hit_rate": round(hits / trades, 4),
                "hit_low": round(float(low), 4),
                "hit_high": round(float(high), 4),
                "pnl_pips": round(float(net_pips[chosen].sum()), 1),
            }
        )
    return rows


def _original_figures(
    signals: Signals, outcomes: Outcomes, eligible: np.ndarray, dead_band_pips: float
) -> dict[str, Any]:
    """The testbed's own measures (QFH_SPEC.md section 6.1), gross of costs: overall accuracy of
    every non-HOLD signal, accuracy and rate of the high-confidence ones, and HC accuracy given
    that the move left the dead band."""
    raw = signals.raw_direction * eligible
    signed = raw * outcomes.move_pips
    non_hold = raw != 0
    high = non_hold & signals.high_confidence
    beyond = high & (np.abs(outcomes.move_pips) > dead_band_pips)

    def share(mask: np.ndarray) -> dict[str, Any]:
        trials = int(mask.sum())
        correct = int((signed[mask] > dead_band_pips).sum())
        low, high_ = wilson_interval(correct, trials)
        return {
            "correct": correct,
            "trials": trials,
            "rate": correct / trials if trials else 0.0,
            "low": low,
            "high": high_,
        }

    return {
        "dead_band_pips": dead_band_pips,
        "non_hold_signals": int(non_hold.sum()),
        "overall_accuracy": share(non_hold),
        "hc_accuracy": share(high),
        "hc_rate": float(high.sum() / max(int(non_hold.sum()), 1)),
        "hc_accuracy_beyond_band": share(beyond),
        "bars_beyond_band": float((np.abs(outcomes.move_pips[eligible]) > dead_band_pips).mean())
        if eligible.any()
        else 0.0,
    }
