"""Pairs as the broker describes them: `instruments sync` against the simulator, through the real
oandapyV20 client, and the symbol checks that keep a pair's name to OANDA's shape."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from marketdata.models import PAIR_SYMBOL_PATTERN, Pair, pair_symbol_problem
from marketdata.oanda import OandaClient
from marketdata.services import instruments_sync
from oandasim.client import SimulatorProcess
from septrader.models import AuditLog

TOKEN = "instruments-test-token"
ACCOUNT = "101-001-0000000-011"
# The figures compared as a tuple; the financing object is checked on its own.
BROKER_FIGURES = tuple(name for name in Pair.BROKER_FIGURES if name != "financing")


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--start", "2025-07-24T09:00:00Z", "--paused", "--rate-limit", "0"),
            *("--financing", "BTC_USD=-0.1000:0.0200", "--financing", "EUR_USD=-0.0300:0.0100"),
        ],
    ) as process:
        yield process


@pytest.fixture
def broker(simulator: SimulatorProcess, settings: Any) -> SimulatorProcess:
    """The settings point at the simulator, as `manage.py instruments sync` reads them."""
    settings.OANDA_API_URL = simulator.base_url
    settings.OANDA_TOKEN = TOKEN
    settings.OANDA_ACCOUNT_ID = ACCOUNT
    return simulator


def figures(symbol: str) -> tuple[Any, ...]:
    pair = Pair.objects.get(symbol=symbol)
    return tuple(getattr(pair, name) for name in BROKER_FIGURES)


def sync_command() -> str:
    out = StringIO()
    call_command("instruments", "sync", stdout=out, stderr=StringIO())
    return out.getvalue()


class FixedInstruments:
    """A client answering AccountInstruments with a given list (for payloads no broker sends)."""

    def __init__(self, instruments: list[Any]) -> None:
        self.instruments = instruments

    def account_instruments(self) -> list[Any]:
        return self.instruments


@pytest.mark.django_db
def test_instruments_sync_creates_metal_and_crypto_pairs_disabled_with_the_brokers_figures(
    broker: SimulatorProcess,
) -> None:
    # Given the 28 seeded FX pairs and no metal or crypto pair
    assert not Pair.objects.filter(symbol__in=["XAU_USD", "BTC_USD"]).exists()

    # When the operator runs the command
    output = sync_command()

    # Then gold, silver, bitcoin and ether are pairs, disabled and untrained, with OANDA's figures
    assert "created=4 (XAU_USD, XAG_USD, BTC_USD, ETH_USD)" in output
    gold, bitcoin = Pair.objects.get(symbol="XAU_USD"), Pair.objects.get(symbol="BTC_USD")
    assert (gold.enabled, gold.state, bitcoin.enabled, bitcoin.state) == (
        False,
        Pair.State.UNTRAINED,
        False,
        Pair.State.UNTRAINED,
    )
    assert figures("XAU_USD") == ("METAL", -2, 3, 0, Decimal(1), Decimal(100_000), Decimal("0.05"))
    assert figures("BTC_USD") == ("CFD", 0, 1, 2, Decimal("0.01"), Decimal(20), Decimal("0.5"))
    assert (bitcoin.base_currency, bitcoin.quote_currency, bitcoin.pip_size) == (
        "BTC",
        "USD",
        Decimal(1),
    )
    # And the seeded FX pairs take the simulator's margin rate instead of the seed's default
    assert figures("EUR_USD") == (
        "CURRENCY",
        -4,
        5,
        0,
        Decimal(1),
        Decimal(100_000_000),
        Decimal("0.02"),
    )
    # And each pair keeps the broker's financing: the rates, and the days each weekday's
    # rollover charges (crypto every day one, FX three on Wednesday and none at the weekend)
    days = {
        symbol: [item["daysCharged"] for item in financing["financingDaysOfWeek"]]
        for symbol, financing in Pair.objects.filter(
            symbol__in=["BTC_USD", "EUR_USD", "XAU_USD"]
        ).values_list("symbol", "financing")
    }
    assert days == {
        "BTC_USD": [1, 1, 1, 1, 1, 1, 1],
        "EUR_USD": [1, 1, 3, 1, 1, 0, 0],
        "XAU_USD": [1, 1, 3, 1, 1, 0, 0],
    }
    rates = Pair.objects.filter(symbol__in=["BTC_USD", "EUR_USD", "XAU_USD"]).order_by("symbol")
    assert [(pair.financing["longRate"], pair.financing["shortRate"]) for pair in rates] == [
        ("-0.1000", "0.0200"),
        ("-0.0300", "0.0100"),
        ("0", "0"),
    ]
    assert Pair.objects.count() == 32
    entry = AuditLog.objects.get(action="instruments.sync")
    assert entry.actor == "system:manage.py"
    assert entry.details["created"] == ["XAU_USD", "XAG_USD", "BTC_USD", "ETH_USD"]


@pytest.mark.django_db
def test_a_second_sync_updates_only_a_changed_fx_pair_and_keeps_the_operators_settings(
    broker: SimulatorProcess,
) -> None:
    # Given a first sync, then EUR/USD trading with figures that differ from the broker's
    client = OandaClient()
    instruments_sync(client=client, actor="first")
    Pair.objects.filter(symbol="EUR_USD").update(
        enabled=True,
        state=Pair.State.TRADING,
        margin_rate=Decimal("0.0333"),
        minimum_trade_size=Decimal(1000),
    )
    # And a pair the broker no longer lists
    Pair.objects.filter(symbol="XAG_USD").update(symbol="XPT_USD")

    # When the command runs again
    output = sync_command()

    # Then EUR/USD gets the broker's figures back and stays enabled and trading
    assert "updated=1 (EUR_USD)" in output
    assert "minimum_trade_size 1000.00 -> 1.00" in output
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    assert (eur_usd.margin_rate, eur_usd.minimum_trade_size) == (Decimal("0.02"), Decimal(1))
    assert (eur_usd.enabled, eur_usd.state) == (True, Pair.State.TRADING)
    # And silver is created again while the unlisted pair is neither disabled nor deleted
    assert "created=1 (XAG_USD)" in output
    assert Pair.objects.filter(symbol="XPT_USD").exists()

    # When it runs a third time, nothing changes
    result = instruments_sync(client=client, actor="third")
    assert (result.created, result.updated, len(result.unchanged)) == ([], {}, 32)


@pytest.mark.django_db
def test_an_instrument_a_pair_cannot_hold_is_skipped_with_the_field_value_and_expectation() -> None:
    # Given a payload with a name longer than the symbol column, a bad name, a figure with more
    # precision than the column and a good instrument
    good = {
        "name": "XAU_USD",
        "type": "METAL",
        "pipLocation": -2,
        "displayPrecision": 3,
        "tradeUnitsPrecision": 0,
        "minimumTradeSize": "1",
        "maximumOrderUnits": "100000",
        "marginRate": "0.05",
    }
    payload = [
        {**good, "name": "DE30_EUR", "type": "CFD"},
        {**good, "name": "xau/usd"},
        {**good, "name": "XAG_USD", "minimumTradeSize": "0.001"},
        {**good, "name": "XPT_USD", "type": "BOND"},
        {**good, "name": "XPD_USD", "financing": {"longRate": "-3%", "shortRate": "0.01"}},
        {
            **good,
            "name": "XCU_USD",
            "financing": {
                "longRate": "-0.03",
                "shortRate": "0.01",
                "financingDaysOfWeek": [{"dayOfWeek": "FUNDAY", "daysCharged": 1}],
            },
        },
        "not an object",
        good,
    ]

    # When it is synced
    result = instruments_sync(client=FixedInstruments(payload), actor="test")  # type: ignore[arg-type]

    # Then only the good one is stored, and each refusal says what was wrong
    assert result.created == ["XAU_USD"]
    assert "symbol='DE30_EUR' has 8 characters; expected at most 7" in result.skipped["DE30_EUR"]
    assert "symbol='xau/usd' does not match ^[A-Z0-9]+_[A-Z0-9]+$" in result.skipped["xau/usd"]
    assert "XAG_USD minimumTradeSize='0.001'" in result.skipped["XAG_USD"]
    assert "at most 2 decimal places" in result.skipped["XAG_USD"]
    assert "XPT_USD type='BOND': expected one of CURRENCY, METAL, CFD" in result.skipped["XPT_USD"]
    assert (
        "XPD_USD financing.longRate='-3%': expected an annual rate as a decimal string between "
        "-1 and 1" in result.skipped["XPD_USD"]
    )
    assert (
        "XCU_USD financing.financingDaysOfWeek item {'dayOfWeek': 'FUNDAY', 'daysCharged': 1}: "
        "expected a dayOfWeek (MONDAY, " in result.skipped["XCU_USD"]
    )
    assert len(result.skipped) == 7
    assert not Pair.objects.filter(symbol__in=["XAG_USD", "XPT_USD", "XPD_USD"]).exists()
    # And an instrument listed without financing keeps none
    assert Pair.objects.get(symbol="XAU_USD").financing == {}


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("EUR-USD", "symbol='EUR-USD' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("eur_usd", "symbol='eur_usd' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("EUR_US_D", "symbol='EUR_US_D' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("EUR_US\n", "symbol='EUR_US\\n' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("NAS100_USD", "symbol='NAS100_USD' has 10 characters; expected at most 7"),
    ],
)
def test_a_bad_symbol_is_refused_naming_the_field_the_value_and_the_pattern(
    symbol: str, message: str
) -> None:
    # When a pair with that symbol is validated
    with pytest.raises(ValidationError) as refused:
        Pair(symbol=symbol).clean_fields(exclude=["node"])

    # Then the error is on the symbol and says what was expected
    assert message in refused.value.message_dict["symbol"][0]


@pytest.mark.parametrize("symbol", ["EUR_USD", "XAU_USD", "BTC_USD", "XPT_USD"])
def test_oanda_names_of_letters_and_digits_around_one_underscore_are_accepted(symbol: str) -> None:
    Pair(symbol=symbol).clean_fields(exclude=["node"])


def test_an_index_name_with_digits_fits_the_pattern_and_is_refused_only_for_its_length() -> None:
    # The symbol columns hold 7 characters (the candle hypertable's included): DE30_EUR has the
    # right shape but is one too long.
    assert re.match(PAIR_SYMBOL_PATTERN, "DE30_EUR")
    assert pair_symbol_problem("DE30_EUR") == (
        "symbol='DE30_EUR' has 8 characters; expected at most 7, such as EUR_USD or XAU_USD."
    )
