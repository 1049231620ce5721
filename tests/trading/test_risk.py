"""Each risk rule of DESIGN.md section 5, alone, on the pure functions of trading/risk.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading import risk

NOW = datetime(2025, 7, 24, 9, 0, tzinfo=UTC)


def context(**changes: object) -> risk.EntryContext:
    base = risk.EntryContext(
        pair="EUR_USD",
        direction=risk.BUY,
        pip_location=-4,
        margin_rate=Decimal("0.0333"),
        minimum_trade_size=Decimal(1),
        trade_units_precision=0,
        stop_loss_pips=Decimal(20),
        quote=risk.Quote(bid=Decimal("1.17000"), ask=Decimal("1.17010"), time=NOW),
        account=risk.AccountFigures(
            nav=Decimal(100_000),
            margin_used=Decimal(0),
            peak_nav=Decimal(100_000),
            day_start_nav=Decimal(100_000),
            day_pl=Decimal(0),
        ),
        now=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


LIMITS = risk.RiskLimits()


def test_an_entry_inside_every_limit_is_allowed_with_units_from_the_risk_budget() -> None:
    decision = risk.check_entry(context(), LIMITS)
    # 0.5% of 100,000 = 500 USD over a 20-pip stop, which costs 20 USD per 10,000 units.
    assert decision.allowed, decision.reasons
    assert decision.units == Decimal(250_000)


def test_a_sell_is_sized_the_same_and_sent_with_negative_units() -> None:
    decision = risk.check_entry(context(direction=risk.SELL), LIMITS)
    assert decision.units == Decimal(-250_000)


def test_usd_jpy_units_convert_the_yen_stop_into_dollars() -> None:
    # 20 pips of USD_JPY = 0.20 JPY per unit; at 1 JPY = 1/150 USD the budget of 500 USD buys
    # 500 / (0.20 / 150) = 375,000 units.
    quote = risk.Quote(
        bid=Decimal("150.000"),
        ask=Decimal("150.010"),
        time=NOW,
        quote_home_positive=Decimal(1) / Decimal(150),
        quote_home_negative=Decimal(1) / Decimal(150),
    )
    decision = risk.check_entry(context(pair="USD_JPY", pip_location=-2, quote=quote), LIMITS)
    assert decision.allowed, decision.reasons
    assert decision.units == Decimal(375_000)


def test_a_cross_converts_its_quote_currency_into_the_account_currency() -> None:
    # EUR_GBP in a USD account: a pip is 0.0001 GBP = 0.000127 USD per unit at GBP/USD 1.27.
    quote = risk.Quote(
        bid=Decimal("0.86000"),
        ask=Decimal("0.86010"),
        time=NOW,
        quote_home_positive=Decimal("1.27"),
        quote_home_negative=Decimal("1.27"),
    )
    decision = risk.check_entry(context(pair="EUR_GBP", quote=quote), LIMITS)
    # 500 / (20 * 0.0001 * 1.27) = 196,850.39, rounded down.
    assert decision.units == Decimal(196_850)


def test_the_position_size_never_risks_more_than_the_budget() -> None:
    units = risk.position_units(
        nav=Decimal("12345.67"),
        risk_percent=Decimal("1"),
        stop_loss_pips=Decimal("13"),
        pip_location=-4,
        quote_home=Decimal("0.98765"),
    )
    loss_at_stop = units * Decimal("13") * Decimal("0.0001") * Decimal("0.98765")
    assert loss_at_stop <= Decimal("123.4567")
    assert (units + 1) * Decimal("13") * Decimal("0.0001") * Decimal("0.98765") > Decimal(
        "123.4567"
    )


def test_max_units_per_order_caps_the_size() -> None:
    decision = risk.check_entry(context(), replace(LIMITS, max_units_per_order=Decimal(10_000)))
    assert decision.allowed
    assert decision.units == Decimal(10_000)


def test_max_units_per_pair_refuses_an_entry_that_would_exceed_it() -> None:
    limits = replace(LIMITS, max_units_per_pair=Decimal(255_000), one_position_per_pair=False)
    decision = risk.check_entry(context(pair_open_units=Decimal(10_000)), limits)
    assert not decision.allowed
    assert "EUR_USD would hold 260000 units (limit 255000)" in decision.reason


def test_max_open_trades_refuses_one_more() -> None:
    decision = risk.check_entry(context(open_trades=5), LIMITS)
    assert not decision.allowed
    assert "5 trades are open (limit 5)" in decision.reason


def test_max_margin_used_refuses_an_entry_that_would_take_too_much() -> None:
    # 250,000 units at 1.17010 with a 3.33% margin rate need 9,741.08 USD.
    account = replace(context().account, margin_used=Decimal(41_000))
    decision = risk.check_entry(context(account=account), LIMITS)
    assert not decision.allowed
    assert "margin used would be 50.7% of NAV (limit 50%)" in decision.reason
    roomier = replace(context().account, margin_used=Decimal(40_000))
    assert risk.check_entry(context(account=roomier), LIMITS).allowed


def test_one_position_per_pair_refuses_a_second_entry_unless_configured_otherwise() -> None:
    refused = risk.check_entry(context(pair_open_units=Decimal(-1000)), LIMITS)
    assert "EUR_USD already has an open position of -1000 units" in refused.reason
    allowed = risk.check_entry(
        context(pair_open_units=Decimal(-1000)), replace(LIMITS, one_position_per_pair=False)
    )
    assert allowed.allowed


def test_a_wide_spread_refuses_the_entry() -> None:
    quote = risk.Quote(bid=Decimal("1.17000"), ask=Decimal("1.17040"), time=NOW)
    decision = risk.check_entry(context(quote=quote), LIMITS)
    assert not decision.allowed
    assert "spread 4.0 pips is above the limit of 3 pips" in decision.reason


def test_a_stale_price_refuses_the_entry() -> None:
    decision = risk.check_entry(context(now=NOW + timedelta(seconds=11)), LIMITS)
    assert not decision.allowed
    assert "the last price of EUR_USD is 11 s old (limit 10 s)" in decision.reason


def test_a_non_tradeable_instrument_refuses_the_entry() -> None:
    quote = risk.Quote(bid=Decimal("1.17"), ask=Decimal("1.1701"), time=NOW, tradeable=False)
    decision = risk.check_entry(context(quote=quote), LIMITS)
    assert "EUR_USD is not tradeable at the broker now" in decision.reason


def test_the_order_rate_limit_refuses_a_burst() -> None:
    decision = risk.check_entry(context(orders_last_minute=10), LIMITS)
    assert "10 orders in the last minute (limit 10)" in decision.reason


def test_the_daily_loss_limit_refuses_and_trips_reducing_mode() -> None:
    account = replace(context().account, nav=Decimal(98_000), day_pl=Decimal(-2_000))
    decision = risk.check_entry(context(account=account), LIMITS)
    assert not decision.allowed
    assert decision.trip is not None
    assert "daily loss 2000.00 reached the limit of 2% of the day's starting NAV" in decision.trip


def test_a_loss_just_under_the_daily_limit_does_not_trip() -> None:
    account = replace(context().account, nav=Decimal("98000.01"), day_pl=Decimal("-1999.99"))
    decision = risk.check_entry(context(account=account), LIMITS)
    assert decision.allowed, decision.reasons
    assert decision.trip is None


def test_the_drawdown_limit_from_the_equity_peak_trips_reducing_mode() -> None:
    account = replace(context().account, nav=Decimal(90_000), peak_nav=Decimal(100_000))
    decision = risk.check_entry(context(account=account), LIMITS)
    assert decision.trip is not None
    assert "drawdown 10.00% from the equity peak" in decision.trip


def test_reducing_and_halted_modes_refuse_every_entry() -> None:
    reducing = risk.check_entry(context(mode=risk.REDUCING), LIMITS)
    halted = risk.check_entry(context(mode=risk.HALTED), LIMITS)
    assert "reducing-only" in reducing.reason
    assert "kill switch" in halted.reason


def test_a_losing_streak_starts_a_cooldown_that_ends() -> None:
    during = context(consecutive_losses=3, last_loss_at=NOW - timedelta(minutes=30))
    after = context(consecutive_losses=3, last_loss_at=NOW - timedelta(minutes=61))
    refused = risk.check_entry(during, LIMITS)
    assert "3 losses in a row: cooling down until 2025-07-24 09:30 UTC" in refused.reason
    assert risk.check_entry(after, LIMITS).allowed


def test_a_size_below_the_minimum_trade_size_is_refused() -> None:
    small = risk.AccountFigures(
        nav=Decimal(1),
        margin_used=Decimal(0),
        peak_nav=Decimal(1),
        day_start_nav=Decimal(1),
        day_pl=Decimal(0),
    )
    decision = risk.check_entry(context(account=small, minimum_trade_size=Decimal(5)), LIMITS)
    assert not decision.allowed
    assert "is 2 units, below the minimum of 5" in decision.reason


def test_every_failing_rule_is_reported_not_only_the_first() -> None:
    decision = risk.check_entry(context(open_trades=9, orders_last_minute=50), LIMITS)
    assert len(decision.reasons) == 2


def test_stops_sit_on_the_losing_and_winning_sides_of_the_fill() -> None:
    buy = risk.stop_prices(
        direction=risk.BUY,
        price=Decimal("1.17010"),
        stop_loss_pips=Decimal(15),
        take_profit_pips=Decimal(30),
        pip_location=-4,
        display_precision=5,
    )
    sell = risk.stop_prices(
        direction=risk.SELL,
        price=Decimal("150.000"),
        stop_loss_pips=Decimal(15),
        take_profit_pips=None,
        pip_location=-2,
        display_precision=3,
    )
    assert buy == (Decimal("1.16860"), Decimal("1.17310"))
    assert sell == (Decimal("150.150"), None)


def test_every_rule_is_named_back_from_the_sentence_a_refusal_stores() -> None:
    # Given one entry failing each rule in turn (the parity report reads a refused signal's
    # stored reason to say which rules refused it)
    account = context().account
    failing = {
        "mode": (context(mode=risk.HALTED), LIMITS),
        "daily_loss": (context(account=replace(account, day_pl=Decimal(-3000))), LIMITS),
        "drawdown": (context(account=replace(account, peak_nav=Decimal(200_000))), LIMITS),
        "tradeable": (context(quote=replace(context().quote, tradeable=False)), LIMITS),
        "stale_price": (
            context(quote=replace(context().quote, time=NOW - timedelta(seconds=60))),
            LIMITS,
        ),
        "spread": (context(quote=replace(context().quote, ask=Decimal("1.17100"))), LIMITS),
        "open_trades": (context(open_trades=5), LIMITS),
        "one_position": (context(pair_open_units=Decimal(1000)), LIMITS),
        "order_rate": (context(orders_last_minute=10), LIMITS),
        "loss_streak": (context(consecutive_losses=3, last_loss_at=NOW), LIMITS),
        "minimum_size": (context(account=replace(account, nav=Decimal("0.01"))), LIMITS),
        "units_per_pair": (context(), replace(LIMITS, max_units_per_pair=Decimal(10))),
        "margin": (context(), replace(LIMITS, max_margin_used_percent=Decimal(1))),
    }
    assert {name for name, _ in risk.RULE_SENTENCES} == set(failing)
    for name, (entry, limits) in failing.items():
        # When the rules judge it and the refusal is stored as one sentence
        decision = risk.check_entry(entry, limits)
        # Then that rule is named back from the sentence
        assert not decision.allowed
        assert name in risk.refusing_rules(decision.reason), (name, decision.reason)
    # And a reason that is no risk refusal names no rule
    assert risk.refusing_rules("market closed: the daily break") == ()
    assert risk.refusing_rules("order cancelled: INSUFFICIENT_MARGIN") == ()
