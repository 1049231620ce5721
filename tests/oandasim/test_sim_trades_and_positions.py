"""Trades, positions, FIFO netting and P&L converted into the account currency."""

from __future__ import annotations

import json
from decimal import Decimal

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.positions as positions
import oandapyV20.endpoints.trades as trades
import pytest
from oandapyV20.exceptions import V20Error

from tests.oandasim.sim_schemas import (
    TRADE_SUMMARY,
    check,
    check_position,
    check_trade,
    check_transaction,
)


def test_trades_can_be_listed_and_read_by_id_or_client_id(sim):
    # Given
    first = sim.market("EUR_USD", 100, tradeClientExtensions={"id": "t-1"})
    sim.market("USD_JPY", 200)
    trade_id = first["orderFillTransaction"]["tradeOpened"]["tradeID"]

    # When
    listed = sim.api.request(trades.TradesList(sim.account))["trades"]
    opened = sim.api.request(trades.OpenTrades(sim.account))["trades"]
    eur = sim.api.request(trades.TradesList(sim.account, params={"instrument": "EUR_USD"}))
    by_id = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    by_client = sim.api.request(trades.TradeDetails(sim.account, "@t-1"))["trade"]

    # Then
    assert len(listed) == len(opened) == 2
    assert [t["id"] for t in eur["trades"]] == [trade_id]
    assert by_id == by_client
    check_trade(by_id)
    assert by_id["clientExtensions"] == {"id": "t-1"}
    assert by_id["currentUnits"] == "100" and by_id["state"] == "OPEN"
    details = sim.api.request(accounts.AccountDetails(sim.account))["account"]
    for summary in details["trades"]:
        check(summary, TRADE_SUMMARY, "trade summary")


def test_an_unknown_trade_is_a_404(sim):
    with pytest.raises(V20Error) as error:
        sim.api.request(trades.TradeDetails(sim.account, "424242"))
    assert error.value.code == 404


def test_a_trade_is_closed_partly_then_fully_with_an_empty_body(sim):
    # Given
    opened = sim.market("EUR_USD", 1000)
    trade_id = opened["orderFillTransaction"]["tradeOpened"]["tradeID"]

    # When
    partial = sim.api.request(trades.TradeClose(sim.account, trade_id, data={"units": "400"}))
    rest = sim.api.request(trades.TradeClose(sim.account, trade_id))

    # Then
    create = partial["orderCreateTransaction"]
    assert create["reason"] == "TRADE_CLOSE" and create["units"] == "-400"
    assert create["tradeClose"] == {"tradeID": trade_id, "units": "400"}
    assert partial["orderFillTransaction"]["tradeReduced"]["units"] == "-400"
    assert partial["orderFillTransaction"]["reason"] == "MARKET_ORDER_TRADE_CLOSE"
    closed = rest["orderFillTransaction"]["tradesClosed"]
    assert [(c["tradeID"], c["units"]) for c in closed] == [(trade_id, "-600")]
    for transaction in (create, partial["orderFillTransaction"], rest["orderFillTransaction"]):
        check_transaction(transaction)
    trade = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    assert trade["state"] == "CLOSED" and "closeTime" in trade and "averageClosePrice" in trade
    assert len(trade["closingTransactionIDs"]) == 2


def test_closing_more_units_than_the_trade_holds_is_rejected(sim):
    opened = sim.market("EUR_USD", 100)
    trade_id = opened["orderFillTransaction"]["tradeOpened"]["tradeID"]
    with pytest.raises(V20Error) as error:
        sim.api.request(trades.TradeClose(sim.account, trade_id, data={"units": "101"}))
    body = json.loads(error.value.msg)
    assert error.value.code == 400
    assert body["errorCode"] == "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE"
    assert body["orderRejectTransaction"]["type"] == "MARKET_ORDER_REJECT"


def test_crcdo_creates_replaces_and_cancels_dependent_orders(sim):
    # Given
    opened = sim.market("EUR_USD", 1000)
    fill = opened["orderFillTransaction"]
    trade_id = fill["tradeOpened"]["tradeID"]
    price = Decimal(fill["price"])

    # When a take-profit and stop-loss are added, then the take-profit moved, the stop removed
    added = sim.api.request(
        trades.TradeCRCDO(
            sim.account,
            trade_id,
            data={
                "takeProfit": {"price": str(price + Decimal("0.01000"))},
                "stopLoss": {"distance": "0.00500"},
            },
        )
    )
    moved = sim.api.request(
        trades.TradeCRCDO(
            sim.account,
            trade_id,
            data={"takeProfit": {"price": str(price + Decimal("0.02000"))}, "stopLoss": None},
        )
    )

    # Then
    assert added["takeProfitOrderTransaction"]["type"] == "TAKE_PROFIT_ORDER"
    assert added["stopLossOrderTransaction"]["reason"] == "CLIENT_ORDER"
    old_tp = added["takeProfitOrderTransaction"]["id"]
    assert moved["takeProfitOrderCancelTransaction"]["reason"] == "CLIENT_REQUEST_REPLACED"
    assert moved["takeProfitOrderTransaction"]["replacesOrderID"] == old_tp
    assert moved["stopLossOrderCancelTransaction"]["reason"] == "CLIENT_REQUEST"
    trade = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    check_trade(trade)
    assert Decimal(trade["takeProfitOrder"]["price"]) == price + Decimal("0.02000")
    assert "stopLossOrder" not in trade


def test_closing_a_trade_cancels_its_linked_orders(sim):
    opened = sim.market("EUR_USD", 100, stopLossOnFill={"distance": "0.01000"})
    trade_id = opened["orderFillTransaction"]["tradeOpened"]["tradeID"]
    closed = sim.api.request(trades.TradeClose(sim.account, trade_id))
    history = sim.api.request(
        __import__("oandapyV20.endpoints.transactions", fromlist=["x"]).TransactionsSinceID(
            sim.account, params={"id": closed["orderCreateTransaction"]["id"]}
        )
    )["transactions"]
    cancel = next(t for t in history if t["type"] == "ORDER_CANCEL")
    assert cancel["reason"] == "LINKED_TRADE_CLOSED"
    assert sim.api.request(orders.OrdersPending(sim.account))["orders"] == []


def test_an_opposite_order_nets_oldest_trades_first(sim):
    # Given two long trades
    first = sim.market("EUR_USD", 100)["orderFillTransaction"]["tradeOpened"]["tradeID"]
    second = sim.market("EUR_USD", 200)["orderFillTransaction"]["tradeOpened"]["tradeID"]

    # When selling 350
    fill = sim.market("EUR_USD", -350)["orderFillTransaction"]

    # Then the first closes, the second closes, and 50 short units open a new trade
    assert [c["tradeID"] for c in fill["tradesClosed"]] == [first, second]
    assert fill["tradeOpened"]["units"] == "-50"
    position = sim.api.request(positions.PositionDetails(sim.account, "EUR_USD"))["position"]
    check_position(position)
    assert position["long"]["units"] == "0" and position["short"]["units"] == "-50"


def test_positions_list_open_get_and_close(sim):
    # Given a long EUR_USD and a short USD_JPY
    sim.market("EUR_USD", 100)
    sim.market("USD_JPY", -300)

    # When
    listed = sim.api.request(positions.PositionList(sim.account))["positions"]
    opened = sim.api.request(positions.OpenPositions(sim.account))["positions"]
    closed = sim.api.request(
        positions.PositionClose(sim.account, "USD_JPY", data={"shortUnits": "ALL"})
    )
    with pytest.raises(V20Error) as nothing:
        sim.api.request(positions.PositionClose(sim.account, "USD_JPY", data={"longUnits": "ALL"}))

    # Then
    assert (
        {p["instrument"] for p in listed}
        == {p["instrument"] for p in opened}
        == {
            "EUR_USD",
            "USD_JPY",
        }
    )
    for position in listed:
        check_position(position)
    create = closed["shortOrderCreateTransaction"]
    assert create["shortPositionCloseout"] == {"instrument": "USD_JPY", "units": "ALL"}
    assert closed["shortOrderFillTransaction"]["reason"] == "MARKET_ORDER_POSITION_CLOSEOUT"
    assert closed["shortOrderFillTransaction"]["units"] == "300"
    body = json.loads(nothing.value.msg)
    assert nothing.value.code == 400 and body["errorCode"] == "CLOSEOUT_POSITION_DOESNT_EXIST"
    assert "longOrderRejectTransaction" in body
    remaining = sim.api.request(positions.OpenPositions(sim.account))["positions"]
    assert [p["instrument"] for p in remaining] == ["EUR_USD"]
    every = sim.api.request(positions.PositionList(sim.account))["positions"]
    assert {p["instrument"] for p in every} == {"EUR_USD", "USD_JPY"}


def _flat(minutes, before, after, switch_at=5):
    return [
        (f"2025-07-24T09:{m:02d}:00.000000000Z", before if m < switch_at else after)
        for m in range(minutes)
    ]


def test_realized_pl_is_converted_into_the_account_currency(start_sim, candle_file):
    """The research notes' worked examples: +25.00, +20.00 and +33.22 USD."""
    # Given flat minutes that step at 09:05, no spread on the USD-quoted pairs and a 1 pip
    # USD_JPY spread (bid 150.500 / ask 150.510 after the step)
    sim = start_sim(
        "--data",
        candle_file("EUR_USD", _flat(10, "1.10000", "1.10250")),
        "--data",
        candle_file("GBP_USD", _flat(10, "1.27000", "1.26800")),
        "--data",
        candle_file("USD_JPY", _flat(10, "149.995", "150.505")),
        "--spread-pips",
        "EUR_USD=0",
        "--spread-pips",
        "GBP_USD=0",
        "--spread-pips",
        "USD_JPY=1",
    )
    eur = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    gbp = sim.market("GBP_USD", -10_000)["orderFillTransaction"]
    jpy = sim.market("USD_JPY", 10_000)["orderFillTransaction"]
    assert (eur["price"], gbp["price"], jpy["price"]) == ("1.10000", "1.27000", "150.000")

    # When the prices step and every trade is closed
    sim.advance(6 * 60)
    results = {}
    for fill in (eur, gbp, jpy):
        trade_id = fill["tradeOpened"]["tradeID"]
        closed = sim.api.request(trades.TradeClose(sim.account, trade_id))
        results[fill["instrument"]] = closed["orderFillTransaction"]

    # Then
    assert results["EUR_USD"]["pl"] == "25.0000"
    assert results["GBP_USD"]["pl"] == "20.0000"
    expected_jpy = (Decimal(5000) / Decimal("150.510")).quantize(Decimal("0.0001"))
    assert results["USD_JPY"]["pl"] == str(expected_jpy) == "33.2204"
    assert results["USD_JPY"]["price"] == "150.500"
    assert Decimal(results["USD_JPY"]["gainQuoteHomeConversionFactor"]) == (
        Decimal(1) / Decimal("150.510")
    ).quantize(Decimal("0.0000000001"))
    summary = sim.api.request(accounts.AccountSummary(sim.account))["account"]
    assert Decimal(summary["balance"]) == Decimal("100000") + Decimal("78.2204")
    assert summary["pl"] == "78.2204"


def test_unrealized_pl_and_margin_follow_the_price(start_sim, candle_file):
    # Given a long 10,000 EUR_USD at 1.10000 and the price 25 pips higher
    sim = start_sim(
        "--data",
        candle_file("EUR_USD", _flat(10, "1.10000", "1.10250")),
        "--spread-pips",
        "EUR_USD=0",
    )
    sim.market("EUR_USD", 10_000)
    sim.advance(6 * 60)

    # When
    account = sim.api.request(accounts.AccountSummary(sim.account))["account"]

    # Then position value is 10,000 x 1.1025 USD and margin 2 % of it
    assert account["unrealizedPL"] == "25.0000"
    assert account["positionValue"] == "11025.0000"
    assert account["marginUsed"] == "220.5000"
    assert account["NAV"] == "100025.0000"


def test_a_cross_pair_profit_is_converted_through_the_quote_currency(start_sim, candle_file):
    # Given EUR_GBP stepping from 0.86000 to 0.86100 and GBP_USD flat at 1.27000, no spreads
    sim = start_sim(
        "--data",
        candle_file("EUR_GBP", _flat(10, "0.86000", "0.86100")),
        "--data",
        candle_file("GBP_USD", _flat(10, "1.27000", "1.27000")),
        "--spread-pips",
        "EUR_GBP=0",
        "--spread-pips",
        "GBP_USD=0",
    )
    opened = sim.market("EUR_GBP", 10_000)["orderFillTransaction"]

    # When
    sim.advance(6 * 60)
    closed = sim.api.request(trades.TradeClose(sim.account, opened["tradeOpened"]["tradeID"]))

    # Then 10 GBP of profit is 12.70 USD at GBP_USD's bid
    assert closed["orderFillTransaction"]["pl"] == "12.7000"
    assert closed["orderFillTransaction"]["gainQuoteHomeConversionFactor"].startswith("1.27")
