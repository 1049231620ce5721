"""Training = a walk-forward parameter search, every set of every fold in one array program.

1. Sample parameter sets (a seeded random search over the rule's weights, thresholds, gates,
   window length, horizon and multi-timeframe confirmation; set 0 is always the published one).
2. Cut the candles into rolling folds: train on a window, test on the window right after it.
   The last ``max horizon`` candles of every train window are purged, because their labels would
   reach into the test window's prices.
3. Score every set on every candle at once: the features are computed once per window length
   (causal, so one pass over the whole series serves every fold), the costed outcomes once per
   horizon, and each block of sets becomes (sets, candles) arrays of signals and P&L whose fold
   sums are taken slice by slice. The array module (NumPy or CuPy) is the caller's ``xp``: the
   candles and outcomes are copied to it once, and only the per-fold sums come back.
4. Select on each fold's train window only (the best Wilson lower bound of the net hit rate
   among sets with enough trades) and score that set on the fold's test window. The
   out-of-sample result is the concatenation of the test windows; the model's parameters are
   the last fold's choice (the one made on the most recent data).

Same candles, same search space, same seed: same sets, same folds, same model (no other source
of randomness exists here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from qfh import rules
from qfh.engine import to_numpy
from qfh.engine.backend import block_items
from qfh.evaluation.candles import Candles
from qfh.evaluation.evaluate import TESTBED_SCORING, rule_signals
from qfh.evaluation.features import FeatureRequest, Features, HigherTimeframe, features_batch
from qfh.evaluation.metrics import Performance, performance, wilson_interval
from qfh.evaluation.outcomes import Costs, trade_outcomes

# On the CPU each block of sets holds about this many (set, candle) cells per array (64 MB in
# float64). On a device blocks follow the free memory through the peak bytes one cell takes while
# a block is scored: 37 without confirmation and 57 with it, measured with tracemalloc on NumPy
# and rounded up (tests/qfh/test_qfh_blocks.py measures it again).
BLOCK_CELLS = 1 << 23
BYTES_PER_CELL = 64


@dataclass(frozen=True)
class SearchSpace:
    """What the random search may vary (ranges are inclusive; tuples are choices)."""

    sets: int = 200
    windows: tuple[int, ...] = (8, 11, 16)
    horizons: tuple[int, ...] = (1, 5, 15)
    confirm_thresholds: tuple[float | None, ...] = (None, 0.8)
    buy_threshold: tuple[float, float] = (0.40, 0.70)
    sell_threshold: tuple[float, float] = (0.40, 0.70)
    min_confidence: tuple[float, float] = (0.50, 0.90)
    min_coherence: tuple[float, float] = (0.20, 0.60)

    def __post_init__(self) -> None:
        if self.sets < 1:
            raise ValueError(f"sets={self.sets!r} is invalid; expected at least 1")
        for window in self.windows:
            rules.validate_rule("testbed", {"window": window})
        if not self.horizons or min(self.horizons) < 1:
            raise ValueError(f"horizons={self.horizons!r} is invalid; expected candles >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Fold:
    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


@dataclass(frozen=True)
class TrainingResult:
    rule_type: str
    params: dict[str, Any]
    horizon: int
    inputs_hash: str
    seed: int
    sets: int
    folds: list[dict[str, Any]]
    out_of_sample: Performance
    evaluated_cells: int
    parameter_sets: list[dict[str, Any]] = field(repr=False, default_factory=list)


def sample_parameter_sets(space: SearchSpace, seed: int) -> list[dict[str, Any]]:
    """``space.sets`` testbed parameter sets; the first is the published one (section 5.1)."""
    rng = np.random.default_rng(seed)
    published = dict(rules.TESTBED_DEFAULTS, horizon=1)
    published["window"] = 11 if 11 in space.windows else space.windows[0]
    published["horizon"] = 1 if 1 in space.horizons else space.horizons[0]
    sets = [published]
    for _ in range(space.sets - 1):
        # Weights uniform on the simplex, each at least 0.05 (the original's search floor).
        weights = 0.05 + 0.85 * rng.dirichlet(np.ones(3))
        weights = weights / weights.sum()
        candidate = {
            **rules.TESTBED_DEFAULTS,
            "weight_stability": float(weights[0]),
            "weight_coherence": float(weights[1]),
            "weight_entropy": float(1.0 - weights[0] - weights[1]),
            "buy_threshold": float(rng.uniform(*space.buy_threshold)),
            "sell_threshold": float(rng.uniform(*space.sell_threshold)),
            "min_confidence": float(rng.uniform(*space.min_confidence)),
            "min_coherence": float(rng.uniform(*space.min_coherence)),
            "window": int(space.windows[rng.integers(len(space.windows))]),
            "confirm_threshold": space.confirm_thresholds[
                rng.integers(len(space.confirm_thresholds))
            ],
            "horizon": int(space.horizons[rng.integers(len(space.horizons))]),
        }
        sets.append(candidate)
    return sets


def rolling_folds(count: int, folds: int, *, train_ratio: int = 3) -> list[Fold]:
    """``folds`` rolling windows: train on ``train_ratio`` test-lengths, test on the next one."""
    if folds < 1:
        raise ValueError(f"folds={folds!r} is invalid; expected at least 1")
    test = count // (folds + train_ratio)
    if test < 2:
        raise ValueError(f"{count} candles are too few for {folds} folds")
    train = test * train_ratio
    result = []
    for index in range(folds):
        start = index * test
        result.append(Fold(start, start + train, start + train, start + train + test))
    return result


def inputs_hash(candles: Candles, **config: Any) -> str:
    """SHA-256 of the candle arrays and the training configuration."""
    digest = hashlib.sha256()
    for array in (candles.times, candles.open, candles.high, candles.low, candles.close):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(np.ascontiguousarray(candles.volume).tobytes())
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()


@dataclass
class _Sums:
    """Per (set, fold) sums over a fold's window, for train and test."""

    trades: np.ndarray
    hits: np.ndarray
    pnl: np.ndarray
    pnl2: np.ndarray


def _set_columns(sets: list[dict[str, Any]], xp: ModuleType) -> dict[str, Any]:
    columns = {
        name: xp.asarray([[s[name]] for s in sets], dtype=xp.float64) for name in TESTBED_SCORING
    }
    thresholds = [
        np.nan if s["confirm_threshold"] is None else s["confirm_threshold"] for s in sets
    ]
    columns["confirm_threshold"] = xp.asarray([[value] for value in thresholds])
    return columns


def block_signals(
    sets: list[dict[str, Any]],
    features: Features,
    higher: list[HigherTimeframe],
    xp: ModuleType,
) -> Any:
    """The signals of a block of testbed parameter sets as a (sets, candles) int8 array: the
    rule and the confirmation of ``rule_signals`` (the functions evaluation and live analysis
    use), with every parameter a (sets, 1) column."""
    return rule_signals("testbed", _set_columns(sets, xp), features, higher).direction


def _block_pnl(
    sets: list[dict[str, Any]],
    features: Features,
    higher: list[HigherTimeframe],
    outcome_table: dict[str, Any],
    horizon_index: Any,
    xp: ModuleType,
) -> tuple[Any, Any, Any]:
    """(direction, net pips, trade mask) as (sets, candles) arrays for one block of sets."""
    direction = block_signals(sets, features, higher, xp)
    direction = xp.where(outcome_table["valid"][horizon_index], direction, 0).astype(xp.int8)
    net = xp.where(
        direction > 0,
        outcome_table["long"][horizon_index],
        xp.where(direction < 0, outcome_table["short"][horizon_index], 0.0),
    )
    return direction, net, direction != 0


def _fold_sums(net: Any, trade: Any, windows: list[tuple[int, int]], xp: ModuleType) -> _Sums:
    trades, hits, pnl, pnl2 = [], [], [], []
    for start, stop in windows:
        part_net = net[:, start:stop]
        part_trade = trade[:, start:stop]
        trades.append(part_trade.sum(axis=1))
        hits.append(((part_net > 0) & part_trade).sum(axis=1))
        pnl.append(part_net.sum(axis=1))
        pnl2.append((part_net * part_net).sum(axis=1))

    def stack(values: list[Any]) -> np.ndarray:
        return to_numpy(xp.stack(values, axis=1)).astype(np.float64)

    return _Sums(stack(trades), stack(hits), stack(pnl), stack(pnl2))


@dataclass(frozen=True)
class _SearchInputs:
    """What every block of sets is scored against, on the search's array module: the features
    per window length (with M5/M15 where a set confirms) and the costed outcomes per horizon."""

    features: dict[int, tuple[Features, list[HigherTimeframe]]]
    horizons: dict[int, int]
    outcomes: dict[str, Any]
    host_outcomes: list[Any]


def _search_inputs(
    candles: Candles, sets: list[dict[str, Any]], costs: Costs, xp: ModuleType
) -> _SearchInputs:
    windows = sorted({s["window"] for s in sets})
    confirming = {s["window"] for s in sets if s["confirm_threshold"] is not None}
    requests = [
        FeatureRequest(candles=candles, window=window, confirm=window in confirming)
        for window in windows
    ]
    features = dict(zip(windows, features_batch(requests, xp=xp), strict=True))
    horizons = sorted({s["horizon"] for s in sets})
    host = [trade_outcomes(candles, horizon=h, costs=costs) for h in horizons]
    outcomes = {
        "long": xp.asarray(np.stack([o.long_net for o in host])),
        "short": xp.asarray(np.stack([o.short_net for o in host])),
        "valid": xp.asarray(np.stack([o.valid for o in host])),
    }
    return _SearchInputs(features, {h: i for i, h in enumerate(horizons)}, outcomes, host)


def block_sets(xp: ModuleType, candles: int) -> int:
    """Parameter sets per block of the search over ``candles`` candles on ``xp``."""
    cells = block_items(xp, host_items=BLOCK_CELLS, bytes_per_item=BYTES_PER_CELL)
    return max(1, cells // max(candles, 1))


def evaluate_parameter_sets(
    candles: Candles,
    sets: list[dict[str, Any]],
    folds: list[Fold],
    *,
    costs: Costs,
    xp: ModuleType,
    progress: Callable[[int], Any] | None = None,
) -> tuple[_Sums, _Sums]:
    """Train and test sums of every set on every fold: host arrays of shape (sets, folds).

    ``candles`` are host arrays; the search runs on ``xp``."""
    inputs = _search_inputs(candles, sets, costs, xp)
    return _evaluate(inputs, len(candles), sets, folds, xp, progress)


def _evaluate(
    inputs: _SearchInputs,
    total: int,
    sets: list[dict[str, Any]],
    folds: list[Fold],
    xp: ModuleType,
    progress: Callable[[int], Any] | None,
) -> tuple[_Sums, _Sums]:
    purge = max(inputs.horizons)
    train_windows = [(f.train_start, max(f.train_start, f.train_stop - purge)) for f in folds]
    test_windows = [(f.test_start, f.test_stop) for f in folds]
    shape = (len(sets), len(folds))
    train = _Sums(*(np.zeros(shape) for _ in range(4)))
    test = _Sums(*(np.zeros(shape) for _ in range(4)))
    block = block_sets(xp, total)
    for window, (features, higher) in inputs.features.items():
        members = [i for i, s in enumerate(sets) if s["window"] == window]
        # Blocks hold either confirming or non-confirming sets, so that only the confirming
        # blocks pay for the higher-timeframe signals.
        plain = [i for i in members if sets[i]["confirm_threshold"] is None]
        confirming = [i for i in members if sets[i]["confirm_threshold"] is not None]
        blocks = [
            part[first : first + block]
            for part in (plain, confirming)
            for first in range(0, len(part), block)
        ]
        for chosen in blocks:
            group = [sets[i] for i in chosen]
            horizon_index = xp.asarray([inputs.horizons[s["horizon"]] for s in group])
            frames = higher if group[0]["confirm_threshold"] is not None else []
            _, net, trade = _block_pnl(group, features, frames, inputs.outcomes, horizon_index, xp)
            for target, windows in ((train, train_windows), (test, test_windows)):
                sums = _fold_sums(net, trade, windows, xp)
                for name in ("trades", "hits", "pnl", "pnl2"):
                    getattr(target, name)[chosen] = getattr(sums, name)
            if progress:
                progress(len(chosen))
    return train, test


def select(train: _Sums, *, min_trades: int) -> np.ndarray:
    """Per fold, the set with the best train Wilson lower bound of the net hit rate among sets
    with at least ``min_trades`` trades and a positive train expectancy (ties: the lower index;
    when no set qualifies, the best lower bound overall)."""
    low, _ = wilson_interval(train.hits, train.trades)
    expectancy = train.pnl / np.maximum(train.trades, 1)
    qualified = (train.trades >= min_trades) & (expectancy > 0)
    score = np.where(qualified, low, -1.0 + low)
    return np.argmax(score, axis=0)


def _series(
    inputs: _SearchInputs,
    count: int,
    chosen: list[dict[str, Any]],
    folds: list[Fold],
    xp: ModuleType,
) -> tuple[np.ndarray, ...]:
    """The out-of-sample series: in each fold's test window, the signals of that fold's choice
    (scored on ``xp`` like the search, copied to the host once per fold)."""
    direction = np.zeros(count, dtype=np.int8)
    net = np.zeros(count)
    move = np.zeros(count)
    bars = np.zeros(count, dtype=np.int64)
    eligible = np.zeros(count, dtype=bool)
    for fold, params in zip(folds, chosen, strict=True):
        position = inputs.horizons[params["horizon"]]
        outcomes = inputs.host_outcomes[position]
        features, higher = inputs.features[params["window"]]
        frames = higher if params["confirm_threshold"] is not None else []
        horizon_index = xp.asarray([position])
        signals, pnl, _ = _block_pnl([params], features, frames, inputs.outcomes, horizon_index, xp)
        part = slice(fold.test_start, fold.test_stop)
        direction[part] = to_numpy(signals[0, part])
        net[part] = to_numpy(pnl[0, part])
        move[part] = outcomes.move_pips[part]
        bars[part] = outcomes.bars_held[part]
        eligible[part] = to_numpy(features.valid[part]) & outcomes.valid[part]
    return direction, net, move, bars, eligible


def _fold_reports(
    candles: Candles,
    fold_list: list[Fold],
    choice: np.ndarray,
    chosen: list[dict[str, Any]],
    train: _Sums,
    test: _Sums,
) -> list[dict[str, Any]]:
    """Per fold: its windows, the set chosen on its train window and that set's train and test
    figures."""
    fold_reports = []
    for number, (fold, index) in enumerate(zip(fold_list, choice, strict=True)):
        index = int(index)

        def figures(sums: _Sums, index: int = index, number: int = number) -> dict[str, Any]:
            trades = int(sums.trades[index, number])
            hits = int(sums.hits[index, number])
            low, high = wilson_interval(hits, trades)
            return {
                "trades": trades,
                "hit_rate": hits / trades if trades else 0.0,
                "hit_low": low,
                "hit_high": high,
                "pnl_pips": float(sums.pnl[index, number]),
            }

        fold_reports.append(
            {
                "fold": number,
                "train": [int(fold.train_start), int(fold.train_stop)],
                "test": [int(fold.test_start), int(fold.test_stop)],
                "train_from": int(candles.times[fold.train_start]),
                "test_to": int(candles.close_times[fold.test_stop - 1]),
                "set": index,
                "params": chosen[number],
                "in_sample": figures(train),
                "out_of_sample": figures(test),
            }
        )
    return fold_reports


def walk_forward(
    candles: Candles,
    *,
    space: SearchSpace | None = None,
    folds: int = 4,
    seed: int = 0,
    costs: Costs | None = None,
    min_train_trades: int = 30,
    xp: ModuleType,
    progress: Callable[[int], Any] | None = None,
) -> TrainingResult:
    """Search ``space`` on rolling folds of ``candles`` (host arrays) on ``xp`` and return the
    walk-forward model."""
    space = space or SearchSpace()
    costs = costs or Costs()
    sets = sample_parameter_sets(space, seed)
    fold_list = rolling_folds(len(candles), folds)
    inputs = _search_inputs(candles, sets, costs, xp)
    train, test = _evaluate(inputs, len(candles), sets, fold_list, xp, progress)
    choice = select(train, min_trades=min_train_trades)
    chosen = [sets[int(index)] for index in choice]
    direction, net, move, bars, eligible = _series(inputs, len(candles), chosen, fold_list, xp)
    oos = performance(
        direction,
        net_pips=net,
        move_pips=move,
        bars_held=bars,
        eligible=eligible,
        times=candles.times,
    )
    fold_reports = _fold_reports(candles, fold_list, choice, chosen, train, test)
    final = dict(chosen[-1])
    horizon = int(final.pop("horizon"))
    config = {
        "space": space.as_dict(),
        "folds": folds,
        "seed": seed,
        "costs": costs.as_dict(),
        "min_train_trades": min_train_trades,
    }
    return TrainingResult(
        rule_type="testbed",
        params=dict(rules.validate_rule("testbed", final).params),
        horizon=horizon,
        inputs_hash=inputs_hash(candles, **config),
        seed=seed,
        sets=len(sets),
        folds=fold_reports,
        out_of_sample=oos,
        evaluated_cells=len(sets) * len(candles),
        parameter_sets=sets,
    )


@dataclass(frozen=True)
class PromotionGates:
    """What an out-of-sample result must show before its model may trade (DESIGN.md 11).

    Defaults: the Wilson 95% lower bound of the net hit rate (after costs) above 50%, a positive
    expectancy, at least 100 out-of-sample trades, and a drawdown of at most 300 pips.
    """

    min_hit_lower_bound: float = 0.50
    min_expectancy_pips: float = 0.0
    min_trades: int = 100
    max_drawdown_pips: float = 300.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> PromotionGates:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ValueError(f"promotion gates: unknown key(s) {unknown}; expected {sorted(known)}")
        return cls(**dict(values or {}))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_gates(result: Mapping[str, Any], gates: PromotionGates) -> list[str]:
    """The gates an out-of-sample result (``Performance.as_dict()``) fails, as sentences."""
    failed = []
    if not result["hit_low"] > gates.min_hit_lower_bound:
        failed.append(
            f"hit-rate lower bound {result['hit_low']:.3f} is not above "
            f"{gates.min_hit_lower_bound:.3f}"
        )
    if not result["expectancy_pips"] > gates.min_expectancy_pips:
        failed.append(
            f"expectancy {result['expectancy_pips']:.3f} pips is not above "
            f"{gates.min_expectancy_pips:.3f}"
        )
    if result["trades"] < gates.min_trades:
        failed.append(f"{result['trades']} trades is fewer than {gates.min_trades}")
    if result["max_drawdown_pips"] > gates.max_drawdown_pips:
        failed.append(
            f"max drawdown {result['max_drawdown_pips']:.1f} pips exceeds "
            f"{gates.max_drawdown_pips:.1f}"
        )
    return failed
