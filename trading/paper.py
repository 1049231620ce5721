"""The paper stage between a promoted model and live trading (pure: no ORM, no broker).

A pair on paper trades its signals exactly as it would live (the executor's risk checks and
sizing, on the broker's live price and account), except that no order leaves: the entry fills here
at the live bid/ask (a buy at the ask, a sell at the bid), and its stop-loss and take-profit are
followed on the broker's bid/ask minute candles (``trading/paper_trades.py``). This module holds
the arithmetic of that, and the verdict on whether the pair may advance to live:

* **exits**: each complete minute is walked along the path the project's simulator uses for its
  own fills (oandasim/market.py): open, then the extreme nearer the open, then the other extreme,
  then the close, 20 seconds apart and straight in between. A long's stops watch the bid, a
  short's the ask. A level crossed between two points of the path fills *at the level*, at the
  moment of the crossing; a price already beyond the level where a minute (or the trade) starts,
  a gap through the stop, fills *at that price*, as OANDA fills a stop-loss after a gap;
* **money**: realised P&L is the price move times the units in the quote currency, converted to
  the account currency with the broker's quote-home factors (``positiveUnits`` for a gain,
  ``negativeUnits`` for a loss, the ones the executor sizes with), rounded to 4 decimals as the
  broker's figures are;
* **financing**: an open paper trade is charged at each 17:00 New York rollover what the broker
  would post (``rollover_financing``, with the rates and days the pair keeps from the broker's
  instrument list);
* **trading days**: the New York trading days (17:00 to 17:00, ``trading.schedule``) that lie
  wholly between the start of the paper stage and now, Monday to Friday, holidays left out;
* **the gates** (``advance_verdict``): a pair advances to live only when every one passes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from qfh.evaluation.financing import FinancingRates, financing_amount
from trading.demotion import (
    DemotionSettings,
    LiveTrade,
    ModelFigures,
    should_demote,
    wilson_bounds,
)
from trading.schedule import trading_day, trading_day_bounds

# The close reasons a paper trade records: the ones OANDA gives the fills that close a trade.
STOP_LOSS = "STOP_LOSS_ORDER"
TAKE_PROFIT = "TAKE_PROFIT_ORDER"
TRADE_CLOSE = "MARKET_ORDER_TRADE_CLOSE"

# When inside its minute the path reaches each of its four points (oandasim/market.py).
VERTEX_SECONDS = (0, 20, 40, 60)
MINUTE = timedelta(minutes=1)
MONEY = Decimal("0.0001")


@dataclass(frozen=True)
class SideCandle:
    """One complete M1 candle of one side of the market (the bid or the ask)."""

    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class PaperExit:
    price: Decimal
    time: datetime
    reason: str


def candle_path(candle: SideCandle) -> list[tuple[datetime, Decimal]]:
    """The four points of a minute's path: open, the nearer extreme, the other one, close."""
    if candle.high - candle.open <= candle.open - candle.low:
        prices = (candle.open, candle.high, candle.low, candle.close)
    else:
        prices = (candle.open, candle.low, candle.high, candle.close)
    return [
        (candle.time + timedelta(seconds=seconds), price)
        for seconds, price in zip(VERTEX_SECONDS, prices, strict=True)
    ]


def _between(p0: Decimal, p1: Decimal, t0: datetime, t1: datetime, moment: datetime) -> Decimal:
    return p0 + (p1 - p0) * Decimal((moment - t0) / (t1 - t0))


def first_exit(
    *,
    long: bool,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    candles: Sequence[SideCandle],
    after: datetime,
) -> PaperExit | None:
    """The first stop-loss or take-profit fill after ``after`` along ``candles`` (the bid's for a
    long, the ask's for a short; in time order), or None when neither level is reached."""

    def reached(price: Decimal) -> tuple[Decimal, str] | None:
        if stop_loss is not None and (price <= stop_loss if long else price >= stop_loss):
            return stop_loss, STOP_LOSS
        if take_profit is not None and (price >= take_profit if long else price <= take_profit):
            return take_profit, TAKE_PROFIT
        return None

    for candle in candles:
        if candle.time + MINUTE <= after:
            continue
        points = candle_path(candle)
        for (t0, p0), (t1, p1) in pairwise(points):
            if t1 <= after:
                continue
            if t0 < after:
                p0, t0 = _between(p0, p1, t0, t1, after), after
            start = reached(p0)
            if start is not None:
                # Already beyond the level where this piece starts: filled at the price.
                return PaperExit(p0, t0, start[1])
            end = reached(p1)
            if end is not None and p1 != p0:
                level, reason = end
                moment = t0 + (t1 - t0) * float((level - p0) / (p1 - p0))
                return PaperExit(level, moment, reason)
    return None


def quote_home(amount: Decimal, positive: Decimal, negative: Decimal) -> Decimal:
    """An amount of the quote currency in the account currency, rounded like the broker's."""
    return (amount * (positive if amount >= 0 else negative)).quantize(MONEY)


def trade_pl(
    *, units: Decimal, open_price: Decimal, price: Decimal, positive: Decimal, negative: Decimal
) -> Decimal:
    """The P&L of ``units`` (signed: positive long) opened at ``open_price`` and valued or closed
    at ``price``, in the account currency."""
    return quote_home((price - open_price) * units, positive, negative)


def rollover_financing(
    *,
    units: Decimal,
    financing: FinancingRates,
    after: datetime,
    until: datetime,
    mid_at: Callable[[datetime], Decimal],
    positive: Decimal,
    negative: Decimal,
) -> Decimal:
    """What the broker would post for ``units`` (signed) held over each 17:00 New York rollover
    in (``after``, ``until``]: OANDA's formula (``qfh.evaluation.financing``), |units| x the mid
    price at the rollover x the rate / 365 x the days of the rollover's weekday, each converted
    to the account currency with the quote-home factor of its sign and rounded to 4 decimals."""
    # The broker's rates are short decimal strings, so the float held for the evaluation gives
    # them back exactly.
    rate = Decimal(str(financing.rate(long=units > 0)))
    if not rate or not units or until <= after:
        return Decimal(0)
    total = Decimal(0)
    day = trading_day(after)
    while True:
        rollover = trading_day_bounds(day)[1]
        if rollover > until:
            return total
        days = financing.days_by_weekday[day.weekday()]
        if rollover > after and days:
            total += financing_amount(
                units=units,
                price=mid_at(rollover),
                conversion=positive if rate > 0 else negative,
                rate=rate,
                days=days,
            )
        day += timedelta(days=1)


def paper_trading_days(started: datetime, now: datetime, holidays: Collection[date]) -> list[date]:
    """The New York trading days wholly inside [started, now]: Monday to Friday, not holidays.

    The day the stage began counts only when it began at its 17:00 start; the day still running
    counts once it has ended.
    """
    day = trading_day(started)
    if trading_day_bounds(day)[0] < started:
        day += timedelta(days=1)
    days = []
    while trading_day_bounds(day)[1] <= now:
        if day.weekday() < 5 and day not in holidays:
            days.append(day)
        day += timedelta(days=1)
    return days


# ----- the gates between paper and live ----------------------------------------------------------


@dataclass(frozen=True)
class PaperSettings:
    """SystemConfig ``paper.*`` and the demotion check's confidence and drawdown multiple, so
    that the paper record is held to the model exactly as the live record will be."""

    trading_days: int = 5
    min_trades: int = 10
    confidence_percent: Decimal = Decimal(95)
    drawdown_multiple: Decimal = Decimal(2)


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    # A sentence with the figures, for the console, the API, the refusal and the audit row.
    reason: str
    figures: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AdvanceVerdict:
    gates: tuple[Gate, ...]

    @property
    def allowed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(gate.name for gate in self.gates if not gate.passed)

    @property
    def reason(self) -> str:
        failed = [f"{gate.name}: {gate.reason}" for gate in self.gates if not gate.passed]
        return "; ".join(failed) if failed else "every gate passes"

    def gate(self, name: str) -> Gate | None:
        return next((gate for gate in self.gates if gate.name == name), None)

    def figures(self) -> dict[str, object]:
        """Every gate in JSON form, for the audit row."""
        return {
            gate.name: {"passed": gate.passed, "reason": gate.reason, **gate.figures}
            for gate in self.gates
        }


def stage_gate(symbol: str, state: str, started: datetime | None) -> Gate:
    if state == "paper" and started is not None:
        return Gate("stage", True, f"{symbol} is on paper since {started:%Y-%m-%d %H:%M} UTC")
    return Gate(
        "stage",
        False,
        f"{symbol} is {state}, not on paper: only a pair on paper advances to live (enable a "
        "pair with a promoted model and it starts on paper)",
    )


def model_gate(model_id: int | None, model: ModelFigures | None) -> Gate:
    if model_id is None or model is None:
        return Gate(
            "model", False, "no promoted pair model: there are no out-of-sample figures to meet"
        )
    return Gate(
        "model",
        True,
        f"pair model {model_id} is promoted (out of sample: {model.trades} trades, hit rate "
        f"{model.hit_rate:.1%}, maximum drawdown {model.max_drawdown_pips:.1f} pips)",
        {"pair_model": model_id},
    )


def days_gate(days: Sequence[date], settings: PaperSettings) -> Gate:
    count = len(days)
    figures: dict[str, object] = {
        "days": count,
        "needed": settings.trading_days,
        "completed": [day.isoformat() for day in days],
    }
    text = f"{count} New York trading days on paper completed"
    if days:
        text += f" ({days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d})"
    text += f", {settings.trading_days} needed (paper.trading_days)"
    return Gate("trading_days", count >= settings.trading_days, text, figures)


def results_gate(
    trades: Sequence[LiveTrade], model: ModelFigures | None, settings: PaperSettings
) -> Gate:
    """The paper record against the model's out-of-sample figures: at least ``min_trades``
    closes, a net hit rate whose Wilson interval overlaps the model's (neither wholly below it,
    the demotion test, nor wholly above it: paper far better than the model says that paper does
    something the model did not), and a drawdown within the demotion multiple."""
    count = len(trades)
    if model is None:
        return Gate("results", False, "no promoted pair model to compare the paper trades with")
    if count < settings.min_trades:
        return Gate(
            "results",
            False,
            f"{count} paper trades of the model closed, fewer than the {settings.min_trades} "
            "(paper.min_trades) the comparison needs",
            {"trades": count, "needed": settings.min_trades},
        )
    verdict = should_demote(
        trades,
        model,
        DemotionSettings(
            min_trades=settings.min_trades,
            confidence_percent=settings.confidence_percent,
            drawdown_multiple=settings.drawdown_multiple,
        ),
    )
    paper_low, paper_high = wilson_bounds(verdict.hits, count, settings.confidence_percent)
    oos_low, oos_high = wilson_bounds(
        model.hit_rate * model.trades, model.trades, settings.confidence_percent
    )
    below = "hit_rate" in verdict.failed
    above = paper_low > oos_high
    deep = "drawdown" in verdict.failed
    placement = "below" if below else "above" if above else "overlaps"
    confidence = f"{settings.confidence_percent}%"
    text = (
        f"paper net hit rate {verdict.live_hit_rate:.1%} ({verdict.hits} of {count} trades), "
        f"Wilson {confidence} interval {paper_low:.4f} to {paper_high:.4f}, "
        f"{placement} the model's out-of-sample interval {oos_low:.4f} to {oos_high:.4f}; "
        f"paper drawdown {verdict.live_drawdown_pips:.1f} pips "
        + ("above" if deep else "within")
        + f" {settings.drawdown_multiple} x the out-of-sample {model.max_drawdown_pips:.1f} pips"
    )
    figures: dict[str, object] = {
        "trades": count,
        "hits": verdict.hits,
        "hit_rate": round(verdict.live_hit_rate, 4),
        "interval": [round(paper_low, 4), round(paper_high, 4)],
        "oos_interval": [round(oos_low, 4), round(oos_high, 4)],
        "drawdown_pips": round(verdict.live_drawdown_pips, 1),
        "drawdown_limit_pips": round(verdict.drawdown_limit_pips, 1),
    }
    return Gate("results", not (below or above or deep), text, figures)


def parity_gate(unexplained: int | None, since: date | None) -> Gate:
    """No unexplained signal mismatch in the parity reports since the paper stage began; None
    means the parity reports could not be asked, which never counts as none."""
    if since is None:
        return Gate("parity", False, "the pair has no paper stage to check the parity of")
    if unexplained is None:
        return Gate(
            "parity",
            False,
            "parity not available: no parity app answers trading.parity_unexplained, so "
            f"mismatches since {since:%Y-%m-%d} cannot be ruled out",
            {"since": since.isoformat()},
        )
    return Gate(
        "parity",
        unexplained == 0,
        f"{unexplained} unexplained signal mismatches in the parity reports since {since:%Y-%m-%d}",
        {"since": since.isoformat(), "unexplained": unexplained},
    )
