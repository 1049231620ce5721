"""Daily financing at the 17:00 New York rollover and margin closeout, on worked examples.

The formula (research/oanda-v20.md section 4, OANDA's financing pages): a trade open at 17:00
New York pays or receives |units| x price in the home currency x annual rate / 365 x days, the
days being `financingDaysOfWeek.daysCharged` of the rollover's weekday (3 on Wednesday). Margin
closeout (section 2.2): marginCloseoutPercent = margin used / NAV / 2, closed out at 1 or more.
"""

from __future__ import annotations

from decimal import Decimal

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.positions as positions
import oandapyV20.endpoints.trades as trades
import oandapyV20.endpoints.transactions as transactions
import pytest

from oandasim.__main__ import financing_rates
from oandasim.broker import Broker
from oandasim.clock import SimClock
from oandasim.financing import days_charged, rollovers
from oandasim.instruments import INSTRUMENTS, FinancingRates
from oandasim.market import Market, Series
from oandasim.timeutil import parse_time
from tests.oandasim.sim_schemas import check_position, check_trade, check_transaction

RATES = ["--financing", "EUR_USD=-0.0300:0.0100", "--financing", "GBP_USD=-0.0250:0.0100"]


def _flat(day: str, price: str, minutes: int = 10) -> list[tuple[str, str]]:
    return [(f"{day}T09:{m:02d}:00.000000000Z", price) for m in range(minutes)]


def _since(sim, transaction_id: str) -> list[dict]:
    endpoint = transactions.TransactionsSinceID(sim.account, params={"id": transaction_id})
    return sim.api.request(endpoint)["transactions"]


def _financings(sim, transaction_id: str) -> list[dict]:
    return [t for t in _since(sim, transaction_id) if t["type"] == "DAILY_FINANCING"]


def test_the_rollover_is_17_00_new_york_and_wednesday_charges_three_days():
    # Thursday 24 July 2025 (EDT: 21:00 UTC) and Wednesday 15 January 2025 (EST: 22:00 UTC).
    assert rollovers(parse_time("2025-07-24T09:00:00Z"), parse_time("2025-07-25T09:00:00Z")) == [
        parse_time("2025-07-24T21:00:00Z")
    ]
    wednesday = parse_time("2025-01-15T22:00:00Z")
    assert rollovers(wednesday - 1, wednesday) == [wednesday]
    assert rollovers(wednesday, wednesday + 3600) == []
    week = rollovers(parse_time("2025-07-20T12:00:00Z"), parse_time("2025-07-27T12:00:00Z"))
    assert [days_charged(moment) for moment in week] == [0, 1, 1, 3, 1, 1, 0]


def test_a_long_eur_usd_held_over_one_rollover_pays_the_documented_amount(start_sim, candle_file):
    # Given a long 10,000 EUR_USD at a flat 1.10000 (no spread) and longRate -3% a year
    sim = start_sim(
        "--data", candle_file("EUR_USD", _flat("2025-07-24", "1.10000")),
        "--spread-pips", "EUR_USD=0", *RATES,
    )  # fmt: skip
    fill = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]

    # When the clock passes Thursday's 17:00 New York rollover (21:00 UTC in summer)
    sim.jump("2025-07-24T21:30:00Z")

    # Then 10,000 x 1.10000 x -0.03 / 365 x 1 = -0.904109... is charged, in OANDA's shape
    (charge,) = _financings(sim, fill["id"])
    check_transaction(charge)
    assert charge["time"].startswith("2025-07-24T21:00:00")
    assert charge["financing"] == "-0.9041"
    assert charge["accountFinancingMode"] == "DAILY"
    assert charge["accountBalance"] == "99999.0959"
    assert charge["positionFinancings"] == [
        {
            "instrument": "EUR_USD",
            "financing": "-0.9041",
            "openTradeFinancings": [{"tradeID": trade_id, "financing": "-0.9041"}],
        }
    ]
    trade = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    check_trade(trade)
    assert trade["financing"] == "-0.9041"
    account = sim.api.request(accounts.AccountSummary(sim.account))["account"]
    assert (account["financing"], account["balance"]) == ("-0.9041", "99999.0959")
    position = sim.api.request(positions.PositionDetails(sim.account, "EUR_USD"))["position"]
    check_position(position)
    assert (position["financing"], position["long"]["financing"]) == ("-0.9041", "-0.9041")
    # And the instruments list the rates the simulator charges, as OANDA's do.
    listed = sim.api.request(
        accounts.AccountInstruments(sim.account, params={"instruments": "EUR_USD"})
    )
    financing = listed["instruments"][0]["financing"]
    assert (financing["longRate"], financing["shortRate"]) == ("-0.0300", "0.0100")
    assert {"dayOfWeek": "WEDNESDAY", "daysCharged": 3} in financing["financingDaysOfWeek"]


def test_wednesdays_rollover_charges_the_weekend_three_times_and_a_short_receives_its_rate(
    start_sim, candle_file
):
    # Given on a Wednesday a long 10,000 EUR_USD at 1.10000 and a short 10,000 GBP_USD at 1.27000
    sim = start_sim(
        "--data", candle_file("EUR_USD", _flat("2025-07-23", "1.10000")),
        "--data", candle_file("GBP_USD", _flat("2025-07-23", "1.27000")),
        "--spread-pips", "EUR_USD=0", "--spread-pips", "GBP_USD=0", *RATES,
        start="2025-07-23T09:00:00Z",
    )  # fmt: skip
    eur = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    gbp = sim.market("GBP_USD", -10_000)["orderFillTransaction"]

    # When the clock passes Wednesday's rollover and Thursday's
    sim.jump("2025-07-24T21:30:00Z")

    # Then Wednesday charges 3 days: 10,000 x 1.1 x -0.03 x 3 / 365 = -2.7123 for the long and
    # 10,000 x 1.27 x 0.01 x 3 / 365 = +1.0438 for the short; Thursday one day of each.
    wednesday, thursday = _financings(sim, gbp["id"])
    by_trade = {
        item["tradeID"]: item["financing"]
        for position in wednesday["positionFinancings"]
        for item in position["openTradeFinancings"]
    }
    assert by_trade == {
        eur["tradeOpened"]["tradeID"]: "-2.7123",
        gbp["tradeOpened"]["tradeID"]: "1.0438",
    }
    assert wednesday["financing"] == "-1.6685"
    assert thursday["financing"] == str(Decimal("-0.9041") + Decimal("0.3479"))
    account = sim.api.request(accounts.AccountSummary(sim.account))["account"]
    assert Decimal(account["financing"]) == Decimal("-1.6685") + Decimal("-0.5562")


def test_a_usd_jpy_trade_is_charged_in_the_account_currency(start_sim, candle_file):
    # Given a long 10,000 USD_JPY at 150.000 and longRate +2% a year (a carry trade that earns)
    sim = start_sim(
        "--data", candle_file("USD_JPY", _flat("2025-07-24", "150.000")),
        "--spread-pips", "USD_JPY=0", "--financing", "USD_JPY=0.0200:-0.0400",
    )  # fmt: skip
    fill = sim.market("USD_JPY", 10_000)["orderFillTransaction"]

    # When
    sim.jump("2025-07-24T21:30:00Z")

    # Then 10,000 x 150.000 JPY x 0.02 / 365 = 82.19 JPY, x 1/150.000 = +0.5479 USD
    (charge,) = _financings(sim, fill["id"])
    assert charge["financing"] == "0.5479"
    assert (Decimal(10_000) * 150 * Decimal("0.02") / 365 / 150).quantize(Decimal("0.0001")) == (
        Decimal("0.5479")
    )


def test_no_financing_transaction_is_written_when_no_rate_is_set(start_sim, candle_file):
    sim = start_sim("--data", candle_file("EUR_USD", _flat("2025-07-24", "1.10000")))
    fill = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    sim.jump("2025-07-24T21:30:00Z")
    assert _financings(sim, fill["id"]) == []


def test_a_trade_opened_after_the_rollover_is_not_charged_for_it(start_sim, candle_file):
    # Given minutes on both sides of Thursday's rollover
    minutes = [(f"2025-07-24T21:{m:02d}:00.000000000Z", "1.10000") for m in range(5, 15)]
    sim = start_sim(
        "--data", candle_file("EUR_USD", minutes), "--spread-pips", "EUR_USD=0", *RATES,
        start="2025-07-24T21:05:00Z",
    )  # fmt: skip
    fill = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    sim.jump("2025-07-25T12:00:00Z")
    assert _financings(sim, fill["id"]) == []


def test_a_price_move_that_exhausts_margin_closes_every_trade_out(start_sim, candle_file):
    # Given 2,500 USD on a 2% margin account, long 100,000 EUR_USD at 1.10000 (2,200 margin)
    # and long 1,000 GBP_USD, and a price that falls 160 pips at 09:05
    steps = [
        (f"2025-07-24T09:{m:02d}:00.000000000Z", "1.10000" if m < 5 else "1.08400")
        for m in range(10)
    ]
    sim = start_sim(
        "--data", candle_file("EUR_USD", steps),
        "--data", candle_file("GBP_USD", _flat("2025-07-24", "1.27000")),
        "--spread-pips", "EUR_USD=0", "--spread-pips", "GBP_USD=0", "--balance", "2500",
    )  # fmt: skip
    eur = sim.market("EUR_USD", 100_000)["orderFillTransaction"]
    gbp = sim.market("GBP_USD", 1_000)["orderFillTransaction"]
    before = sim.api.request(accounts.AccountSummary(sim.account))["account"]
    assert before["openTradeCount"] == 2 and Decimal(before["marginCloseoutPercent"]) < 1

    # When the price falls: NAV 2,500 - 1,600 = 900 <= half the 2,168 + 25.40 margin used
    sim.advance(6 * 60)
    account = sim.api.request(accounts.AccountSummary(sim.account))["account"]

    # Then both positions were closed at market with OANDA's margin closeout transactions
    assert account["openTradeCount"] == 0
    assert account["balance"] == "900.0000" and account["pl"] == "-1600.0000"
    closeout = [t for t in _since(sim, gbp["id"]) if t["type"] in ("MARKET_ORDER", "ORDER_FILL")]
    for transaction in closeout:
        check_transaction(transaction)
    orders = [t for t in closeout if t["type"] == "MARKET_ORDER"]
    fills = [t for t in closeout if t["type"] == "ORDER_FILL"]
    assert [(o["instrument"], o["units"], o["reason"]) for o in orders] == [
        ("EUR_USD", "-100000", "MARGIN_CLOSEOUT"),
        ("GBP_USD", "-1000", "MARGIN_CLOSEOUT"),
    ]
    assert all(o["marginCloseout"] == {"reason": "MARGIN_CHECK_VIOLATION"} for o in orders)
    assert all(o["positionFill"] == "REDUCE_ONLY" for o in orders)
    assert {f["reason"] for f in fills} == {"MARKET_ORDER_MARGIN_CLOSEOUT"}
    assert [c["tradeID"] for f in fills for c in f["tradesClosed"]] == [
        eur["tradeOpened"]["tradeID"],
        gbp["tradeOpened"]["tradeID"],
    ]
    assert fills[0]["pl"] == "-1600.0000" and fills[0]["price"] == "1.08400"
    closed = sim.api.request(trades.TradeDetails(sim.account, eur["tradeOpened"]["tradeID"]))
    assert closed["trade"]["state"] == "CLOSED"


def test_a_price_move_that_leaves_margin_keeps_the_trades_open(start_sim, candle_file):
    steps = [
        (f"2025-07-24T09:{m:02d}:00.000000000Z", "1.10000" if m < 5 else "1.09000")
        for m in range(10)
    ]
    sim = start_sim(
        "--data", candle_file("EUR_USD", steps), "--spread-pips", "EUR_USD=0",
        "--balance", "2500",
    )  # fmt: skip
    sim.market("EUR_USD", 100_000)
    sim.advance(6 * 60)
    # NAV 1,500 > half of 2,180 margin used: a margin call, not a closeout.
    account = sim.api.request(accounts.AccountSummary(sim.account))["account"]
    assert account["openTradeCount"] == 1 and account["NAV"] == "1500.0000"


def test_a_week_of_rollovers_adds_up_and_survives_a_restart():
    # Given an in-process broker with rates on EUR_USD, holding a long from Monday to Monday
    def broker_at(moment: str) -> Broker:
        series = {
            name: Series(instrument, instrument.default_spread_pips, None, seed=1)
            for name, instrument in INSTRUMENTS.items()
        }
        return Broker(
            market=Market(series),
            clock=SimClock(parse_time(moment), paused=True),
            account_id="A",
            financing={"EUR_USD": FinancingRates(Decimal("-0.05"), Decimal("0.01"))},
        )

    broker = broker_at("2025-07-21T12:00:00Z")
    status, _ = broker.create_order(
        {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "10000"}}
    )
    assert status == 201

    # When the clock moves a week in uneven steps
    for hours in (5, 30, 17, 40, 60, 16):
        broker.clock.jump_to(broker.clock.now() + hours * 3600)
        broker.sync()

    # Then the five weekday rollovers charged 1+1+3+1+1 = 7 days, each at the rollover's price
    charges = [t for t in broker.transactions if t["type"] == "DAILY_FINANCING"]
    assert len(charges) == 5
    assert [t["time"][:10] for t in charges] == [
        "2025-07-21", "2025-07-22", "2025-07-23", "2025-07-24", "2025-07-25",
    ]  # fmt: skip
    (trade,) = broker.open_trades()
    total = sum((Decimal(t["financing"]) for t in charges), Decimal(0))
    assert trade.financing == total < 0
    deposit_and_pl = Decimal(100000) + sum(
        (Decimal(t["pl"]) for t in broker.transactions if t["type"] == "ORDER_FILL"), Decimal(0)
    )
    assert broker.balance == deposit_and_pl + total
    # And a restarted simulator keeps every figure
    again = broker_at("2025-07-28T12:00:00Z")
    again.load_state(broker.to_state())
    assert again.account_summary()["financing"] == broker.account_summary()["financing"]
    assert again.trade_wire(again.open_trades()[0])["financing"] == str(total)
    assert again.position("EUR_USD")["long"]["financing"] == str(total)


def test_a_crypto_cfd_is_charged_at_every_rollover_weekends_included_and_says_so():
    # Given an in-process broker on Friday with rates on BTC_USD and EUR_USD, long both
    series = {
        name: Series(instrument, instrument.default_spread_pips, None, seed=1)
        for name, instrument in INSTRUMENTS.items()
    }
    broker = Broker(
        market=Market(series),
        clock=SimClock(parse_time("2025-07-25T12:00:00Z"), paused=True),
        account_id="A",
        financing={
            "BTC_USD": FinancingRates(Decimal("-0.10"), Decimal("0.02")),
            "EUR_USD": FinancingRates(Decimal("-0.05"), Decimal("0.01")),
        },
    )
    for instrument, units in (("BTC_USD", "1.00"), ("EUR_USD", "10000")):
        status, _ = broker.create_order(
            {"order": {"type": "MARKET", "instrument": instrument, "units": units}}
        )
        assert status == 201

    # When the clock moves to Monday
    broker.clock.jump_to(parse_time("2025-07-28T12:00:00Z"))
    broker.sync()

    # Then Friday's, Saturday's and Sunday's rollovers each charge BTC_USD one day, while
    # EUR_USD pays Friday's only (its weekend was charged on Wednesday)
    charges = [t for t in broker.transactions if t["type"] == "DAILY_FINANCING"]
    charged = [
        (t["time"][:10], sorted(p["instrument"] for p in t["positionFinancings"])) for t in charges
    ]
    assert charged == [
        ("2025-07-25", ["BTC_USD", "EUR_USD"]),
        ("2025-07-26", ["BTC_USD"]),
        ("2025-07-27", ["BTC_USD"]),
    ]
    # And each BTC charge is one day of 1 x price x -0.10 / 365: about -16 dollars at 60,000
    for charge in charges:
        (btc,) = [p for p in charge["positionFinancings"] if p["instrument"] == "BTC_USD"]
        assert Decimal("-20") < Decimal(btc["financing"]) < Decimal("-12")
    # And the instrument lists its days as OANDA's do: one on every day of the week
    days = INSTRUMENTS["BTC_USD"].to_wire()["financing"]["financingDaysOfWeek"]  # type: ignore[index]
    assert {item["daysCharged"] for item in days} == {1} and len(days) == 7
    weekend = [parse_time("2025-07-26T21:00:00Z"), parse_time("2025-07-27T21:00:00Z")]
    assert [days_charged(moment, INSTRUMENTS["BTC_USD"].financing_days) for moment in weekend] == [
        1,
        1,
    ]
    assert [days_charged(moment) for moment in weekend] == [0, 0]


def test_the_financing_option_names_what_it_expects():
    assert financing_rates(["USD_JPY=0.02:-0.04"]) == {
        "USD_JPY": FinancingRates(Decimal("0.02"), Decimal("-0.04"))
    }
    for bad in ("EUR_USD=-0.03", "EUR_USD=x:0.01", "EUR_USD=nan:0", "XXX_YYY=0:0"):
        with pytest.raises(SystemExit, match="--financing"):
            financing_rates([bad])
