"""Prices and amounts from outside input are read in ASCII digits only (septrader/decimals.py):
the helper itself, and the trading services that read units and stops past the API's checks (the
API, the settings and candle ingestion have their own tests, in tests/api, tests/septrader and
tests/marketdata)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest

from septrader.decimals import NonAsciiNumberError, parse_decimal
from trading.models import Trade
from trading.services import TradingError, trade_amend, trade_close

# 1.1 in Arabic-Indic, Extended Arabic-Indic, Devanagari and full-width digits: Decimal() reads
# every one of them.
FOREIGN = ["\u0661.\u0661", "\u06f1.\u06f1", "\u0967.\u0967", "\uff11.\uff11"]


@pytest.mark.parametrize("text", FOREIGN)
def test_digits_of_another_script_are_refused_though_decimal_reads_them(text: str) -> None:
    assert Decimal(text) == Decimal("1.1")

    with pytest.raises(NonAsciiNumberError, match="expected a number written with the ASCII"):
        parse_decimal(text)


def test_a_non_ascii_number_is_an_invalid_operation_like_any_unreadable_text() -> None:
    # Callers keep their `except InvalidOperation` when they switch to the helper.
    with pytest.raises(InvalidOperation):
        parse_decimal("\u0661")


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("1.17052", Decimal("1.17052")),
        (" 2 ", Decimal(2)),
        ("1e3", Decimal(1000)),
        (1.1705, Decimal("1.1705")),
        (400, Decimal(400)),
        (Decimal("0.5"), Decimal("0.5")),
    ],
)
def test_ascii_text_and_numbers_read_as_decimal_reads_them(value: Any, number: Decimal) -> None:
    assert parse_decimal(value) == number


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, "abc"])
def test_what_is_not_a_number_is_an_invalid_operation(value: Any) -> None:
    with pytest.raises(InvalidOperation):
        parse_decimal(value)


@pytest.fixture
def trade(db: Any) -> Trade:
    return Trade.objects.create(
        account_id="acct",
        broker_trade_id="42",
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.17300"),
        opened_at=datetime(2025, 7, 24, 9, 0, tzinfo=UTC),
        state=Trade.State.OPEN,
    )


def test_closing_units_in_another_script_is_refused_before_the_broker_is_asked(
    trade: Trade,
) -> None:
    # "100" in Arabic-Indic digits; no broker is configured, so reaching it would fail otherwise
    with pytest.raises(TradingError, match=r"units=.* is not valid") as error:
        trade_close(trade_id=trade.pk, actor="ops", units="\u0661\u0660\u0660")
    assert error.value.field == "units"


@pytest.mark.parametrize("name", ["stop_loss", "take_profit"])
def test_stops_in_another_script_are_refused_before_the_broker_is_asked(
    trade: Trade, name: str
) -> None:
    with pytest.raises(TradingError, match=rf"{name}=.* is not valid") as error:
        stops: dict[str, Any] = {name: "\u0661.\u0661"}
        trade_amend(trade_id=trade.pk, actor="ops", **stops)
    assert error.value.field == name
