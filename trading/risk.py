"""The risk rules of DESIGN.md section 5, as pure functions (no ORM, no broker).

``trading.execution`` gathers the inputs (account figures from the broker, the quote, our open
trades and recent orders, SystemConfig limits with the pair's overrides) into an ``EntryContext``
and asks ``check_entry`` whether an entry may be sent and with how many units. Every rule is its
own function returning ``None`` (passes) or a sentence an operator can read; ``check_entry`` runs
them all and reports every failing rule, not only the first, so the console shows the whole story.

Money is Decimal throughout. Units are signed like OANDA's: positive buys, negative sells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

BUY = "BUY"
SELL = "SELL"

TRADING = "trading"
REDUCING = "reducing"
HALTED = "halted"


@dataclass(frozen=True)
class RiskLimits:
    """The limits in force for one pair: SystemConfig ``risk.*`` with the pair's overrides."""

    risk_per_trade_percent: Decimal = Decimal("0.5")
    max_units_per_order: Decimal = Decimal(1_000_000)
    max_units_per_pair: Decimal = Decimal(1_000_000)
    max_open_trades: int = 5
    max_margin_used_percent: Decimal = Decimal(50)
    one_position_per_pair: bool = True
    max_spread_pips: Decimal = Decimal(3)
    stale_price_seconds: int = 10
    max_orders_per_minute: int = 10
    daily_loss_limit_percent: Decimal = Decimal(2)
    max_drawdown_percent: Decimal = Decimal(10)
    # A cooldown of ``loss_streak_cooldown_minutes`` after this many losses in a row (0 = off).
    loss_streak_length: int = 3
    loss_streak_cooldown_minutes: int = 60


@dataclass(frozen=True)
class Quote:
    """The broker's current price for the pair, with its conversion of the quote currency into
    the account currency (OANDA's ``quoteHomeConversionFactors``)."""

    bid: Decimal
    ask: Decimal
    time: datetime
    tradeable: bool = True
    quote_home_positive: Decimal = Decimal(1)
    quote_home_negative: Decimal = Decimal(1)


@dataclass(frozen=True)
class AccountFigures:
    nav: Decimal
    margin_used: Decimal
    # The highest NAV seen (account snapshots), for the drawdown limit.
    peak_nav: Decimal
    # NAV at the start of the current 17:00 New York trading day, the base of the daily limit.
    day_start_nav: Decimal
    # Realised plus the change in unrealised P&L since the trading day began (negative = loss).
    day_pl: Decimal


# What a pair that is not a currency pair must name for itself before it trades (the
# SystemConfig defaults are in an FX pip; see ``instrument_settings_problem``).
INSTRUMENT_OWN_SETTINGS = ("max_spread_pips", "stop_loss_pips", "take_profit_pips")
# Pair overrides that are not ``risk.*`` settings: the stop distances in the pair's own pips.
STOP_OVERRIDES = ("stop_loss_pips", "take_profit_pips")


@dataclass(frozen=True)
class EntryContext:
    pair: str
    direction: str
    pip_location: int
    margin_rate: Decimal
    minimum_trade_size: Decimal
    trade_units_precision: int
    stop_loss_pips: Decimal
    quote: Quote
    account: AccountFigures
    now: datetime
    mode: str = TRADING
    open_trades: int = 0
    # Signed units of our open trades on this pair (0 when flat).
    pair_open_units: Decimal = Decimal(0)
    orders_last_minute: int = 0
    consecutive_losses: int = 0
    last_loss_at: datetime | None = None
    # The broker's largest order for the instrument (``maximumOrderUnits``; None = no limit).
    maximum_order_units: Decimal | None = None


@dataclass(frozen=True)
class RiskDecision:
    allowed: bool
    units: Decimal
    reasons: tuple[str, ...] = ()
    # Set when a limit that switches the whole system to reducing-only mode was crossed.
    trip: str | None = None
    figures: dict[str, str] = field(default_factory=dict)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def pip_size(pip_location: int) -> Decimal:
    return Decimal(10) ** pip_location


def instrument_settings_problem(
    *,
    symbol: str,
    instrument_type: str,
    pip_location: int,
    overrides: dict[str, object],
    model_params: dict[str, object],
) -> str | None:
    """Why a metal or CFD pair may not trade on the FX defaults, or None.

    The SystemConfig spread limit and stop distances are in pips, and their defaults were chosen
    for a currency pair's pip: 15 pips of EUR_USD is 0.0015 dollars a unit, 15 pips of BTC_USD
    (pip location 0) is 15 dollars on a 60,000-dollar coin and 15 pips of XAU_USD is 15 cents
    on gold. So a pair that is not a currency pair trades only with its own spread limit (a pair
    risk override) and its own stop and take-profit (its pair model's parameters, trained on its
    own prices, or pair overrides), all in its own pips.
    """
    if instrument_type == "CURRENCY":
        return None
    missing = [
        name
        for name in INSTRUMENT_OWN_SETTINGS
        if name not in overrides and (name == "max_spread_pips" or name not in model_params)
    ]
    if not missing:
        return None
    return (
        f"{symbol} is a {instrument_type} instrument whose pip is {pip_size(pip_location)} of its "
        f"quote currency; the defaults are in FX pips, so set its own {', '.join(missing)} "
        "(pair risk overrides, in its pips; the stops may come from a pair model trained on it) "
        "before it trades"
    )


def spread_pips(quote: Quote, pip_location: int) -> Decimal:
    return (quote.ask - quote.bid) / pip_size(pip_location)


def entry_price(quote: Quote, direction: str) -> Decimal:
    """A buy fills at the ask, a sell at the bid."""
    return quote.ask if direction == BUY else quote.bid


def position_units(
    *,
    nav: Decimal,
    risk_percent: Decimal,
    stop_loss_pips: Decimal,
    pip_location: int,
    quote_home: Decimal,
    units_precision: int = 0,
) -> Decimal:
    """Units such that hitting the stop loses ``risk_percent`` of NAV, in the account currency.

    A stop of ``stop_loss_pips`` costs ``stop_loss_pips * pip size`` of the quote currency per
    unit, converted to the account currency with the broker's quote→home factor (1 for EUR_USD in
    a USD account, about 1/150 for USD_JPY, the GBP→USD rate for EUR_GBP). Rounded down so the
    risk never exceeds the budget.
    """
    if nav <= 0 or stop_loss_pips <= 0 or quote_home <= 0:
        return Decimal(0)
    budget = nav * risk_percent / 100
    loss_per_unit = stop_loss_pips * pip_size(pip_location) * quote_home
    step = Decimal(1).scaleb(-units_precision)
    return (budget / loss_per_unit).quantize(step, rounding=ROUND_DOWN)


def margin_required(
    *, units: Decimal, price: Decimal, margin_rate: Decimal, quote_home: Decimal
) -> Decimal:
    """The margin a position needs in the account currency: notional times the margin rate."""
    return abs(units) * price * quote_home * margin_rate


# ----- the rules: each returns None when it passes, or why it does not ---------------------------


def rule_mode(context: EntryContext) -> str | None:
    if context.mode == HALTED:
        return "trading is halted (kill switch): no entries"
    if context.mode == REDUCING:
        return "the system is reducing-only: exits only, no new entries"
    return None


def rule_tradeable(context: EntryContext) -> str | None:
    if not context.quote.tradeable:
        return f"{context.pair} is not tradeable at the broker now"
    return None


def rule_stale_price(context: EntryContext, limits: RiskLimits) -> str | None:
    age = (context.now - context.quote.time).total_seconds()
    if age > limits.stale_price_seconds:
        return (
            f"the last price of {context.pair} is {age:.0f} s old "
            f"(limit {limits.stale_price_seconds} s)"
        )
    return None


def rule_spread(context: EntryContext, limits: RiskLimits) -> str | None:
    spread = spread_pips(context.quote, context.pip_location)
    if spread > limits.max_spread_pips:
        return f"spread {spread:.1f} pips is above the limit of {limits.max_spread_pips} pips"
    return None


def rule_open_trades(context: EntryContext, limits: RiskLimits) -> str | None:
    if context.open_trades >= limits.max_open_trades:
        return f"{context.open_trades} trades are open (limit {limits.max_open_trades})"
    return None


def rule_one_position(context: EntryContext, limits: RiskLimits) -> str | None:
    if limits.one_position_per_pair and context.pair_open_units != 0:
        return f"{context.pair} already has an open position of {context.pair_open_units} units"
    return None


def rule_order_rate(context: EntryContext, limits: RiskLimits) -> str | None:
    if context.orders_last_minute >= limits.max_orders_per_minute:
        return (
            f"{context.orders_last_minute} orders in the last minute "
            f"(limit {limits.max_orders_per_minute})"
        )
    return None


def rule_daily_loss(context: EntryContext, limits: RiskLimits) -> str | None:
    account = context.account
    if account.day_start_nav <= 0:
        return None
    limit = account.day_start_nav * limits.daily_loss_limit_percent / 100
    if -account.day_pl >= limit:
        return (
            f"daily loss {-account.day_pl:.2f} reached the limit of "
            f"{limits.daily_loss_limit_percent}% of the day's starting NAV ({limit:.2f})"
        )
    return None


def rule_drawdown(context: EntryContext, limits: RiskLimits) -> str | None:
    account = context.account
    if account.peak_nav <= 0:
        return None
    drawdown = (account.peak_nav - account.nav) / account.peak_nav * 100
    if drawdown >= limits.max_drawdown_percent:
        return (
            f"drawdown {drawdown:.2f}% from the equity peak {account.peak_nav:.2f} reached the "
            f"limit of {limits.max_drawdown_percent}%"
        )
    return None


def rule_loss_streak(context: EntryContext, limits: RiskLimits) -> str | None:
    if limits.loss_streak_length <= 0 or context.consecutive_losses < limits.loss_streak_length:
        return None
    if context.last_loss_at is None:
        return None
    until = context.last_loss_at + timedelta(minutes=limits.loss_streak_cooldown_minutes)
    if context.now < until:
        return (
            f"{context.consecutive_losses} losses in a row: cooling down until "
            f"{until:%Y-%m-%d %H:%M} UTC"
        )
    return None


def rule_size(
    context: EntryContext, limits: RiskLimits, units: Decimal, margin: Decimal
) -> list[str]:
    reasons = []
    if units < context.minimum_trade_size or units <= 0:
        reasons.append(
            f"the position size from {limits.risk_per_trade_percent}% risk and a "
            f"{context.stop_loss_pips}-pip stop is {units} units, below the minimum of "
            f"{context.minimum_trade_size}"
        )
    if abs(context.pair_open_units) + units > limits.max_units_per_pair:
        reasons.append(
            f"{context.pair} would hold {abs(context.pair_open_units) + units} units "
            f"(limit {limits.max_units_per_pair})"
        )
    account = context.account
    if account.nav > 0:
        used = (account.margin_used + margin) / account.nav * 100
        if used > limits.max_margin_used_percent:
            reasons.append(
                f"margin used would be {used:.1f}% of NAV (limit {limits.max_margin_used_percent}%)"
            )
    return reasons


def check_entry(context: EntryContext, limits: RiskLimits) -> RiskDecision:
    """Every rule for one entry; the units to send when all of them pass."""
    reasons: list[str] = []
    mode_reason = rule_mode(context)
    if mode_reason:
        reasons.append(mode_reason)
    trip = None
    for rule in (rule_daily_loss, rule_drawdown):
        reason = rule(context, limits)
        if reason:
            reasons.append(reason)
            trip = trip or reason
    for check in (rule_tradeable,):
        reason = check(context)
        if reason:
            reasons.append(reason)
    for limited in (
        rule_stale_price,
        rule_spread,
        rule_open_trades,
        rule_one_position,
        rule_order_rate,
        rule_loss_streak,
    ):
        reason = limited(context, limits)
        if reason:
            reasons.append(reason)

    price = entry_price(context.quote, context.direction)
    quote_home = context.quote.quote_home_negative
    units = position_units(
        nav=context.account.nav,
        risk_percent=limits.risk_per_trade_percent,
        stop_loss_pips=context.stop_loss_pips,
        pip_location=context.pip_location,
        quote_home=quote_home,
        units_precision=context.trade_units_precision,
    )
    units = min(units, limits.max_units_per_order)
    if context.maximum_order_units is not None and context.maximum_order_units > 0:
        units = min(units, context.maximum_order_units)
    margin = margin_required(
        units=units, price=price, margin_rate=context.margin_rate, quote_home=quote_home
    )
    reasons.extend(rule_size(context, limits, units, margin))
    signed = units if context.direction == BUY else -units
    figures = {
        "price": str(price),
        "units": str(signed),
        "margin": str(margin.quantize(Decimal("0.01"))),
        "spread_pips": str(
            spread_pips(context.quote, context.pip_location).quantize(Decimal("0.1"))
        ),
        "nav": str(context.account.nav),
    }
    return RiskDecision(
        allowed=not reasons, units=signed, reasons=tuple(reasons), trip=trip, figures=figures
    )


# How each rule's sentence above starts or reads, so a stored refusal (a signal's reason: the
# sentences joined by "; ") can be told apart rule by rule: the parity report names the rules
# that refused a signal. ``tests/trading/test_risk.py`` holds every rule's sentence to its name.
RULE_SENTENCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("mode", re.compile(r"^(trading is halted \(kill switch\)|the system is reducing-only)")),
    ("daily_loss", re.compile(r"^daily loss -?[\d.]+ reached the limit")),
    ("drawdown", re.compile(r"^drawdown -?[\d.]+% from the equity peak")),
    ("tradeable", re.compile(r" is not tradeable at the broker now$")),
    ("stale_price", re.compile(r"^the last price of \S+ is -?\d+ s old")),
    ("spread", re.compile(r"^spread -?[\d.]+ pips is above the limit")),
    ("open_trades", re.compile(r"^\d+ trades are open \(limit")),
    ("one_position", re.compile(r" already has an open position of ")),
    ("order_rate", re.compile(r"^\d+ orders in the last minute \(limit")),
    ("loss_streak", re.compile(r"^\d+ losses in a row: cooling down")),
    ("minimum_size", re.compile(r"^the position size from .* below the minimum")),
    ("units_per_pair", re.compile(r" would hold -?[\d.]+ units \(limit")),
    ("margin", re.compile(r"^margin used would be ")),
)


def refusing_rules(reason: str) -> tuple[str, ...]:
    """The names of the rules whose sentences make up a refusal's ``reason`` (``check_entry``
    joins them with "; "), in order; empty when the reason is not a risk refusal."""
    names: list[str] = []
    for sentence in reason.split("; "):
        for name, pattern in RULE_SENTENCES:
            if pattern.search(sentence) and name not in names:
                names.append(name)
                break
    return tuple(names)


def stop_prices(
    *,
    direction: str,
    price: Decimal,
    stop_loss_pips: Decimal,
    take_profit_pips: Decimal | None,
    pip_location: int,
    display_precision: int,
) -> tuple[Decimal, Decimal | None]:
    """Stop-loss and take-profit prices at the given distances from the expected fill."""
    pip = pip_size(pip_location)
    step = Decimal(1).scaleb(-display_precision)
    sign = 1 if direction == BUY else -1
    stop = (price - sign * stop_loss_pips * pip).quantize(step)
    take = None
    if take_profit_pips is not None and take_profit_pips > 0:
        take = (price + sign * take_profit_pips * pip).quantize(step)
    return stop, take
