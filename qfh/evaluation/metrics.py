"""Scores of a signal series: hit rate with its Wilson interval, P&L, Sharpe, drawdown, exposure.

Definitions (used the same way in a single evaluation and in the batched training search):

* a *trade* is a non-HOLD signal at a candle with a full horizon after it;
* a *hit* is a trade whose net P&L after costs is positive;
* ``accuracy`` is the original's measure (QFH_SPEC.md section 6.1): a BUY is correct iff the move
  over the horizon exceeds the dead band, a SELL iff it is below minus the dead band; moves inside
  the band count as wrong; ``accuracy_beyond_band`` counts only trades whose move left the band;
* ``expectancy_pips`` is the mean net P&L per trade; ``profit_factor`` gross wins / gross losses;
* ``sharpe`` is the per-trade mean / standard deviation, annualised by the trades per year
  (overlapping trades make it optimistic at long horizons; it ranks, it does not promise);
* ``max_drawdown_pips`` is the largest fall of cumulative net pips from its running peak
  (trades taken in time order, the peak starting at 0);
* ``exposure`` is the share of candles during which at least one position is open.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# The 97.5% quantile of the standard normal distribution, for two-sided 95% intervals.
Z95 = 1.959963984540054
SECONDS_PER_YEAR = 365.25 * 86_400


def wilson_interval(successes: Any, trials: Any, z: float = Z95) -> tuple[Any, Any]:
    """Wilson score interval of a binomial proportion; (0, 1) where there are no trials."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    safe = np.maximum(n, 1.0)
    p = k / safe
    denominator = 1.0 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denominator
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denominator
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


@dataclass(frozen=True)
class Performance:
    eligible: int
    trades: int
    signal_rate: float
    hits: int
    hit_rate: float
    hit_low: float
    hit_high: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    beyond_band: int
    accuracy_beyond_band: float
    accuracy_beyond_band_low: float
    accuracy_beyond_band_high: float
    pnl_pips: float
    expectancy_pips: float
    profit_factor: float | None
    sharpe: float
    max_drawdown_pips: float
    exposure: float
    pnl_account: float = 0.0
    account_currency: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def max_drawdown(pnl: np.ndarray) -> Any:
    """Largest fall of the cumulative sum from its running peak (which starts at 0), per row."""
    cumulative = np.cumsum(pnl, axis=-1)
    peak = np.maximum.accumulate(np.maximum(cumulative, 0.0), axis=-1)
    if cumulative.shape[-1] == 0:
        return np.zeros(cumulative.shape[:-1])
    return np.max(peak - cumulative, axis=-1)


def performance(
    direction: np.ndarray,
    *,
    net_pips: np.ndarray,
    move_pips: np.ndarray,
    bars_held: np.ndarray,
    eligible: np.ndarray,
    times: np.ndarray,
    dead_band_pips: float = 0.5,
) -> Performance:
    """Scores of one signal series (1-D arrays over candles; ``net_pips`` for the signal taken).

    ``net_pips[j]`` must be the net result of trading ``direction[j]`` at candle j.
    """
    trade = (direction != 0) & eligible
    count = int(trade.sum())
    eligible_count = int(eligible.sum())
    pnl = np.where(trade, net_pips, 0.0)
    taken = pnl[trade]
    hits = int((taken > 0).sum())
    hit_low, hit_high = wilson_interval(hits, count)
    signed_move = np.where(trade, direction * move_pips, 0.0)
    correct = int((signed_move[trade] > dead_band_pips).sum())
    accuracy_low, accuracy_high = wilson_interval(correct, count)
    beyond = trade & (np.abs(move_pips) > dead_band_pips)
    beyond_count = int(beyond.sum())
    beyond_correct = int((signed_move[beyond] > dead_band_pips).sum())
    beyond_low, beyond_high = wilson_interval(beyond_correct, beyond_count)
    wins = float(taken[taken > 0].sum())
    losses = float(-taken[taken < 0].sum())
    years = max(float(times[-1] - times[0]) / SECONDS_PER_YEAR, 1e-9) if len(times) > 1 else 1.0
    sharpe = 0.0
    if count > 1 and float(taken.std()) > 0:
        sharpe = float(taken.mean() / taken.std(ddof=1) * math.sqrt(count / years))
    # Exposure: +1 where a position opens (after the entry close), -1 where it ends.
    cover = np.zeros(len(direction) + 2)
    starts = np.flatnonzero(trade)
    np.add.at(cover, starts + 1, 1)
    np.add.at(cover, np.minimum(starts + 1 + bars_held[starts], len(cover) - 1), -1)
    open_positions = np.cumsum(cover)[: len(direction)]
    exposure = float(((open_positions > 0) & eligible).sum() / max(eligible_count, 1))
    return Performance(
        eligible=eligible_count,
        trades=count,
        signal_rate=count / max(eligible_count, 1),
        hits=hits,
        hit_rate=hits / count if count else 0.0,
        hit_low=hit_low,
        hit_high=hit_high,
        accuracy=correct / count if count else 0.0,
        accuracy_low=accuracy_low,
        accuracy_high=accuracy_high,
        beyond_band=beyond_count,
        accuracy_beyond_band=beyond_correct / beyond_count if beyond_count else 0.0,
        accuracy_beyond_band_low=beyond_low,
        accuracy_beyond_band_high=beyond_high,
        pnl_pips=float(taken.sum()),
        expectancy_pips=float(taken.mean()) if count else 0.0,
        profit_factor=(wins / losses) if losses > 0 else None,
        sharpe=sharpe,
        max_drawdown_pips=float(max_drawdown(taken)) if count else 0.0,
        exposure=exposure,
    )
