"""Automatic demotion of a live pair whose results fell far below its model (pure: no ORM).

While a pair trades live on a promoted pair model, ``should_demote`` compares the trades it closed
since the model was promoted (or since its last demotion, whichever is later) with the model's
walk-forward out-of-sample (OOS) figures, and says whether to switch the pair to reducing-only:

* nothing is decided before ``min_trades`` live trades have closed (SystemConfig
  ``demotion.min_trades``, default 20): a handful of losses is noise, not evidence;
* **hit rate**: the live net hit rate's Wilson score *upper* bound is below the model's OOS hit
  rate Wilson *lower* bound, both at the same two-sided confidence (``demotion.confidence_percent``,
  default 95). The two intervals no longer overlap: even the most generous reading of the live
  record is worse than the least generous reading of the model's. Requiring disjoint intervals is
  much stricter than a single 5 % test, which keeps the false demotions of a check that looks again
  after every trade rare;
* **drawdown**: the live maximum drawdown, in pips, is above ``demotion.drawdown_multiple``
  (default 2) times the model's OOS maximum drawdown. A model whose OOS drawdown is 0 gives no
  scale, so only the hit-rate test applies to it.

A live trade is a *hit* when its net result in the account currency (realised P&L plus financing)
is positive, as an OOS trade is a hit when its net pips after costs are positive
(qfh/evaluation/metrics.py). The live drawdown is that of the trades' net pips (the signed move
between the entry and exit fills, so the spread paid is in it) in closing order, from a peak that
starts at 0, the way ``max_drawdown_pips`` is measured out of sample.

The OOS lower bound is recomputed from the model's hit rate and trade count at the configured
confidence (at 95 % it is the stored ``oos_hit_low``), so both sides always use one confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

from qfh.evaluation.metrics import wilson_interval


@dataclass(frozen=True)
class LiveTrade:
    """One closed live trade: its net result in the account currency and in pips."""

    net_pl: Decimal
    net_pips: Decimal


@dataclass(frozen=True)
class ModelFigures:
    """The promoted model's out-of-sample figures the live record is held to."""

    trades: int
    hit_rate: float
    max_drawdown_pips: float


@dataclass(frozen=True)
class DemotionSettings:
    min_trades: int = 20
    confidence_percent: Decimal = Decimal(95)
    drawdown_multiple: Decimal = Decimal(2)


@dataclass(frozen=True)
class DemotionVerdict:
    demote: bool
    # A sentence naming the figures, for the audit row, the alert and the pair's state reason.
    reason: str
    trades: int
    hits: int
    live_hit_rate: float
    live_hit_high: float
    oos_hit_low: float
    live_drawdown_pips: float
    drawdown_limit_pips: float
    # Which tests failed: "hit_rate", "drawdown" (empty when the pair keeps trading).
    failed: tuple[str, ...] = ()

    def figures(self) -> dict[str, object]:
        """The figures in JSON form, for the audit row and the alert's details."""
        return {
            "trades": self.trades,
            "hits": self.hits,
            "live_hit_rate": round(self.live_hit_rate, 4),
            "live_hit_high": round(self.live_hit_high, 4),
            "oos_hit_low": round(self.oos_hit_low, 4),
            "live_drawdown_pips": round(self.live_drawdown_pips, 1),
            "drawdown_limit_pips": round(self.drawdown_limit_pips, 1),
            "failed": list(self.failed),
        }


def z_score(confidence_percent: Decimal) -> float:
    """The standard normal quantile of a two-sided interval: 1.96 at 95 %."""
    tail = (1 - float(confidence_percent) / 100) / 2
    return NormalDist().inv_cdf(1 - tail)


def wilson_bounds(hits: float, trades: int, confidence_percent: Decimal) -> tuple[float, float]:
    """The Wilson score interval of ``hits`` out of ``trades`` (0, 1 with no trades)."""
    low, high = wilson_interval(hits, trades, z_score(confidence_percent))
    return float(low), float(high)


def max_drawdown_pips(pips: Sequence[Decimal]) -> float:
    """The largest fall of the cumulative pips from their running peak, which starts at 0."""
    peak = cumulative = Decimal(0)
    deepest = Decimal(0)
    for value in pips:
        cumulative += value
        peak = max(peak, cumulative)
        deepest = max(deepest, peak - cumulative)
    return float(deepest)


def should_demote(
    trades: Sequence[LiveTrade], model: ModelFigures, settings: DemotionSettings
) -> DemotionVerdict:
    """Whether the live record ``trades`` (closing order) has fallen far below ``model``."""
    count = len(trades)
    hits = sum(1 for trade in trades if trade.net_pl > 0)
    _, live_high = wilson_bounds(hits, count, settings.confidence_percent)
    # The model's hits as a count; a fraction when its rate was rounded, which Wilson takes.
    oos_low, _ = wilson_bounds(
        model.hit_rate * model.trades, model.trades, settings.confidence_percent
    )
    drawdown = max_drawdown_pips([trade.net_pips for trade in trades])
    limit = float(settings.drawdown_multiple) * model.max_drawdown_pips
    failed: list[str] = []
    if count >= settings.min_trades:
        if live_high < oos_low:
            failed.append("hit_rate")
        if model.max_drawdown_pips > 0 and drawdown > limit:
            failed.append("drawdown")
    live_rate = hits / count if count else 0.0
    confidence = f"{settings.confidence_percent}%"
    if count < settings.min_trades:
        reason = f"{count} live trades closed, fewer than the {settings.min_trades} a verdict needs"
    else:
        parts = [
            f"live net hit rate {live_rate:.1%} ({hits} of {count} trades), Wilson {confidence} "
            f"upper bound {live_high:.4f} "
            + ("below" if "hit_rate" in failed else "not below")
            + f" the model's out-of-sample lower bound {oos_low:.4f}",
            f"live drawdown {drawdown:.1f} pips "
            + ("above" if "drawdown" in failed else "within")
            + f" {settings.drawdown_multiple} x the out-of-sample {model.max_drawdown_pips:.1f} "
            f"pips = {limit:.1f} pips",
        ]
        reason = "; ".join(parts)
    return DemotionVerdict(
        demote=bool(failed),
        reason=reason,
        trades=count,
        hits=hits,
        live_hit_rate=live_rate,
        live_hit_high=live_high,
        oos_hit_low=oos_low,
        live_drawdown_pips=drawdown,
        drawdown_limit_pips=limit,
        failed=tuple(failed),
    )
