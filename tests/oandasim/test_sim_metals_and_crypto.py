"""Metals and crypto CFDs: synthetic prices on their own hours, orders, P&L in the home currency."""

from __future__ import annotations

from decimal import Decimal

import oandapyV20.endpoints.instruments as instruments
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.trades as trades

from oandasim.instruments import INSTRUMENTS
from oandasim.market import Series
from oandasim.timeutil import parse_time

# A Saturday (synthetic prices: it lies outside the bundled EUR/USD minutes).
SATURDAY = "2026-01-10T12:00:00Z"
# Wednesday 2026-01-14 in New York winter (UTC-5): 17:30 is 22:30 UTC, 18:30 is 23:30 UTC.
WEDNESDAY_BREAK = "2026-01-14T22:30:00Z"
WEDNESDAY_AFTER_BREAK = "2026-01-14T23:30:00Z"


def _price(sim, instrument):
    response = sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": instrument}))
    return response["prices"][0]


def test_btc_usd_trades_on_a_saturday_while_eur_usd_is_halted(start_sim):
    # Given the clock on a Saturday
    sim = start_sim(start=SATURDAY)

    # When
    bitcoin = _price(sim, "BTC_USD")
    euro = _price(sim, "EUR_USD")
    filled = sim.market("BTC_USD", 1)
    refused = sim.market("EUR_USD", 1000)

    # Then crypto is tradeable and fills at its ask; the FX pair is halted
    assert bitcoin["tradeable"] is True and bitcoin["status"] == "tradeable"
    assert bitcoin["time"].startswith("2026-01-10T12:00:00")
    assert euro["tradeable"] is False
    fill = filled["orderFillTransaction"]
    assert fill["instrument"] == "BTC_USD" and fill["units"] == "1"
    assert fill["price"] == bitcoin["asks"][0]["price"]
    assert refused["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    candles = sim.api.request(
        instruments.InstrumentsCandles("BTC_USD", params={"granularity": "M1", "count": 3})
    )["candles"]
    assert [(c["time"][:16], c["complete"]) for c in candles] == [
        ("2026-01-10T11:58", True),
        ("2026-01-10T11:59", True),
        ("2026-01-10T12:00", False),
    ]


def test_xau_usd_is_halted_in_its_daily_break_and_fills_after_it(start_sim):
    # Given gold at 17:30 New York on a Wednesday
    sim = start_sim(start=WEDNESDAY_BREAK)

    # When
    halted_price = _price(sim, "XAU_USD")
    halted = sim.market("XAU_USD", 10)
    euro = sim.market("EUR_USD", 1000)
    sim.jump(WEDNESDAY_AFTER_BREAK)
    open_price = _price(sim, "XAU_USD")
    filled = sim.market("XAU_USD", 10)

    # Then the metal is closed from 17:00 to 18:00 while FX trades again after 17:03
    assert halted_price["tradeable"] is False
    assert halted_price["time"] < "2026-01-14T22:00:00"
    assert halted["orderCancelTransaction"]["reason"] == "MARKET_HALTED"
    assert "orderFillTransaction" in euro
    assert open_price["tradeable"] is True
    assert filled["orderFillTransaction"]["price"] == open_price["asks"][0]["price"]


def test_an_xau_usd_trade_settles_its_price_move_in_usd(start_sim):
    # Given a long of 10 ounces of gold on a Wednesday afternoon
    sim = start_sim(start="2026-01-14T15:00:00Z")
    opened = sim.market("XAU_USD", 10)["orderFillTransaction"]
    trade_id = opened["tradeOpened"]["tradeID"]

    # When it is closed an hour later
    sim.advance(3600)
    closed = sim.api.request(trades.TradeClose(sim.account, trade_id))["orderFillTransaction"]

    # Then the profit is the units times the move, in dollars with no conversion
    move = Decimal(closed["price"]) - Decimal(opened["price"])
    assert move != 0
    assert Decimal(closed["pl"]) == 10 * move
    assert Decimal(closed["tradesClosed"][0]["realizedPL"]) == 10 * move


def test_metal_and_crypto_series_follow_their_hours_and_repeat_from_the_seed():
    gold = Series(INSTRUMENTS["XAU_USD"], Decimal(35), seed=7)
    bitcoin = Series(INSTRUMENTS["BTC_USD"], Decimal(50), seed=7)
    saturday = int(parse_time(SATURDAY) // 60)
    # The crypto walk has every minute of the weekend (and of a daylight-saving Sunday, once each).
    assert bitcoin.minutes_between(saturday, saturday + 60) == list(range(saturday, saturday + 60))
    dst_sunday = int(parse_time("2026-03-08T00:00:00Z") // 60)
    around = bitcoin.minutes_between(dst_sunday, dst_sunday + 3 * 1440)
    assert around == list(range(dst_sunday, dst_sunday + 3 * 1440))
    # Gold has none on Saturday nor in the 17:00-18:00 New York break (22:00-23:00 UTC in winter)
    assert gold.minutes_between(saturday, saturday + 60) == []
    wednesday_17 = int(parse_time("2026-01-14T22:00:00Z") // 60)
    minutes = gold.minutes_between(wednesday_17 - 10, wednesday_17 + 70)
    assert minutes == [
        *range(wednesday_17 - 10, wednesday_17),
        *range(wednesday_17 + 60, wednesday_17 + 70),
    ]
    # The same seed gives the same prices; another seed other prices
    again = Series(INSTRUMENTS["XAU_USD"], Decimal(35), seed=7)
    other = Series(INSTRUMENTS["XAU_USD"], Decimal(35), seed=8)
    assert gold.candle(wednesday_17 - 5) == again.candle(wednesday_17 - 5)
    assert gold.candle(wednesday_17 - 5) != other.candle(wednesday_17 - 5)
