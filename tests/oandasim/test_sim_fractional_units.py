"""Fractional units: BTC_USD and ETH_USD trade in hundredths of a coin, the FX pairs in whole units.

OANDA lists each instrument's `tradeUnitsPrecision` (0 for FX and metals, 2 for the crypto CFDs),
`minimumTradeSize` and `maximumOrderUnits`; an order, a trade close or a position closeout with
finer units is rejected UNITS_PRECISION_EXCEEDED. P&L, margin, half-spread cost and financing on
fractional units are exact, and units go on the wire as OANDA's DecimalNumber strings ("1.66").
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.positions as positions
import oandapyV20.endpoints.trades as trades
import oandapyV20.endpoints.transactions as transactions
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oandapyV20.exceptions import V20Error

from oandasim.broker import Broker
from oandasim.clock import SimClock
from oandasim.instruments import INSTRUMENTS
from oandasim.market import Market, Series
from oandasim.timeutil import parse_time
from oandasim.units import decimal_places, format_units
from tests.oandasim.sim_schemas import check_position, check_trade, check_transaction

THURSDAY = "2025-07-24"
START = f"{THURSDAY}T09:00:00Z"


def _minutes(price: str, first: int, count: int) -> list[tuple[str, str]]:
    return [(f"{THURSDAY}T09:{m:02d}:00.000000000Z", price) for m in range(first, first + count)]


def _rejected(sim, endpoint) -> dict:
    with pytest.raises(V20Error) as error:
        sim.api.request(endpoint)
    assert error.value.code == 400
    body: dict = json.loads(error.value.msg)
    return body


def _order(sim, instrument: str, units: str) -> orders.OrderCreate:
    order = {"type": "MARKET", "instrument": instrument, "units": units}
    return orders.OrderCreate(sim.account, data={"order": order})


@pytest.fixture
def bitcoin(start_sim, candle_file):
    """BTC_USD at a mid of 60000.0 for ten minutes, then 60123.4, with a 2-dollar spread."""
    minutes = _minutes("60000.0", 0, 10) + _minutes("60123.4", 10, 10)
    return start_sim(
        "--data", candle_file("BTC_USD", minutes), "--spread-pips", "BTC_USD=2", start=START
    )


def test_a_btc_usd_order_of_1_66_units_fills_and_the_trade_keeps_them(bitcoin):
    # When 1.66 BTC_USD are bought at the 60001.0 ask (mid 60000.0, half-spread 1.0)
    response = bitcoin.market("BTC_USD", "1.66")

    # Then the order, the fill and the trade carry 1.66 units, and every amount is exact
    create, fill = response["orderCreateTransaction"], response["orderFillTransaction"]
    for transaction in (create, fill):
        check_transaction(transaction)
    assert create["units"] == fill["units"] == fill["requestedUnits"] == "1.66"
    assert fill["price"] == "60001.0"
    opened = fill["tradeOpened"]
    assert opened["units"] == "1.66"
    # 1.66 x 1.0 dollar of half-spread; 1.66 x 60000.0 mid x 50% margin
    assert opened["halfSpreadCost"] == fill["halfSpreadCost"] == "1.6600"
    assert opened["initialMarginRequired"] == "49800.0000"
    trade = bitcoin.api.request(trades.TradeDetails(bitcoin.account, opened["tradeID"]))["trade"]
    check_trade(trade)
    assert (trade["initialUnits"], trade["currentUnits"]) == ("1.66", "1.66")
    assert trade["marginUsed"] == "49800.0000"
    position = bitcoin.api.request(positions.PositionDetails(bitcoin.account, "BTC_USD"))
    check_position(position["position"])
    long, short = position["position"]["long"], position["position"]["short"]
    assert (long["units"], long["averagePrice"], short["units"]) == ("1.66", "60001.00", "0")
    account = bitcoin.api.request(accounts.AccountSummary(bitcoin.account))["account"]
    # The position is valued at the mid: 1.66 x 60000.0
    assert (account["positionValue"], account["marginUsed"]) == ("99600.0000", "49800.0000")


def test_a_fractional_trade_gains_its_units_times_the_move_and_closes_in_part(bitcoin):
    # Given a long of 1.66 BTC_USD at 60001.0
    fill = bitcoin.market("BTC_USD", "1.66")["orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]

    # When the mid moves to 60123.4 (bid 60122.4), then 0.5 is closed, then the rest
    bitcoin.advance(10 * 60)
    before = bitcoin.api.request(trades.TradeDetails(bitcoin.account, trade_id))["trade"]
    partial = bitcoin.api.request(
        trades.TradeClose(bitcoin.account, trade_id, data={"units": "0.5"})
    )
    after = bitcoin.api.request(trades.TradeDetails(bitcoin.account, trade_id))["trade"]
    rest = bitcoin.api.request(trades.TradeClose(bitcoin.account, trade_id))

    # Then the P&L is the units times the 121.4-dollar move, in dollars, to OANDA's 4 decimals
    move = Decimal("60122.4") - Decimal(fill["price"])
    assert move == Decimal("121.4")
    assert before["unrealizedPL"] == "201.5240"
    assert Decimal(before["unrealizedPL"]) == Decimal("1.66") * move
    create, reduced = partial["orderCreateTransaction"], partial["orderFillTransaction"]
    assert create["units"] == "-0.5" and create["tradeClose"]["units"] == "0.5"
    assert reduced["units"] == reduced["tradeReduced"]["units"] == "-0.5"
    assert reduced["pl"] == reduced["tradeReduced"]["realizedPL"] == "60.7000"
    assert reduced["tradeReduced"]["halfSpreadCost"] == "0.5000"
    # 1.16 units are left, still gaining 1.16 x 121.4
    assert (after["initialUnits"], after["currentUnits"]) == ("1.66", "1.16")
    assert after["realizedPL"] == "60.7000" and after["unrealizedPL"] == "140.8240"
    (closed,) = rest["orderFillTransaction"]["tradesClosed"]
    assert closed["units"] == "-1.16" and closed["realizedPL"] == "140.8240"
    final = bitcoin.api.request(trades.TradeDetails(bitcoin.account, trade_id))["trade"]
    assert final["state"] == "CLOSED" and final["currentUnits"] == "0"
    assert final["realizedPL"] == "201.5240" and final["averageClosePrice"] == "60122.4"
    account = bitcoin.api.request(accounts.AccountSummary(bitcoin.account))["account"]
    assert account["balance"] == "100201.5240"
    opened = bitcoin.api.request(positions.OpenPositions(bitcoin.account))["positions"]
    assert opened == []


def test_a_take_profit_closes_the_whole_fractional_trade_at_its_price(bitcoin):
    # Given a long of 1.66 BTC_USD at 60001.0 with a take-profit at 60100.0
    fill = bitcoin.market("BTC_USD", "1.66", takeProfitOnFill={"price": "60100.0"})[
        "orderFillTransaction"
    ]
    trade_id = fill["tradeOpened"]["tradeID"]

    # When the bid jumps to 60122.4 at the next minutes
    bitcoin.advance(10 * 60)

    # Then the take-profit filled all 1.66 units, gaining 1.66 x the move to its fill price
    since = bitcoin.api.request(
        transactions.TransactionsSinceID(bitcoin.account, params={"id": fill["id"]})
    )["transactions"]
    (profit,) = [t for t in since if t.get("reason") == "TAKE_PROFIT_ORDER"]
    check_transaction(profit)
    assert profit["units"] == profit["tradesClosed"][0]["units"] == "-1.66"
    move = Decimal(profit["price"]) - Decimal(fill["price"])
    assert move >= Decimal("99.0")
    assert Decimal(profit["pl"]) == Decimal("1.66") * move
    trade = bitcoin.api.request(trades.TradeDetails(bitcoin.account, trade_id))["trade"]
    assert (trade["state"], trade["currentUnits"]) == ("CLOSED", "0")


def test_a_position_side_closes_a_fractional_amount_across_its_trades(bitcoin):
    # Given two BTC_USD shorts, of 0.25 and 0.75
    bitcoin.market("BTC_USD", "-0.25")
    bitcoin.market("BTC_USD", "-0.75")

    # When 0.6 of the short side is closed out
    closed = bitcoin.api.request(
        positions.PositionClose(bitcoin.account, "BTC_USD", data={"shortUnits": "0.6"})
    )

    # Then the oldest trade closes whole and the next is reduced by the remaining 0.35
    fill = closed["shortOrderFillTransaction"]
    assert closed["shortOrderCreateTransaction"]["units"] == "0.6"
    assert fill["units"] == "0.6"
    assert [c["units"] for c in fill["tradesClosed"]] == ["0.25"]
    assert fill["tradeReduced"]["units"] == "0.35"
    position = bitcoin.api.request(positions.PositionDetails(bitcoin.account, "BTC_USD"))
    assert position["position"]["short"]["units"] == "-0.4"


@pytest.mark.parametrize(
    ("instrument", "units", "reason"),
    [
        ("BTC_USD", "1.666", "UNITS_PRECISION_EXCEEDED"),
        ("BTC_USD", "0.001", "UNITS_PRECISION_EXCEEDED"),
        ("BTC_USD", "-0.005", "UNITS_PRECISION_EXCEEDED"),
        ("BTC_USD", "20.01", "UNITS_LIMIT_EXCEEDED"),
        ("ETH_USD", "-400.01", "UNITS_LIMIT_EXCEEDED"),
        ("EUR_USD", "1.5", "UNITS_PRECISION_EXCEEDED"),
        ("XAU_USD", "0.5", "UNITS_PRECISION_EXCEEDED"),
        ("EUR_USD", "100000001", "UNITS_LIMIT_EXCEEDED"),
        ("BTC_USD", "0.00", "UNITS_INVALID"),
    ],
)
def test_units_finer_or_larger_than_the_instrument_allows_are_rejected(
    bitcoin, instrument, units, reason
):
    # When
    body = _rejected(bitcoin, _order(bitcoin, instrument, units))

    # Then OANDA's reject transaction names the reason and echoes the units as sent
    reject = body["orderRejectTransaction"]
    check_transaction(reject)
    assert body["errorCode"] == reject["rejectReason"] == reason
    assert reject["type"] == "MARKET_ORDER_REJECT" and reject["units"] == units
    assert bitcoin.api.request(trades.OpenTrades(bitcoin.account))["trades"] == []


def test_units_with_zeros_beyond_the_precision_are_taken_at_the_precision(bitcoin):
    # "1.660" is 1.66 and "100.0" EUR_USD is 100, as with prices only non-zero digits count
    bitcoin_fill = bitcoin.market("BTC_USD", "1.660")["orderFillTransaction"]
    euro_fill = bitcoin.market("EUR_USD", "100.0")["orderFillTransaction"]
    assert bitcoin_fill["tradeOpened"]["units"] == "1.66"
    assert euro_fill["tradeOpened"]["units"] == "100"


def test_closes_finer_than_the_instrument_allows_are_rejected(bitcoin):
    # Given a 1.66 BTC_USD trade and a 100 EUR_USD trade
    btc_id = bitcoin.market("BTC_USD", "1.66")["orderFillTransaction"]["tradeOpened"]["tradeID"]
    eur_id = bitcoin.market("EUR_USD", "100")["orderFillTransaction"]["tradeOpened"]["tradeID"]

    # When
    finer = _rejected(bitcoin, trades.TradeClose(bitcoin.account, btc_id, data={"units": "0.505"}))
    half_euro = _rejected(
        bitcoin, trades.TradeClose(bitcoin.account, eur_id, data={"units": "10.5"})
    )
    too_many = _rejected(
        bitcoin, trades.TradeClose(bitcoin.account, btc_id, data={"units": "1.67"})
    )
    side = _rejected(
        bitcoin,
        positions.PositionClose(bitcoin.account, "BTC_USD", data={"longUnits": "0.001"}),
    )

    # Then each is refused, naming the reason, and both trades keep their units
    assert finer["errorCode"] == half_euro["errorCode"] == "UNITS_PRECISION_EXCEEDED"
    assert finer["orderRejectTransaction"]["units"] == "-1.66"
    assert too_many["errorCode"] == "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE"
    assert side["errorCode"] == "UNITS_PRECISION_EXCEEDED"
    assert side["longOrderRejectTransaction"]["longPositionCloseout"]["units"] == "0.001"
    held = bitcoin.api.request(trades.OpenTrades(bitcoin.account))["trades"]
    assert sorted(t["currentUnits"] for t in held) == ["1.66", "100"]


def test_the_financing_of_a_fractional_trade_follows_the_formula(start_sim, candle_file):
    # Given a long 1.66 BTC_USD at a flat 60000.0 (no spread) and longRate -10% a year
    sim = start_sim(
        "--data", candle_file("BTC_USD", _minutes("60000.0", 0, 10)),
        "--spread-pips", "BTC_USD=0", "--financing", "BTC_USD=-0.1000:0.0500",
        start=START,
    )  # fmt: skip
    fill = sim.market("BTC_USD", "1.66")["orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]

    # When the clock passes Thursday's 17:00 New York rollover (21:00 UTC in summer)
    sim.jump(f"{THURSDAY}T21:30:00Z")

    # Then 1.66 x 60000.0 x -0.10 / 365 x 1 day = -27.287671... is charged, to 4 decimals
    expected = (Decimal("1.66") * Decimal("60000.0") * Decimal("-0.10") / 365).quantize(
        Decimal("0.0001")
    )
    assert expected == Decimal("-27.2877")
    since = sim.api.request(
        transactions.TransactionsSinceID(sim.account, params={"id": fill["id"]})
    )["transactions"]
    (charge,) = [t for t in since if t["type"] == "DAILY_FINANCING"]
    assert charge["financing"] == "-27.2877"
    assert charge["positionFinancings"][0]["openTradeFinancings"] == [
        {"tradeID": trade_id, "financing": "-27.2877"}
    ]
    trade = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    assert trade["financing"] == "-27.2877" and trade["currentUnits"] == "1.66"


# ===== in-process: the minimum trade size, restarts and random sequences ========================


def _broker(moment: str = START) -> Broker:
    series = {
        name: Series(instrument, instrument.default_spread_pips, None, seed=3)
        for name, instrument in INSTRUMENTS.items()
    }
    return Broker(
        market=Market(series),
        clock=SimClock(parse_time(moment), paused=True),
        account_id="A",
    )


def _market(broker: Broker, instrument: str, units: str) -> tuple[int, dict]:
    return broker.create_order(
        {"order": {"type": "MARKET", "instrument": instrument, "units": units}}
    )


def test_units_below_the_instruments_minimum_trade_size_are_rejected(monkeypatch):
    # Given ETH_USD listed with a minimum trade size of 0.05 (units still in hundredths)
    ether = dataclasses.replace(INSTRUMENTS["ETH_USD"], minimum_trade_size=Decimal("0.05"))
    monkeypatch.setitem(INSTRUMENTS, "ETH_USD", ether)
    broker = _broker()

    # When
    below = _market(broker, "ETH_USD", "0.04")
    short_below = _market(broker, "ETH_USD", "-0.04")
    at_minimum = _market(broker, "ETH_USD", "0.05")

    # Then orders under the minimum are refused with OANDA's reason, the minimum fills
    for status, body in (below, short_below):
        assert status == 400
        assert body["errorCode"] == "UNITS_MIMIMUM_NOT_MET"
        assert body["orderRejectTransaction"]["rejectReason"] == "UNITS_MIMIMUM_NOT_MET"
        assert "minimum" in body["errorMessage"]
    status, body = at_minimum
    assert status == 201 and body["orderFillTransaction"]["units"] == "0.05"
    assert broker.instrument_wire("ETH_USD")["minimumTradeSize"] == "0.05"


def test_fractional_trades_survive_a_restart_and_old_whole_unit_state_still_loads():
    # Given a broker holding 1.66 BTC_USD, partly closed to 1.16, and 250 EUR_USD
    broker = _broker()
    _, btc = _market(broker, "BTC_USD", "1.66")
    btc_id = btc["orderFillTransaction"]["tradeOpened"]["tradeID"]
    broker.close_trade(btc_id, {"units": "0.5"})
    _market(broker, "EUR_USD", "250")
    state = json.loads(json.dumps(broker.to_state()))

    # When a new broker loads the saved state, and another a state saved with integer units
    again = _broker()
    again.load_state(state)
    old = json.loads(json.dumps(state))
    for trade in old["trades"]:
        if trade["instrument"] == "EUR_USD":
            for key in ("initial_units", "current_units", "closed_units"):
                trade[key] = int(Decimal(trade[key]))
            trade["closed_units_price_sum"] = 0
    for order in old["orders"]:
        if order["instrument"] == "EUR_USD":
            order["units"] = int(Decimal(order["units"]))
    older = _broker()
    older.load_state(old)

    # Then the units and what depends on them are unchanged
    for loaded in (again, older):
        held = {t.instrument: t for t in loaded.open_trades()}
        assert held["BTC_USD"].current_units == Decimal("1.16")
        assert loaded.trade_wire(held["BTC_USD"])["initialUnits"] == "1.66"
        assert loaded.trade_wire(held["EUR_USD"])["currentUnits"] == "250"
        assert loaded.position("BTC_USD")["long"]["units"] == "1.16"
    assert again.account_summary() == broker.account_summary()


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=Decimal("-0.8"), max_value=Decimal("0.8"), places=2).filter(bool),
            st.integers(min_value=0, max_value=900),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_random_fractional_orders_net_exactly_and_the_balance_adds_up(steps):
    # Given a fresh account
    broker = _broker()
    net = Decimal(0)

    # When random BTC_USD market orders in hundredths arrive at random moments
    for units, wait in steps:
        broker.clock.jump_to(broker.clock.now() + wait)
        status, body = _market(broker, "BTC_USD", str(units))
        assert status == 201
        if "orderFillTransaction" in body:
            net += units
            assert body["orderFillTransaction"]["units"] == format_units(units)

    # Then the open trades sum exactly to the net, on one side, in hundredths
    held = [t.current_units for t in broker.open_trades()]
    assert sum(held, Decimal(0)) == net
    assert all(u > 0 for u in held) or all(u < 0 for u in held)
    assert all(decimal_places(u) <= 2 for u in held)
    side = broker.position("BTC_USD")["long" if net > 0 else "short"]
    assert Decimal(side["units"]) == net
    realized = sum(
        (Decimal(t["pl"]) for t in broker.transactions if t["type"] == "ORDER_FILL"), Decimal(0)
    )
    assert broker.balance == Decimal("100000") + realized


def test_units_are_written_as_oanda_writes_them():
    assert [format_units(Decimal(v)) for v in ("100", "-2500", "0", "0.00", "1E+2")] == [
        "100", "-2500", "0", "0", "100",
    ]  # fmt: skip
    assert [format_units(Decimal(v)) for v in ("1.66", "-0.50", "1.10", "2.00")] == [
        "1.66", "-0.5", "1.1", "2",
    ]  # fmt: skip
    assert [decimal_places(Decimal(v)) for v in ("1.660", "100.0", "0.001", "1E+999999")] == [
        2, 0, 3, 0,
    ]  # fmt: skip
