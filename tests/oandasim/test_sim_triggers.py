"""Stop-loss, take-profit, trailing-stop and entry triggers on the real EUR/USD minutes.

The expected fills are worked out here from the data file and the documented tick path (open,
nearer extreme, other extreme, close at 0, 20, 40 and 60 seconds), independently of the server.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.trades as trades
import oandapyV20.endpoints.transactions as transactions

from oandasim.timeutil import parse_time

DATA = json.loads((Path(__file__).parents[2] / "oandasim/data/eur_usd_m1_48h.json").read_text())
HALF_SPREAD = 7  # EUR_USD's default 1.4 pip spread is 14 pipettes, 7 either side of mid


def _path_from(start: str, side: str):
    """Yield (minute_start, bid_or_ask_vertices) for each minute from `start`, in pipettes."""
    offset = -HALF_SPREAD if side == "bid" else HALF_SPREAD
    for row in DATA:
        if row["time"] < start:
            continue
        o, h, low, c = (
            round(Decimal(str(row[k])) * 100000) for k in ("open", "high", "low", "close")
        )
        vertices = (o, h, low, c) if h - o <= o - low else (o, low, h, c)
        yield row["time"], [v + offset for v in vertices]


def _first_touch(start: str, side: str, above: int | None, below: int | None):
    """The minute and level of the first touch of `above` (>=) or `below` (<=) on the path."""
    for minute, points in _path_from(start, side):
        for v0, v1 in itertools.pairwise(points):
            if above is not None and max(v0, v1) >= above:
                return minute, "above", max(above, v0) if v0 >= above else above
            if below is not None and min(v0, v1) <= below:
                return minute, "below", min(below, v0) if v0 <= below else below
    raise AssertionError("no touch in the data")


def _fills_since(sim, transaction_id):
    history = sim.api.request(
        transactions.TransactionsSinceID(sim.account, params={"id": transaction_id})
    )["transactions"]
    return [t for t in history if t["type"] == "ORDER_FILL"]


def test_a_long_trade_closes_at_whichever_of_take_profit_and_stop_loss_the_bid_reaches_first(sim):
    # Given a long at 09:00 with a take-profit 8 pips up and a stop-loss 8 pips down
    opened = sim.market("EUR_USD", 10_000)["orderFillTransaction"]
    entry = round(Decimal(opened["price"]) * 100000)
    bid_now = entry - 2 * HALF_SPREAD
    take_profit, stop_loss = bid_now + 80, bid_now - 80
    trade_id = opened["tradeOpened"]["tradeID"]
    sim.api.request(
        trades.TradeCRCDO(
            sim.account,
            trade_id,
            data={
                "takeProfit": {"price": f"{take_profit / 100000:.5f}"},
                "stopLoss": {"price": f"{stop_loss / 100000:.5f}"},
            },
        )
    )
    minute, which, level = _first_touch("2025-07-24T09:00", "bid", take_profit, stop_loss)

    # When the clock runs on for six hours
    sim.advance(6 * 3600)

    # Then exactly one closing fill happened, at the level, in the minute the path says
    fills = _fills_since(sim, opened["id"])
    assert len(fills) == 1
    fill = fills[0]
    assert fill["reason"] == ("TAKE_PROFIT_ORDER" if which == "above" else "STOP_LOSS_ORDER")
    assert round(Decimal(fill["price"]) * 100000) == level
    assert fill["time"][:16] == minute[:16]
    assert fill["tradesClosed"][0]["tradeID"] == trade_id
    expected_pl = Decimal(level - entry) / 100000 * 10_000
    assert Decimal(fill["pl"]) == expected_pl
    trade = sim.api.request(trades.TradeDetails(sim.account, trade_id))["trade"]
    assert trade["state"] == "CLOSED"


def test_a_short_stop_loss_watches_the_ask(sim):
    # Given a short at 09:00 with a stop 5 pips above the ask
    opened = sim.market("EUR_USD", -1000, stopLossOnFill={"distance": "0.00050"})
    fill = opened["orderFillTransaction"]
    entry = round(Decimal(fill["price"]) * 100000)
    stop = entry + 50
    minute, _, level = _first_touch("2025-07-24T09:00", "ask", stop, None)

    # When
    sim.advance(8 * 3600)

    # Then
    closing = _fills_since(sim, fill["id"])[0]
    assert closing["reason"] == "STOP_LOSS_ORDER"
    assert closing["time"][:16] == minute[:16]
    assert round(Decimal(closing["price"]) * 100000) == level == stop


def test_a_trailing_stop_follows_the_best_bid_and_fires_its_distance_below(sim):
    # Given a long with a 6 pip trailing stop
    distance = 60
    opened = sim.market("EUR_USD", 1000, trailingStopLossOnFill={"distance": "0.00060"})
    fill = opened["orderFillTransaction"]

    # The reference: the highest bid so far minus the distance, checked segment by segment
    best = None
    expected = None
    for minute, points in _path_from("2025-07-24T09:00", "bid"):
        for v0, v1 in itertools.pairwise(points):
            best = v0 if best is None else max(best, v0)
            if v0 <= best - distance:
                expected = (minute, v0)
                break
            if v1 <= best - distance:
                expected = (minute, best - distance)
                break
            best = max(best, v1)
        if expected:
            break
    assert expected is not None

    # When
    sim.advance(8 * 3600)

    # Then
    closing = _fills_since(sim, fill["id"])[0]
    assert closing["reason"] == "TRAILING_STOP_LOSS_ORDER"
    assert closing["time"][:16] == expected[0][:16]
    assert round(Decimal(closing["price"]) * 100000) == expected[1]


def test_a_buy_limit_fills_when_the_ask_falls_to_it_and_a_sell_stop_when_the_bid_does(sim):
    # Given a buy limit and a sell stop 5 pips under the current prices
    start = "2025-07-24T09:00"
    _, first_points = next(_path_from(start, "ask"))
    ask_now = first_points[0]
    bid_now = ask_now - 2 * HALF_SPREAD
    limit = ask_now - 50
    stop = bid_now - 50
    created_limit = sim.api.request(
        orders.OrderCreate(
            sim.account,
            data={
                "order": {
                    "type": "LIMIT",
                    "instrument": "EUR_USD",
                    "units": "100",
                    "price": f"{limit / 100000:.5f}",
                }
            },
        )
    )
    created_stop = sim.api.request(
        orders.OrderCreate(
            sim.account,
            data={
                "order": {
                    "type": "STOP",
                    "instrument": "EUR_USD",
                    "units": "-100",
                    "price": f"{stop / 100000:.5f}",
                }
            },
        )
    )
    limit_minute, _, _ = _first_touch(start, "ask", None, limit)
    stop_minute, _, _ = _first_touch(start, "bid", None, stop)

    # When
    sim.advance(8 * 3600)

    # Then
    fills = {
        f["orderID"]: f for f in _fills_since(sim, created_limit["orderCreateTransaction"]["id"])
    }
    limit_fill = fills[created_limit["orderCreateTransaction"]["id"]]
    stop_fill = fills[created_stop["orderCreateTransaction"]["id"]]
    assert limit_fill["reason"] == "LIMIT_ORDER" and stop_fill["reason"] == "STOP_ORDER"
    assert limit_fill["time"][:16] == limit_minute[:16]
    assert stop_fill["time"][:16] == stop_minute[:16]
    assert round(Decimal(limit_fill["price"]) * 100000) <= limit
    assert round(Decimal(stop_fill["price"]) * 100000) == stop
    assert parse_time(limit_fill["time"]) >= parse_time("2025-07-24T09:00:00Z")
