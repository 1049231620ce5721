"""What a trade opened at a candle's close would have earned, after realistic FX costs.

For every candle j and both directions: enter at close[j] (the signal is known at that close),
leave at close[j + horizon], or earlier at a stop-loss / take-profit touched on the intra-candle
path open -> nearer extreme -> other extreme -> close (the simulator's path, oandasim). Costs:

* the bid/ask spread, once per round trip (prices are mid prices: half the spread on entry,
  half on exit), configured per pair in pips (``DEFAULT_SPREAD_PIPS``);
* slippage in pips on each side;
* financing for every 17:00 New York rollover the position is held through, with OANDA's formula
  and rates (``qfh.evaluation.financing``): the entry price x the long or short annual rate / 365
  x the days the rollover charges (3 on Wednesday), in pips. The rates are zero by default (they
  change daily and are small against a horizon of minutes); set them from the instrument's
  ``financing`` for long horizons. The amount is valued at the entry price rather than the price
  at each rollover, a difference of a fraction of a percent of an already small amount.

Stops and targets trigger on the mid path, which ignores the half spread on the trigger side;
the spread is charged on every exit, so this is a small optimism only for trades that stop out.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from qfh.engine import pip_size
from qfh.evaluation.candles import Candles
from qfh.evaluation.financing import (
    DAYS_CHARGED_BY_WEEKDAY,
    FinancingRates,
    days_charged,
    financing_pips,
)

# Typical retail spreads in pips outside news (OANDA's published "from" spreads are lower; these
# are a conservative round figure per pair). Anything unlisted pays ``FALLBACK_SPREAD_PIPS``.
DEFAULT_SPREAD_PIPS: dict[str, float] = {
    "EUR_USD": 1.0,
    "GBP_USD": 1.4,
    "USD_JPY": 1.2,
    "AUD_USD": 1.4,
    "USD_CHF": 1.6,
    "USD_CAD": 1.8,
    "NZD_USD": 1.8,
    "EUR_GBP": 1.5,
    "EUR_JPY": 1.8,
}
FALLBACK_SPREAD_PIPS = 2.0
NEW_YORK = ZoneInfo("America/New_York")
ROLL_HOUR = 17


@dataclass(frozen=True)
class Costs:
    spread_pips: float = 1.0
    slippage_pips: float = 0.0
    # Annual rates signed as OANDA publishes them (negative: the holder pays), and the days each
    # rollover charges by New York weekday, Monday first (the instrument's financingDaysOfWeek).
    financing_long_rate: float = 0.0
    financing_short_rate: float = 0.0
    financing_days_by_weekday: tuple[int, ...] = DAYS_CHARGED_BY_WEEKDAY
    stop_loss_pips: float | None = None
    take_profit_pips: float | None = None
    units: float = 10_000.0
    account_currency: str = "USD"

    def __post_init__(self) -> None:
        for name in ("spread_pips", "slippage_pips", "units"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} is invalid; expected a number >= 0")
        for name in ("stop_loss_pips", "take_profit_pips"):
            value = getattr(self, name)
            if value is not None and (not np.isfinite(value) or value <= 0):
                raise ValueError(f"{name}={value!r} is invalid; expected a number > 0 or None")
        for name in ("financing_long_rate", "financing_short_rate"):
            value = getattr(self, name)
            if not np.isfinite(value) or abs(value) >= 1:
                raise ValueError(
                    f"{name}={value!r} is invalid; expected an annual rate as a fraction "
                    "between -1 and 1, signed as OANDA publishes it (-0.03 pays 3% a year)"
                )
        _ = self.financing  # validates the days by weekday

    @property
    def financing(self) -> FinancingRates:
        return FinancingRates(
            long_rate=self.financing_long_rate,
            short_rate=self.financing_short_rate,
            days_by_weekday=tuple(self.financing_days_by_weekday),
        )

    @property
    def round_trip_pips(self) -> float:
        return self.spread_pips + 2.0 * self.slippage_pips

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_pair(cls, pair: str, **overrides: Any) -> Costs:
        spread = DEFAULT_SPREAD_PIPS.get(pair, FALLBACK_SPREAD_PIPS)
        values: dict[str, Any] = {"spread_pips": spread, **overrides}
        return cls(**{name: value for name, value in values.items() if value is not None})


@dataclass(frozen=True)
class Outcomes:
    """Per candle j (arrays of length N): pips of a long and a short opened at close[j]."""

    horizon: int
    long_net: np.ndarray
    short_net: np.ndarray
    move_pips: np.ndarray  # close[j + horizon] - close[j] in pips (the unrealised label)
    bars_held: np.ndarray
    exit_price: np.ndarray  # of the long; a short's exit differs only where SL/TP differ
    valid: np.ndarray  # a full horizon of candles exists after j
    label_start: np.ndarray  # epoch second from which the label uses prices (close of j)


def trading_day(epoch_seconds: np.ndarray) -> np.ndarray:
    """The 17:00 New York trading day of each moment, as an integer that grows by one per roll.

    New York's UTC offset (DST included) is looked up once per distinct hour, which is exact
    because offsets change on the hour, and cheap: a year of minutes holds under 9,000 hours.
    """
    times = np.asarray(epoch_seconds, dtype=np.int64)
    if times.size == 0:
        return times
    hours, inverse = np.unique(times // 3600, return_inverse=True)
    offsets = np.array([_offset_seconds(int(hour)) for hour in hours], dtype=np.int64)
    local = times + offsets[inverse.reshape(times.shape)]
    return (local - ROLL_HOUR * 3600) // 86_400


@functools.lru_cache(maxsize=65_536)
def _offset_seconds(hour: int) -> int:
    offset = datetime.fromtimestamp(hour * 3600, UTC).astimezone(NEW_YORK).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def bar_exits(
    o: np.ndarray,
    h: np.ndarray,
    low: np.ndarray,
    stop_price: np.ndarray | float,
    target_price: np.ndarray | float,
    *,
    long: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: whether a position's stop or target is touched, and the price it leaves at, on
    the path open -> nearer extreme -> other extreme -> close (the simulator's, oandasim).

    A bar that opens beyond a level (a gap) leaves at the open; otherwise at the level met first.
    The evaluation (``trade_outcomes``) and the parity report's replayed trades (parity/) both
    exit here. Where nothing is touched the price is meaningless."""
    sign = 1.0 if long else -1.0
    low_first = (o - low) <= (h - o)
    adverse = low if long else h
    favourable = h if long else low
    adverse_first = low_first if long else ~low_first
    gap_stop = sign * (o - stop_price) <= 0
    gap_target = sign * (o - target_price) >= 0
    hit_stop = sign * (adverse - stop_price) <= 0
    hit_target = sign * (favourable - target_price) >= 0
    price = np.where(
        gap_stop | gap_target,
        o,
        np.where(
            adverse_first,
            np.where(hit_stop, stop_price, target_price),
            np.where(hit_target, target_price, stop_price),
        ),
    )
    return gap_stop | gap_target | hit_stop | hit_target, price


def trade_outcomes(candles: Candles, *, horizon: int, costs: Costs) -> Outcomes:
    """Net pips of a long and a short entered at each close and held ``horizon`` candles."""
    if horizon < 1:
        raise ValueError(f"horizon={horizon!r} is invalid; expected at least 1 candle")
    count = len(candles)
    pip = candles.pip
    index = np.arange(count)
    valid = index + horizon < count
    last = np.minimum(index + horizon, max(count - 1, 0))
    entry = candles.close
    exit_long = candles.close[last].copy() if count else np.zeros(0)
    exit_short = exit_long.copy()
    exit_bar_long = last.copy()
    exit_bar_short = last.copy()
    if count and (costs.stop_loss_pips or costs.take_profit_pips):
        stop = (costs.stop_loss_pips or np.inf) * pip
        target = (costs.take_profit_pips or np.inf) * pip
        open_long = np.ones(count, dtype=bool)
        open_short = np.ones(count, dtype=bool)
        for step in range(1, horizon + 1):
            bar = np.minimum(index + step, count - 1)
            o, h, low = candles.open[bar], candles.high[bar], candles.low[bar]
            for is_long, still_open, exits, exit_bars in (
                (True, open_long, exit_long, exit_bar_long),
                (False, open_short, exit_short, exit_bar_short),
            ):
                sign = 1.0 if is_long else -1.0
                touched, price = bar_exits(
                    o, h, low, entry - sign * stop, entry + sign * target, long=is_long
                )
                done = still_open & valid & touched
                exits[done] = price[done]
                exit_bars[done] = bar[done]
                still_open &= ~done
    move = (candles.close[last] - entry) / pip if count else np.zeros(0)
    long_gross = (exit_long - entry) / pip
    short_gross = (entry - exit_short) / pip
    close_times = candles.close_times
    rates = costs.financing
    entry_day = trading_day(close_times)
    days_long = days_charged(
        entry_day, trading_day(close_times[exit_bar_long]), rates.days_by_weekday
    )
    days_short = days_charged(
        entry_day, trading_day(close_times[exit_bar_short]), rates.days_by_weekday
    )
    financing_long = financing_pips(entry, rates.long_rate, days_long, pip)
    financing_short = financing_pips(entry, rates.short_rate, days_short, pip)
    long_net = long_gross - costs.round_trip_pips + financing_long
    short_net = short_gross - costs.round_trip_pips + financing_short
    return Outcomes(
        horizon=horizon,
        long_net=np.where(valid, long_net, 0.0),
        short_net=np.where(valid, short_net, 0.0),
        move_pips=np.where(valid, move, 0.0),
        bars_held=np.where(valid, exit_bar_long - index, 0),
        exit_price=exit_long,
        valid=valid,
        label_start=close_times,
    )


def pips_to_account(
    pips: np.ndarray | float,
    *,
    pair: str,
    price: float,
    units: float,
    account_currency: str,
    pip: float | None = None,
) -> tuple[float | np.ndarray, str]:
    """Pips to money: pips * pip size * units is in the quote currency; converted when the
    account is in the base currency (divide by the price), else left in the quote currency
    (named in the second value, so nothing is silently mislabelled).

    ``pip`` is the instrument's own pip (the candles' ``pip``, from its pip location: 0.01 for
    XAU_USD, 1 for BTC_USD); without it, the currency-pair pip of ``pair``'s name.
    """
    pip = pip_size(pair) if pip is None else pip
    quote = pips * pip * units
    base, _, quote_currency = pair.partition("_")
    if account_currency == quote_currency:
        return quote, account_currency
    if account_currency == base and price > 0:
        return quote / price, account_currency
    return quote, quote_currency
