"""Market hours and weekends, injected faults, the rate limit, the clock, and restart with state."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.instruments as instruments
import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.trades as trades
import oandapyV20.endpoints.transactions as transactions
import pytest
import requests
from oandapyV20.exceptions import V20Error


def _price(sim, instrument="EUR_USD"):
    response = sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": instrument}))
    return response["prices"][0]


def test_after_the_friday_close_prices_freeze_and_market_orders_are_halted(start_sim):
    # Given a trade opened on Friday 16:55 New York with the real data
    sim = start_sim(start="2025-07-25T20:55:00Z")
    opened = sim.market("EUR_USD", 1000)["orderFillTransaction"]
    trade_id = opened["tradeOpened"]["tradeID"]

    # When the clock reaches Saturday
    sim.jump("2025-07-26T12:00:00Z")
    price = _price(sim)
    market = sim.market("EUR_USD", 1000)
    close = sim.api.request(trades.TradeClose(sim.account, trade_id))
    limit = sim.api.request(
        orders.OrderCreate(
            sim.account,
            data={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "10",
                    "price": "1.00000",
                }
            },
        )
    )

    # Then
    assert price["tradeable"] is False and price["status"] == "non-tradeable"
    assert price["time"] < "2025-07-25T21:00:00"
    assert market["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    assert close["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    assert "orderFillTransaction" not in close
    assert "orderCancelTransaction" not in limit
    candles = sim.api.request(
        instruments.InstrumentsCandles("EUR_USD", params={"granularity": "M1", "count": 2})
    )["candles"]
    assert all(c["time"] < "2025-07-25T21:00:00" for c in candles)
    assert all(c["complete"] for c in candles)
    stream = pricing.PricingStream(sim.account, params={"instruments": "EUR_USD"})
    messages = []
    for message in sim.api.request(stream):
        messages.append(message)
        if len(messages) == 3:
            break
    assert [m["type"] for m in messages] == ["PRICE", "HEARTBEAT", "HEARTBEAT"]
    assert messages[0]["tradeable"] is False


def test_the_daily_break_closes_the_market_for_five_minutes(start_sim):
    # 16:59 New York on a Thursday in July is 20:59 UTC
    sim = start_sim(start="2025-07-24T20:59:30Z")
    assert _price(sim)["tradeable"] is False
    assert sim.market("EUR_USD", 10)["orderCancelTransaction"]["reason"] == "MARKET_HALTED"


def test_a_pending_order_placed_on_saturday_fills_at_the_sunday_open(start_sim):
    # Given synthetic prices (the start lies outside the bundled file) and a generous buy limit
    sim = start_sim(start="2026-01-10T12:00:00Z")
    assert _price(sim)["tradeable"] is False
    created = sim.api.request(
        orders.OrderCreate(
            sim.account,
            data={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "100",
                    "price": "5.00000",
                }
            },
        )
    )

    # When the clock passes Sunday 17:03 New York (22:03 UTC in winter)
    sim.jump("2026-01-11T22:10:00Z")

    # Then it filled at the first tradeable price
    fill = sim.api.request(
        transactions.TransactionsSinceID(
            sim.account, params={"id": created["orderCreateTransaction"]["id"]}
        )
    )["transactions"][0]
    assert fill["type"] == "ORDER_FILL" and fill["time"].startswith("2026-01-11T22:03:00")
    assert Decimal(fill["price"]) < Decimal("5")
    assert _price(sim)["tradeable"] is True


def test_injected_429_and_503_answer_the_next_requests_then_stop(sim):
    # Given
    sim.control("fault", {"status": 429, "count": 2})

    # When / Then
    for _ in range(2):
        with pytest.raises(V20Error) as error:
            sim.api.request(accounts.AccountSummary(sim.account))
        assert error.value.code == 429
    assert sim.api.request(accounts.AccountSummary(sim.account))["account"]["id"] == sim.account
    sim.control("fault", {"status": 503, "count": 1})
    with pytest.raises(V20Error) as unavailable:
        sim.api.request(accounts.AccountList())
    assert unavailable.value.code == 503


def test_injected_latency_delays_every_response(sim):
    sim.control("fault", {"latency": 0.3})
    began = time.monotonic()
    sim.api.request(accounts.AccountList())
    assert time.monotonic() - began >= 0.3
    sim.control("fault", {"clear": True})
    assert sim.control("fault")["latency"] == 0


def test_more_than_120_requests_in_a_second_are_answered_with_429(start_sim):
    # Given a simulator with OANDA's rate limit
    sim = start_sim("--rate-limit", "120")
    session = requests.Session()
    url = f"{sim.url}/v3/accounts"
    headers = {"Authorization": "Bearer sim-token"}

    # When
    statuses = [session.get(url, headers=headers).status_code for _ in range(130)]

    # Then
    assert statuses.count(200) == 120 or statuses[:100].count(200) == 100
    assert 429 in statuses
    time.sleep(1.1)
    assert session.get(url, headers=headers).status_code == 200


def test_the_control_endpoints_need_the_token(sim):
    response = requests.get(f"{sim.url}/__sim/clock", timeout=5)
    assert response.status_code == 401


def test_the_clock_can_be_read_paused_sped_up_and_jumped_but_not_reversed(sim):
    # Given
    clock = sim.control("clock")
    assert clock["paused"] is True and clock["time"].startswith("2025-07-24T09:00:00")

    # When
    sim.control("clock", {"speed": 120, "pause": False})
    time.sleep(0.5)
    running = sim.control("clock", {"pause": True})
    jumped = sim.control("clock", {"time": "2025-07-24T12:00:00Z"})

    # Then
    assert running["speed"] == 120 and running["time"] > "2025-07-24T09:00:50"
    assert jumped["time"].startswith("2025-07-24T12:00:00")
    with pytest.raises(requests.HTTPError):
        sim.control("clock", {"time": "2025-07-24T11:00:00Z"})
    price = _price(sim)
    assert price["time"].startswith("2025-07-24T12:00:00")


def test_the_account_survives_a_restart_with_a_state_file(start_sim, tmp_path):
    # Given an open trade with a stop-loss and a pending order, then a SIGTERM
    state = tmp_path / "account.json"
    sim = start_sim("--state", str(state))
    opened = sim.market(
        "EUR_USD",
        1000,
        stopLossOnFill={"distance": "0.05000"},
        tradeClientExtensions={"id": "keep-me"},
    )
    sim.api.request(
        orders.OrderCreate(
            sim.account,
            data={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "10",
                    "price": "1.00000",
                    "clientExtensions": {"id": "pending-1"},
                }
            },
        )
    )
    sim.advance(600)
    before = sim.api.request(accounts.AccountDetails(sim.account))
    history = sim.api.request(transactions.TransactionsSinceID(sim.account, params={"id": 0}))
    assert sim.process.stop() == 0
    saved = json.loads(state.read_text())
    assert saved["account_id"] == sim.account

    # When a new simulator starts from the same file
    again = start_sim("--state", str(state), start=None)

    # Then the account, its trades, orders and transactions are as they were
    after = again.api.request(accounts.AccountDetails(again.account))
    assert after["lastTransactionID"] == before["lastTransactionID"]
    assert [t["id"] for t in after["account"]["trades"]] == [
        t["id"] for t in before["account"]["trades"]
    ]
    assert after["account"]["balance"] == before["account"]["balance"]
    assert {o["id"] for o in after["account"]["orders"]} == {
        o["id"] for o in before["account"]["orders"]
    }
    assert (
        again.api.request(transactions.TransactionsSinceID(again.account, params={"id": 0}))[
            "transactions"
        ]
        == history["transactions"]
    )
    trade = again.api.request(trades.TradeDetails(again.account, "@keep-me"))["trade"]
    assert trade["id"] == opened["orderFillTransaction"]["tradeOpened"]["tradeID"]
    assert again.control("clock")["time"] >= "2025-07-24T09:10:00"
    # And the id counter continues, and client ids stay taken
    next_fill = again.market("EUR_USD", 5)
    assert int(next_fill["orderCreateTransaction"]["id"]) == int(before["lastTransactionID"]) + 1
    with pytest.raises(V20Error) as reused:
        again.market("EUR_USD", 5, clientExtensions={"id": "pending-1"})
    assert json.loads(reused.value.msg)["errorCode"] == "CLIENT_ORDER_ID_ALREADY_EXISTS"
