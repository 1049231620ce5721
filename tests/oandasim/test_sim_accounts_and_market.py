"""Accounts, instruments, candles and pricing through the unmodified oandapyV20 client."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import oandapyV20
import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.instruments as instruments
import oandapyV20.endpoints.pricing as pricing
import pytest
from oandapyV20.exceptions import V20Error

from oandasim.client import register_environment
from oandasim.timeutil import parse_time
from tests.oandasim.sim_schemas import (
    ACCOUNT,
    ACCOUNT_SUMMARY,
    INSTRUMENT,
    check,
    check_candle,
    check_position,
    check_price,
)

DATA_FILE = Path(__file__).parents[2] / "oandasim" / "data" / "eur_usd_m1_48h.json"


def test_the_account_list_names_the_one_simulated_account(sim):
    # When
    response = sim.api.request(accounts.AccountList())

    # Then
    assert response == {"accounts": [{"id": sim.account, "tags": []}]}


def test_account_details_and_summary_have_every_field_oanda_sends(sim):
    # Given an open trade and a pending limit order
    sim.market("EUR_USD", 1000)
    sim.api.request(
        __import__("oandapyV20.endpoints.orders", fromlist=["OrderCreate"]).OrderCreate(
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

    # When
    details = sim.api.request(accounts.AccountDetails(sim.account))
    summary = sim.api.request(accounts.AccountSummary(sim.account))

    # Then
    check(details["account"], ACCOUNT, "account")
    check(summary["account"], ACCOUNT_SUMMARY, "summary")
    account = summary["account"]
    assert account["openTradeCount"] == 1 and account["pendingOrderCount"] == 1
    nav = Decimal(account["balance"]) + Decimal(account["unrealizedPL"])
    assert Decimal(account["NAV"]) == nav
    assert Decimal(account["marginAvailable"]) == nav - Decimal(account["marginUsed"])
    for position in details["account"]["positions"]:
        check_position(position)
    assert details["lastTransactionID"] == account["lastTransactionID"]


def test_account_instruments_describes_pips_and_precision(sim):
    # When
    response = sim.api.request(
        accounts.AccountInstruments(sim.account, params={"instruments": "EUR_USD,USD_JPY"})
    )

    # Then
    by_name = {i["name"]: i for i in response["instruments"]}
    for instrument in by_name.values():
        check(instrument, INSTRUMENT, "instrument")
    assert (by_name["EUR_USD"]["pipLocation"], by_name["EUR_USD"]["displayPrecision"]) == (-4, 5)
    assert (by_name["USD_JPY"]["pipLocation"], by_name["USD_JPY"]["displayPrecision"]) == (-2, 3)
    assert by_name["USD_JPY"]["minimumTrailingStopDistance"] == "0.050"


def test_account_instruments_lists_the_metals_and_crypto_cfds_with_oandas_figures(sim):
    # When
    response = sim.api.request(
        accounts.AccountInstruments(sim.account, params={"instruments": "XAU_USD,XAG_USD,BTC_USD"})
    )
    everything = sim.api.request(accounts.AccountInstruments(sim.account))

    # Then each is described with OANDA's fields and its own type, precision, size and margin
    by_name = {i["name"]: i for i in response["instruments"]}
    for instrument in by_name.values():
        check(instrument, INSTRUMENT, "instrument")
    gold, silver, bitcoin = by_name["XAU_USD"], by_name["XAG_USD"], by_name["BTC_USD"]
    assert (gold["type"], gold["pipLocation"], gold["displayPrecision"]) == ("METAL", -2, 3)
    assert (gold["minimumTradeSize"], gold["marginRate"]) == ("1", "0.05")
    assert (silver["type"], silver["pipLocation"], silver["displayPrecision"]) == ("METAL", -4, 5)
    assert (bitcoin["type"], bitcoin["pipLocation"], bitcoin["displayPrecision"]) == ("CFD", 0, 1)
    assert (bitcoin["tradeUnitsPrecision"], bitcoin["minimumTradeSize"]) == (2, "0.01")
    assert (bitcoin["marginRate"], bitcoin["tags"]) == (
        "0.5",
        [{"type": "ASSET_CLASS", "name": "CFD"}],
    )
    names = [i["name"] for i in everything["instruments"]]
    assert {"XAU_USD", "XAG_USD", "BTC_USD", "ETH_USD", "EUR_USD"} <= set(names)
    assert len(names) == len(set(names)) == 32


def test_the_metals_and_crypto_cfds_are_priced_and_an_unknown_instrument_is_refused(sim):
    # When
    response = sim.api.request(
        pricing.PricingInfo(sim.account, params={"instruments": "XAU_USD,XAG_USD,BTC_USD,ETH_USD"})
    )

    # Then each has a price at its own precision, converted 1:1 into the USD account
    prices = {p["instrument"]: p for p in response["prices"]}
    assert sorted(prices) == ["BTC_USD", "ETH_USD", "XAG_USD", "XAU_USD"]
    assert len(prices["XAU_USD"]["bids"][0]["price"].split(".")[1]) == 3
    assert len(prices["BTC_USD"]["bids"][0]["price"].split(".")[1]) == 1
    assert all(p["tradeable"] for p in prices.values())
    assert prices["BTC_USD"]["quoteHomeConversionFactors"]["positiveUnits"] == "1.0000000000"
    with pytest.raises(V20Error) as error:
        sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": "LTC_USD"}))
    assert error.value.code == 400


def test_every_pair_the_demo_needs_is_offered(sim):
    # When
    response = sim.api.request(accounts.AccountInstruments(sim.account))

    # Then
    names = {i["name"] for i in response["instruments"]}
    wanted = {
        "EUR_USD",
        "GBP_USD",
        "USD_JPY",
        "EUR_GBP",
        "AUD_USD",
        "USD_CHF",
        "USD_CAD",
        "EUR_JPY",
    }
    assert wanted <= names


def test_a_wrong_token_or_account_is_answered_with_401(sim):
    # Given a client with the wrong token
    register_environment(sim.url, "sim-wrong-token")
    stranger = oandapyV20.API(access_token="nope", environment="sim-wrong-token")

    # When / Then
    with pytest.raises(V20Error) as wrong_token:
        stranger.request(accounts.AccountList())
    assert wrong_token.value.code == 401
    assert "authorization" in json.loads(wrong_token.value.msg)["errorMessage"].lower()
    with pytest.raises(V20Error) as wrong_account:
        sim.api.request(accounts.AccountSummary("101-001-9999999-999"))
    assert wrong_account.value.code == 401


def test_m1_candles_replay_the_real_minutes_and_end_with_the_forming_candle(sim):
    # Given the clock 30 seconds into 09:00
    sim.advance(30)

    # When
    response = sim.api.request(
        instruments.InstrumentsCandles("EUR_USD", params={"granularity": "M1", "count": 3})
    )

    # Then the last candle is 09:00, forming, and the earlier two are the file's minutes
    candles = response["candles"]
    for candle in candles:
        check_candle(candle)
    assert [c["time"][:19] for c in candles] == [
        "2025-07-24T08:58:00",
        "2025-07-24T08:59:00",
        "2025-07-24T09:00:00",
    ]
    assert [c["complete"] for c in candles] == [True, True, False]
    source = json.loads(DATA_FILE.read_text())
    by_time = {row["time"][:19]: row for row in source}
    real = by_time["2025-07-24T08:59:00"]
    assert Decimal(candles[1]["mid"]["o"]) == Decimal(str(real["open"]))
    assert Decimal(candles[1]["mid"]["c"]) == Decimal(str(real["close"]))
    assert response["instrument"] == "EUR_USD" and response["granularity"] == "M1"


def test_no_candle_is_served_from_the_simulated_future(sim):
    # When asking for minutes after the clock, in three ways
    until_later = sim.api.request(
        instruments.InstrumentsCandles(
            "EUR_USD", params={"granularity": "M1", "to": "2025-07-24T10:00:00Z", "count": 3}
        )
    )
    from_later = sim.api.request(
        instruments.InstrumentsCandles(
            "EUR_USD", params={"granularity": "M1", "from": "2025-07-24T09:30:00Z"}
        )
    )
    response = sim.api.request(
        instruments.InstrumentsCandles(
            "EUR_USD", params={"granularity": "M1", "from": "2025-07-24T08:55:00Z", "count": 50}
        )
    )

    # Then the clock (09:00) bounds everything
    assert [c["time"][11:16] for c in until_later["candles"]] == ["08:58", "08:59", "09:00"]
    assert from_later["candles"] == []
    assert all(
        parse_time(c["time"]) <= parse_time("2025-07-24T09:00:00Z") for c in response["candles"]
    )


@pytest.mark.parametrize("granularity", ["S30", "M5", "M15", "H1", "H4", "D"])
def test_coarser_granularities_aggregate_the_minutes(sim, granularity):
    # When
    response = sim.api.request(
        instruments.InstrumentsCandles(
            "EUR_USD", params={"granularity": granularity, "count": 5, "price": "MBA"}
        )
    )

    # Then every candle has mid, bid and ask with high >= open, close >= low
    assert response["candles"], granularity
    for candle in response["candles"]:
        check_candle(candle)
        for key in ("mid", "bid", "ask"):
            o, h, low, c = (Decimal(candle[key][k]) for k in "ohlc")
            assert h >= max(o, c) and low <= min(o, c)
        assert Decimal(candle["bid"]["c"]) < Decimal(candle["ask"]["c"])
    assert response["candles"][-1]["complete"] is False


def test_daily_candles_start_at_five_pm_new_york(sim):
    # When
    response = sim.api.request(
        instruments.InstrumentsCandles("EUR_USD", params={"granularity": "D", "count": 2})
    )

    # Then in July (EDT) 17:00 New York is 21:00 UTC
    assert response["candles"][-1]["time"].startswith("2025-07-23T21:00:00")


def test_a_from_to_range_is_half_open_and_selects_by_time(sim):
    # When
    response = sim.api.request(
        instruments.InstrumentsCandles(
            "EUR_USD",
            params={
                "granularity": "M5",
                "from": "2025-07-24T08:00:00Z",
                "to": "2025-07-24T08:30:00Z",
                "price": "B",
            },
        )
    )

    # Then
    times = [c["time"][11:16] for c in response["candles"]]
    assert times == ["08:00", "08:05", "08:10", "08:15", "08:20", "08:25"]
    assert all("bid" in c and "mid" not in c for c in response["candles"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"granularity": "M1", "count": 5001}, "Maximum value for 'count' exceeded"),
        ({"granularity": "M7"}, "Invalid value specified for 'granularity'"),
        ({"granularity": "M1", "price": "X"}, "Invalid value specified for 'price'"),
        ({"granularity": "M1", "from": "yesterday"}, "Invalid value specified for 'from'"),
        (
            {"granularity": "M1", "from": "2025-07-20T00:00:00Z", "to": "2025-07-24T08:00:00Z"},
            "Maximum value for 'count' exceeded",
        ),
    ],
)
def test_bad_candle_parameters_are_answered_with_400(sim, params, message):
    # When
    with pytest.raises(V20Error) as error:
        sim.api.request(instruments.InstrumentsCandles("EUR_USD", params=params))

    # Then
    assert error.value.code == 400
    assert json.loads(error.value.msg)["errorMessage"].startswith(message)


def test_pricing_shows_bid_below_ask_with_home_conversions(sim):
    # When
    response = sim.api.request(
        pricing.PricingInfo(
            sim.account,
            params={"instruments": "EUR_USD,USD_JPY,EUR_GBP", "includeHomeConversions": True},
        )
    )

    # Then
    assert len(response["prices"]) == 3
    for price in response["prices"]:
        check_price(price)
        assert price["tradeable"] is True
        assert Decimal(price["bids"][0]["price"]) < Decimal(price["asks"][0]["price"])
        assert Decimal(price["closeoutBid"]) < Decimal(price["bids"][0]["price"])
    jpy = next(p for p in response["prices"] if p["instrument"] == "USD_JPY")
    assert len(jpy["bids"][0]["price"].split(".")[1]) == 3
    conversions = {c["currency"]: c for c in response["homeConversions"]}
    assert conversions["USD"]["accountGain"].startswith("1.")


def test_pricing_of_an_unknown_instrument_is_a_400(sim):
    with pytest.raises(V20Error) as error:
        sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": "XAU_XYZ"}))
    assert error.value.code == 400


def test_the_price_follows_the_real_minute_open_to_close(sim):
    # Given the 09:00 minute of the file
    source = json.loads(DATA_FILE.read_text())
    minute = next(r for r in source if r["time"].startswith("2025-07-24T09:00"))

    # When reading the price at the start of the minute and at its last second
    at_open = sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": "EUR_USD"}))
    sim.advance(59.999)
    at_close = sim.api.request(pricing.PricingInfo(sim.account, params={"instruments": "EUR_USD"}))

    # Then the mid is the candle's open, then its close (1.4 pip spread: 7 pipettes each side)
    def mid(response):
        price = response["prices"][0]
        return (Decimal(price["bids"][0]["price"]) + Decimal(price["asks"][0]["price"])) / 2

    assert mid(at_open) == Decimal(str(minute["open"]))
    assert mid(at_close) == Decimal(str(minute["close"]))


def test_the_candles_factory_of_oandapyv20_downloads_history_in_chunks(sim):
    # Given the library's history helper, which splits a range into count-sized requests
    from oandapyV20.contrib.factories import InstrumentsCandlesFactory

    params = {"granularity": "M1", "count": 200, "from": "2025-07-23T21:00:00Z"}

    # When
    candles = []
    for request in InstrumentsCandlesFactory("EUR_USD", params=params):
        candles.extend(sim.api.request(request)["candles"])

    # Then every minute up to the clock arrives once, in order
    times = [c["time"] for c in candles]
    assert times == sorted(set(times))
    assert times[0] >= "2025-07-23T21:00:00" and times[-1].startswith("2025-07-24T09:00")
    assert len(times) > 600


def test_unix_datetime_format_is_honoured_when_asked_for(sim):
    # Given a client that asks for UNIX times, as oandapyV20 allows through its headers
    from oandasim.client import sim_api

    api = sim_api(sim.url, "sim-token", name="sim-unix")
    api.client.headers["Accept-Datetime-Format"] = "UNIX"

    # When
    response = api.request(pricing.PricingInfo(sim.account, params={"instruments": "EUR_USD"}))

    # Then
    assert response["time"] == f"{parse_time('2025-07-24T09:00:00Z'):.9f}"
    assert "T" not in response["prices"][0]["time"]
