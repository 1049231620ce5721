"""Orders: market, limit and stop creation, every reject and cancel reason, list, get, replace."""

from __future__ import annotations

import json
from decimal import Decimal

import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.transactions as transactions
import pytest
from oandapyV20.exceptions import V20Error

from tests.oandasim.sim_schemas import ORDER, check, check_transaction


def _price(sim, instrument="EUR_USD"):
    response = sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": instrument}))
    price = response["prices"][0]
    return Decimal(price["bids"][0]["price"]), Decimal(price["asks"][0]["price"])


def _create(sim, order):
    endpoint = orders.OrderCreate(sim.account, data={"order": order})
    return sim.api.request(endpoint)


def _reject(sim, order):
    with pytest.raises(V20Error) as error:
        _create(sim, order)
    assert error.value.code == 400
    return json.loads(error.value.msg)


def test_a_market_buy_fills_at_the_ask_and_shares_one_id_counter(sim):
    # Given
    _bid, ask = _price(sim)

    # When
    response = sim.market("EUR_USD", 1000, clientExtensions={"id": "buy-1", "tag": "t"})

    # Then
    create, fill = response["orderCreateTransaction"], response["orderFillTransaction"]
    for transaction in (create, fill):
        check_transaction(transaction)
    assert Decimal(fill["price"]) == ask
    assert int(fill["id"]) == int(create["id"]) + 1 == int(fill["tradeOpened"]["tradeID"])
    assert fill["orderID"] == create["id"] and fill["batchID"] == create["id"]
    assert fill["clientOrderID"] == "buy-1"
    assert response["relatedTransactionIDs"] == [create["id"], fill["id"]]
    assert response["lastTransactionID"] == fill["id"]


def test_a_market_sell_fills_at_the_bid(sim):
    bid, _ = _price(sim)
    response = sim.market("EUR_USD", -500)
    assert Decimal(response["orderFillTransaction"]["price"]) == bid
    assert response["orderFillTransaction"]["units"] == "-500"


def test_on_fill_orders_appear_as_transactions_and_pending_orders(sim):
    # Given
    _bid, ask = _price(sim)

    # When
    response = sim.market(
        "EUR_USD",
        1000,
        takeProfitOnFill={"price": str(ask + Decimal("0.00500"))},
        stopLossOnFill={"distance": "0.00300"},
        trailingStopLossOnFill={"distance": "0.00200"},
        tradeClientExtensions={"id": "trade-a"},
    )

    # Then
    ids = response["relatedTransactionIDs"]
    assert len(ids) == 5
    history = sim.api.request(
        transactions.TransactionIDRange(sim.account, params={"from": ids[0], "to": ids[-1]})
    )["transactions"]
    assert [t["type"] for t in history] == [
        "MARKET_ORDER",
        "ORDER_FILL",
        "TAKE_PROFIT_ORDER",
        "STOP_LOSS_ORDER",
        "TRAILING_STOP_LOSS_ORDER",
    ]
    for transaction in history:
        check_transaction(transaction)
    stop_loss = history[3]
    fill_price = Decimal(history[1]["price"])
    assert Decimal(stop_loss["price"]) == fill_price - Decimal("0.00300")
    assert stop_loss["reason"] == "ON_FILL" and stop_loss["clientTradeID"] == "trade-a"
    pending = sim.api.request(orders.OrdersPending(sim.account))["orders"]
    assert {o["type"] for o in pending} == {"TAKE_PROFIT", "STOP_LOSS", "TRAILING_STOP_LOSS"}
    for order in pending:
        check(order, ORDER, "order")


def test_a_limit_order_waits_and_can_be_read_by_id_and_client_id(sim):
    # Given
    bid, _ask = _price(sim)

    # When
    response = _create(
        sim,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": str(bid - Decimal("0.01000")),
            "clientExtensions": {"id": "lim-1"},
        },
    )

    # Then
    create = response["orderCreateTransaction"]
    check_transaction(create)
    assert "orderFillTransaction" not in response
    assert response["relatedTransactionIDs"] == [create["id"]]
    by_id = sim.api.request(orders.OrderDetails(sim.account, create["id"]))["order"]
    by_client = sim.api.request(orders.OrderDetails(sim.account, "@lim-1"))["order"]
    assert by_id == by_client
    check(by_id, ORDER, "order")
    assert by_id["state"] == "PENDING" and by_id["type"] == "LIMIT"


def test_a_marketable_limit_fills_at_once_at_the_better_price(sim):
    _bid, ask = _price(sim)
    response = _create(
        sim,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": str(ask + Decimal("0.00100")),
        },
    )
    fill = response["orderFillTransaction"]
    assert fill["reason"] == "LIMIT_ORDER" and Decimal(fill["price"]) == ask


def test_order_list_filters_by_state_instrument_and_count(sim):
    # Given two pending orders and one filled market order
    bid, _ = _price(sim)
    for units in ("100", "200"):
        _create(
            sim,
            {
                "type": "LIMIT",
                "instrument": "EUR_USD",
                "units": units,
                "price": str(bid - Decimal("0.01000")),
            },
        )
    sim.market("EUR_USD", 10)

    # When
    pending = sim.api.request(orders.OrderList(sim.account))["orders"]
    everything = sim.api.request(orders.OrderList(sim.account, params={"state": "ALL"}))["orders"]
    one = sim.api.request(orders.OrderList(sim.account, params={"state": "ALL", "count": 1}))
    other_pair = sim.api.request(orders.OrderList(sim.account, params={"instrument": "USD_JPY"}))

    # Then
    assert [o["units"] for o in pending] == ["200", "100"]
    assert {o["state"] for o in everything} == {"PENDING", "FILLED"}
    assert len(one["orders"]) == 1 and other_pair["orders"] == []


def test_cancelling_a_pending_order_and_an_unknown_one(sim):
    # Given
    bid, _ = _price(sim)
    created = _create(
        sim,
        {
            "type": "STOP",
            "instrument": "EUR_USD",
            "units": "-100",
            "price": str(bid - Decimal("0.01000")),
        },
    )
    order_id = created["orderCreateTransaction"]["id"]

    # When
    cancelled = sim.api.request(orders.OrderCancel(sim.account, order_id))
    with pytest.raises(V20Error) as missing:
        sim.api.request(orders.OrderCancel(sim.account, "99999"))

    # Then
    check_transaction(cancelled["orderCancelTransaction"])
    assert cancelled["orderCancelTransaction"]["reason"] == "CLIENT_REQUEST"
    assert missing.value.code == 404
    body = json.loads(missing.value.msg)
    assert body["errorCode"] == "ORDER_DOESNT_EXIST"
    assert body["orderCancelRejectTransaction"]["type"] == "ORDER_CANCEL_REJECT"
    state = sim.api.request(orders.OrderDetails(sim.account, order_id))["order"]
    assert state["state"] == "CANCELLED" and "cancellingTransactionID" in state


def test_replacing_an_order_cancels_it_and_creates_its_successor(sim):
    # Given
    bid, _ = _price(sim)
    created = _create(
        sim,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": str(bid - Decimal("0.01000")),
        },
    )
    old_id = created["orderCreateTransaction"]["id"]

    # When
    replaced = sim.api.request(
        orders.OrderReplace(
            sim.account,
            old_id,
            data={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "300",
                    "price": str(bid - Decimal("0.02000")),
                }
            },
        )
    )

    # Then
    cancel, create = replaced["orderCancelTransaction"], replaced["orderCreateTransaction"]
    assert cancel["reason"] == "CLIENT_REQUEST_REPLACED"
    assert cancel["replacedByOrderID"] == create["id"]
    assert create["replacesOrderID"] == old_id and create["reason"] == "REPLACEMENT"
    pending = sim.api.request(orders.OrdersPending(sim.account))["orders"]
    assert [(o["id"], o["units"]) for o in pending] == [(create["id"], "300")]


@pytest.mark.parametrize(
    ("order", "reason"),
    [
        ({"price": "1.123456"}, "PRICE_PRECISION_EXCEEDED"),
        ({"units": "abc"}, "UNITS_INVALID"),
        ({"units": "0"}, "UNITS_INVALID"),
        ({"units": "10.5"}, "UNITS_PRECISION_EXCEEDED"),
        ({"instrument": "EUR_XYZ"}, "INSTRUMENT_UNKNOWN"),
        ({"price": None}, "PRICE_MISSING"),
        ({"timeInForce": "GTD"}, "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING"),
        (
            {"takeProfitOnFill": {"price": "1.2000001"}},
            "TAKE_PROFIT_ON_FILL_PRICE_PRECISION_EXCEEDED",
        ),
        ({"stopLossOnFill": {"price": "1.0000001"}}, "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"),
        (
            {"trailingStopLossOnFill": {"distance": "0.00010"}},
            "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET",
        ),
    ],
)
def test_invalid_orders_are_rejected_with_a_reject_transaction(sim, order, reason):
    # Given
    request = {"type": "LIMIT", "instrument": "EUR_USD", "units": "100", "price": "1.10000"}
    request.update(order)
    request = {k: v for k, v in request.items() if v is not None}

    # When
    body = _reject(sim, request)

    # Then
    assert body["errorCode"] == reason
    assert body["orderRejectTransaction"]["rejectReason"] == reason
    assert body["orderRejectTransaction"]["type"] == "LIMIT_ORDER_REJECT"
    check_transaction(body["orderRejectTransaction"])
    assert body["errorMessage"]
    assert body["relatedTransactionIDs"] == [body["orderRejectTransaction"]["id"]]


def test_precision_beyond_display_is_allowed_when_the_extra_digits_are_zero(sim):
    # oandapyV20's PriceValue writes "150.12300" for a three-decimal pair.
    response = _create(
        sim, {"type": "LIMIT", "instrument": "USD_JPY", "units": "100", "price": "100.12300"}
    )
    assert response["orderCreateTransaction"]["price"] == "100.123"


def test_a_reused_client_id_is_rejected(sim):
    # Given
    sim.market("EUR_USD", 10, clientExtensions={"id": "same"})

    # When
    body = _reject(
        sim,
        {
            "type": "MARKET",
            "instrument": "EUR_USD",
            "units": "10",
            "clientExtensions": {"id": "same"},
        },
    )

    # Then
    assert body["errorCode"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"
    assert body["orderRejectTransaction"]["type"] == "MARKET_ORDER_REJECT"


def test_an_order_beyond_the_margin_is_cancelled_for_insufficient_margin(sim):
    # When 100k USD at 2 % margin supports 5M units of EUR_USD, not 10M
    response = sim.market("EUR_USD", 10_000_000)

    # Then
    assert "orderFillTransaction" not in response
    assert response["orderCancelTransaction"]["reason"] == "INSUFFICIENT_MARGIN"


def test_take_profit_or_stop_loss_on_the_wrong_side_cancels_the_market_order(sim):
    bid, ask = _price(sim)
    losing_tp = sim.market("EUR_USD", 100, takeProfitOnFill={"price": str(ask - Decimal("0.001"))})
    losing_sl = sim.market("EUR_USD", 100, stopLossOnFill={"price": str(bid + Decimal("0.001"))})
    assert losing_tp["orderCancelTransaction"]["reason"] == "TAKE_PROFIT_ON_FILL_LOSS"
    assert losing_sl["orderCancelTransaction"]["reason"] == "STOP_LOSS_ON_FILL_LOSS"


def test_a_price_bound_that_the_market_violates_cancels_the_order(sim):
    _bid, ask = _price(sim)
    response = sim.market("EUR_USD", 100, priceBound=str(ask - Decimal("0.00010")))
    assert response["orderCancelTransaction"]["reason"] == "BOUNDS_VIOLATION"


def test_a_gtd_limit_order_expires(sim):
    # Given a limit far from the market that is good until 09:10
    bid, _ = _price(sim)
    created = _create(
        sim,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": str(bid - Decimal("0.05000")),
            "timeInForce": "GTD",
            "gtdTime": "2025-07-24T09:10:00Z",
        },
    )
    order_id = created["orderCreateTransaction"]["id"]

    # When
    sim.advance(15 * 60)

    # Then
    order = sim.api.request(orders.OrderDetails(sim.account, order_id))["order"]
    assert order["state"] == "CANCELLED"
    last = sim.api.request(transactions.TransactionsSinceID(sim.account, params={"id": order_id}))
    cancel = last["transactions"][-1]
    assert cancel["reason"] == "TIME_IN_FORCE_EXPIRED"
    assert cancel["time"].startswith("2025-07-24T09:10:00")


def test_reduce_only_shrinks_a_position_without_flipping_it(sim):
    # Given a long of 100
    sim.market("EUR_USD", 100)

    # When selling 300 with REDUCE_ONLY, then again with nothing left to reduce
    reduced = sim.market("EUR_USD", -300, positionFill="REDUCE_ONLY")
    nothing = sim.market("EUR_USD", -300, positionFill="REDUCE_ONLY")

    # Then only the 100 were sold and the second order was cancelled
    fill = reduced["orderFillTransaction"]
    assert fill["units"] == "-100" and "tradeOpened" not in fill
    assert nothing["orderCancelTransaction"]["reason"] == "POSITION_CLOSEOUT_FAILED"


def test_the_transaction_list_pages_by_id_range_and_single_transactions_can_be_read(sim):
    # Given a few transactions
    for _ in range(3):
        sim.market("EUR_USD", 10)

    # When
    listing = sim.api.request(transactions.TransactionList(sim.account, params={"pageSize": 4}))
    one = sim.api.request(transactions.TransactionDetails(sim.account, "3"))

    # Then
    assert listing["count"] == 8 and listing["pageSize"] == 4
    assert [page.rsplit("?", 1)[1] for page in listing["pages"]] == [
        "from=1&to=4",
        "from=5&to=8",
    ]
    assert one["transaction"]["id"] == "3" and one["transaction"]["type"] == "MARKET_ORDER"


def test_open_only_against_an_opposite_position_is_cancelled_as_a_fifo_violation(sim):
    sim.market("EUR_USD", 100)
    response = sim.market("EUR_USD", -100, positionFill="OPEN_ONLY")
    assert response["orderCancelTransaction"]["reason"] == "FIFO_VIOLATION"


def test_a_reused_client_trade_id_is_rejected(sim):
    sim.market("EUR_USD", 10, tradeClientExtensions={"id": "my-trade"})
    body = _reject(
        sim,
        {
            "type": "MARKET",
            "instrument": "EUR_USD",
            "units": "10",
            "tradeClientExtensions": {"id": "my-trade"},
        },
    )
    assert body["errorCode"] == "CLIENT_TRADE_ID_ALREADY_EXISTS"


def test_an_order_can_be_cancelled_by_its_client_id(sim):
    bid, _ask = _price(sim)
    _create(
        sim,
        {
            "type": "LIMIT",
            "instrument": "EUR_USD",
            "units": "100",
            "price": str(bid - Decimal("0.01000")),
            "clientExtensions": {"id": "cancel-me"},
        },
    )
    cancelled = sim.api.request(orders.OrderCancel(sim.account, "@cancel-me"))
    assert cancelled["orderCancelTransaction"]["clientOrderID"] == "cancel-me"
