"""Financing: the project's formula, the evaluation and the simulator agree on worked examples.

The examples follow research/oanda-v20.md section 4 (OANDA's financing pages): |units| x price in
the account currency x annual rate / 365 x days charged, 3 days on Wednesday's rollover.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.transactions as transactions
import pytest

from marketdata.models import Pair
from marketdata.services import candles_ingest
from oandasim import financing as broker
from oandasim.timeutil import parse_time
from qfh.evaluation.candles import Candles
from qfh.evaluation.financing import (
    FinancingRates,
    days_charged,
    financing_amount,
    financing_costs,
)
from qfh.evaluation.outcomes import Costs, pips_to_account, trade_outcomes, trading_day
from qfh.evaluation.services import pair_costs, rule_evaluation_run
from tests.oandasim.conftest import candle_file, start_sim  # noqa: F401 (fixtures)


def test_a_long_eur_usd_held_over_one_rollover_costs_the_documented_amount() -> None:
    # 10,000 x 1.10000 x -0.03 / 365 x 1 day = -0.904109...
    ours = financing_amount(
        units=Decimal(10_000),
        price=Decimal("1.10000"),
        conversion=Decimal(1),
        rate=Decimal("-0.03"),
        days=1,
    )
    simulator = broker.financing_amount(Decimal(11_000), Decimal("-0.03"), 1)
    assert ours == simulator == Decimal("-0.9041")


def test_wednesdays_rollover_charges_three_days_for_the_weekend() -> None:
    # Given entries just before Wednesday's and Thursday's 17:00 New York rollovers (July: EDT)
    wednesday = parse_time("2025-07-23T20:59:00Z")
    thursday = parse_time("2025-07-24T20:59:00Z")
    entries = trading_day(np.array([wednesday, thursday]))
    exits = trading_day(np.array([wednesday + 120, thursday + 120]))

    # When / Then
    assert list(days_charged(entries, exits, FinancingRates().days_by_weekday)) == [3, 1]
    assert broker.days_charged(parse_time("2025-07-23T21:00:00Z")) == 3
    amount = financing_amount(
        units=Decimal(-10_000),
        price=Decimal("1.10000"),
        conversion=Decimal(1),
        rate=Decimal("-0.03"),
        days=3,
    )
    assert amount == broker.financing_amount(Decimal(11_000), Decimal("-0.03"), 3)
    assert amount == Decimal("-2.7123")


def test_a_position_held_a_whole_week_is_charged_seven_days() -> None:
    monday = parse_time("2025-07-21T16:00:00Z")
    entry, exit_ = trading_day(np.array([monday])), trading_day(np.array([monday + 7 * 86400]))
    assert list(days_charged(entry, exit_, FinancingRates().days_by_weekday)) == [7]
    assert list(days_charged(entry, entry, FinancingRates().days_by_weekday)) == [0]


def test_a_usd_jpy_trade_is_converted_to_the_account_currency() -> None:
    # 10,000 x 150.000 JPY x 0.02 / 365 = 82.19 JPY, x 1/150.000 = 0.5479 USD
    ours = financing_amount(
        units=Decimal(10_000),
        price=Decimal("150.000"),
        conversion=Decimal(1) / Decimal("150.000"),
        rate=Decimal("0.02"),
        days=1,
    )
    # The simulator values a USD_JPY position in a USD account at its units.
    assert ours == broker.financing_amount(Decimal(10_000), Decimal("0.02"), 1) == Decimal("0.5479")


def test_rates_are_read_from_oandas_instrument_financing_and_bad_ones_are_refused() -> None:
    rates = FinancingRates.from_oanda(
        {
            "longRate": "-0.0286",
            "shortRate": "0.0092",
            "financingDaysOfWeek": [
                {"dayOfWeek": "MONDAY", "daysCharged": 1},
                {"dayOfWeek": "WEDNESDAY", "daysCharged": 3},
            ],
        }
    )
    assert (rates.long_rate, rates.short_rate) == (-0.0286, 0.0092)
    assert rates.days_by_weekday == (1, 0, 3, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"long_rate=-3\.0 is invalid"):
        FinancingRates(long_rate=-3.0)
    with pytest.raises(ValueError, match=r"financing_short_rate=nan is invalid"):
        Costs(financing_short_rate=float("nan"))


def _flat_candles(start: float, count: int, price: float, pip: float) -> Candles:
    times = np.arange(count, dtype=np.int64) * 60 + int(start)
    flat = np.full(count, price)
    return Candles(times, flat, flat, flat, flat, np.ones(count), pip=pip)


@pytest.mark.parametrize(
    ("pair", "price", "day", "rates"),
    [
        ("EUR_USD", "1.10000", "2025-07-23", "-0.0300:0.0100"),  # Wednesday: 3 days
        ("USD_JPY", "150.000", "2025-07-24", "0.0200:-0.0400"),  # Thursday, converted
    ],
)
def test_the_evaluation_charges_a_trade_held_over_the_rollover_what_the_simulator_charges(
    start_sim,  # noqa: F811
    candle_file,  # noqa: F811
    pair: str,
    price: str,
    day: str,
    rates: str,
) -> None:
    # Given the simulator holding long and short 10,000 over the rollover at a flat price
    minutes = [(f"{day}T20:{m:02d}:00.000000000Z", price) for m in range(50, 60)]
    minutes += [(f"{day}T21:{m:02d}:00.000000000Z", price) for m in range(5, 15)]
    sim = start_sim(
        "--data", candle_file(pair, minutes), "--spread-pips", f"{pair}=0",
        "--financing", f"{pair}={rates}", start=f"{day}T20:55:00Z",
    )  # fmt: skip
    opened = sim.market(pair, 10_000)["orderFillTransaction"]
    sim.jump(f"{day}T21:10:00Z")
    since = transactions.TransactionsSinceID(sim.account, params={"id": opened["id"]})
    (charge,) = [
        t for t in sim.api.request(since)["transactions"] if t["type"] == "DAILY_FINANCING"
    ]
    listed = sim.api.request(accounts.AccountInstruments(sim.account, params={"instruments": pair}))

    # When the evaluation scores the same trade with the rates the broker lists
    instrument = listed["instruments"][0]
    listed_rates = FinancingRates.from_oanda(instrument["financing"])
    costs = Costs(
        spread_pips=0.0,
        financing_long_rate=listed_rates.long_rate,
        financing_short_rate=listed_rates.short_rate,
        financing_days_by_weekday=listed_rates.days_by_weekday,
    )
    pip = 10.0 ** instrument["pipLocation"]
    candles = _flat_candles(parse_time(f"{day}T20:54:00Z"), 20, float(price), pip)
    outcome = trade_outcomes(candles, horizon=10, costs=costs)
    money, currency = pips_to_account(
        outcome.long_net[0],
        pair=pair,
        price=float(price),
        units=10_000,
        account_currency="USD",
        pip=pip,
    )

    # Then the amounts agree to the cent's hundredth
    assert currency == "USD"
    assert Decimal(str(money)).quantize(Decimal("0.0001")) == Decimal(charge["financing"])
    assert outcome.long_net[0] != 0


@pytest.mark.parametrize(
    ("pair", "pip", "pips", "units", "expected"),
    [
        # 250 pips of gold (pip 0.01) on 10 ounces: a 2.50-dollar move is 25 dollars
        ("XAU_USD", 0.01, 250.0, 10.0, 25.0),
        # 300 pips of bitcoin (pip 1) on 1.5 coins: a 300-dollar move is 450 dollars
        ("BTC_USD", 1.0, 300.0, 1.5, 450.0),
        # 20 pips of EUR_USD on 10,000: 20 dollars, as before
        ("EUR_USD", 0.0001, 20.0, 10_000.0, 20.0),
    ],
)
def test_pips_become_money_in_the_instruments_own_pip(
    pair: str, pip: float, pips: float, units: float, expected: float
) -> None:
    money, currency = pips_to_account(
        pips, pair=pair, price=1.0, units=units, account_currency="USD", pip=pip
    )
    assert currency == "USD"
    assert money == pytest.approx(expected)


def _listed(long_rate: str, short_rate: str, days: list[int]) -> dict[str, Any]:
    """An instrument's financing as the instruments sync keeps it on the pair."""
    weekdays = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
    return {
        "longRate": long_rate,
        "shortRate": short_rate,
        "financingDaysOfWeek": [
            {"dayOfWeek": day, "daysCharged": charged}
            for day, charged in zip(weekdays, days, strict=True)
        ],
    }


@pytest.mark.django_db
def test_the_pairs_costs_carry_the_brokers_rates_and_days_and_an_option_overrides_only_rates() -> (
    None
):
    # Given bitcoin as the broker lists it: charged every day, weekends included
    Pair.objects.create(symbol="BTC_USD", financing=_listed("-0.1000", "0.0200", [1] * 7))
    friday = parse_time("2025-07-25T16:00:00Z")
    held = trading_day(np.array([friday])), trading_day(np.array([friday + 3 * 86400]))

    # When the evaluation takes its costs, and with --financing given
    listed = pair_costs("BTC_USD").financing
    chosen = pair_costs("BTC_USD", financing_costs("-0.0500:0.0100")).financing

    # Then a position held Friday to Monday pays three days at the broker's rates; the option
    # changes the rates and keeps the instrument's days; EUR_USD (never synced) charges one day
    assert (listed.long_rate, listed.short_rate) == (-0.1, 0.02)
    assert list(days_charged(*held, listed.days_by_weekday)) == [3]
    assert (chosen.long_rate, chosen.short_rate, chosen.days_by_weekday) == (-0.05, 0.01, (1,) * 7)
    fx = pair_costs("EUR_USD").financing
    assert (fx.long_rate, list(days_charged(*held, fx.days_by_weekday))) == (0.0, [1])


@pytest.mark.django_db
def test_an_evaluation_charges_the_financing_the_broker_lists_for_its_pair(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    # Given the real EUR/USD minutes (two New York rollovers), evaluated before any sync
    candles_ingest(candles=seed_candles, pair="EUR_USD", timeframe="M1")
    plain = rule_evaluation_run(pair="EUR_USD", horizon=60, xp=np)

    # When the broker's rates, both paid, are on the pair and the rule is evaluated again
    Pair.objects.filter(symbol="EUR_USD").update(
        financing=_listed("-0.0300", "-0.0100", [1, 1, 3, 1, 1, 0, 0])
    )
    charged = rule_evaluation_run(pair="EUR_USD", horizon=60, xp=np)

    # Then the same trades are scored net of the financing, which the stored costs name
    assert (charged.costs["financing_long_rate"], charged.costs["financing_short_rate"]) == (
        -0.03,
        -0.01,
    )
    assert plain.costs["financing_long_rate"] == 0.0
    assert charged.trades == plain.trades > 0
    assert charged.pnl_pips < plain.pnl_pips
