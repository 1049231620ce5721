"""A full trading day: stream prices, trade with SL/TP, close out, reconcile via transactions."""

from __future__ import annotations

import queue
import threading
from decimal import Decimal

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.positions as positions
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.transactions as transactions
from oandapyV20.exceptions import StreamTerminated

from oandasim.timeutil import parse_time
from tests.oandasim.sim_schemas import check_transaction


def test_a_day_of_streamed_trading_reconciles_with_the_transaction_history(start_sim):
    # Given a simulator replaying Thursday from 07:00 UTC at one simulated hour per second,
    # and a transactions stream recording everything on its own thread
    sim = start_sim("--speed", "3600", start="2025-07-24T07:00:00Z", paused=False)
    streamed: queue.Queue = queue.Queue()
    stream_api = sim.process.api(name="sim-day-tx")
    tx_endpoint = transactions.TransactionsStream(sim.account)

    def record() -> None:
        for message in stream_api.request(tx_endpoint):
            streamed.put(message)

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    stop_at = parse_time("2025-07-24T15:00:00Z")

    # When the bot trades EUR_USD off the pricing stream: one position at a time, 10 pip TP/SL
    endpoint = pricing.PricingStream(sim.account, params={"instruments": "EUR_USD,GBP_USD"})
    opened = 0
    try:
        for message in sim.api.request(endpoint):
            if message["type"] != "PRICE" or message["instrument"] != "EUR_USD":
                continue
            if parse_time(message["time"]) >= stop_at:
                endpoint.terminate("end of the trading day")
            if not message["tradeable"]:
                continue
            held = sim.api.request(positions.OpenPositions(sim.account))["positions"]
            if held:
                continue
            ask = Decimal(message["asks"][0]["price"])
            units = 1000 if opened % 2 == 0 else -1000
            take_profit = ask + Decimal("0.00100") if units > 0 else ask - Decimal("0.00100")
            response = sim.market(
                "EUR_USD",
                units,
                takeProfitOnFill={"price": str(take_profit)},
                stopLossOnFill={"distance": "0.00100"},
            )
            if "orderFillTransaction" in response:
                opened += 1
    except StreamTerminated:
        pass
    closing = sim.api.request(positions.OpenPositions(sim.account))["positions"]
    for position in closing:
        side = "longUnits" if position["long"]["units"] != "0" else "shortUnits"
        sim.api.request(
            positions.PositionClose(sim.account, position["instrument"], data={side: "ALL"})
        )
    summary = sim.api.request(accounts.AccountSummary(sim.account))
    last_id = summary["lastTransactionID"]

    # Then trades were opened and closed by their take-profits and stop-losses
    history = sim.api.request(transactions.TransactionsSinceID(sim.account, params={"id": 0}))
    records = history["transactions"]
    fills = [t for t in records if t["type"] == "ORDER_FILL"]
    reasons = {t["reason"] for t in fills}
    assert opened >= 3
    assert {"TAKE_PROFIT_ORDER", "STOP_LOSS_ORDER"} & reasons
    # Ids are one unbroken sequence and every record has OANDA's shape
    assert [int(t["id"]) for t in records] == list(range(1, int(last_id) + 1))
    for record_ in records:
        check_transaction(record_)
    # The balance is the deposit plus every fill's realized P&L
    deposit = Decimal(records[1]["amount"])
    realized = sum(Decimal(t["pl"]) for t in fills)
    account = summary["account"]
    assert Decimal(account["balance"]) == deposit + realized
    assert account["openTradeCount"] == 0 and account["pendingOrderCount"] == 0
    assert Decimal(fills[-1]["accountBalance"]) == Decimal(account["balance"])
    # The transactions stream saw the same records as the history
    seen: dict[str, dict] = {}
    while len(seen) < len(records) - 2:
        message = streamed.get(timeout=5)
        if message["type"] != "HEARTBEAT":
            seen[message["id"]] = message
    assert [seen[t["id"]] for t in records[2:]] == records[2:]
