"""The ledger fed hypothesis-mutated OANDA transactions (fields missing or replaced with junk in
a realistic open / stop-loss / financing / close / cancel / reject sequence): it never raises, an
unreadable transaction is logged and skipped, and no Trade is ever made of nonsense.

About 10 s: 60 mutated sequences of eight transactions against the real database.
"""

from __future__ import annotations

import copy
import logging
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.models import PAIR_SYMBOL_PATTERN, Pair
from trading.ledger import transactions_apply
from trading.models import Order, Trade

ACCOUNT = "101-001-0000000-001"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
T = "2026-01-06T14:00:0{}.123456789Z"
BASE = {"accountID": ACCOUNT, "userID": 1, "batchID": "100"}


def sample_sequence() -> list[dict[str, Any]]:
    """A market buy with SL/TP on fill, a night's financing, the stop-loss fill, then a cancelled
    and a rejected order: the shapes in /work/shared/research/oanda-v20.md section 2.4."""
    opened = {
        "tradeID": "101",
        "units": "1000",
        "price": "1.10012",
        "halfSpreadCost": "0.05",
        "initialMarginRequired": "33.3",
        "clientExtensions": {"id": "sep-1-t"},
    }
    return [
        {
            **BASE,
            "id": "100",
            "time": T.format(0),
            "type": "MARKET_ORDER",
            "instrument": "EUR_USD",
            "units": "1000",
            "timeInForce": "FOK",
            "positionFill": "DEFAULT",
            "reason": "CLIENT_ORDER",
            "clientExtensions": {"id": "sep-1"},
        },
        {
            **BASE,
            "id": "101",
            "time": T.format(0),
            "type": "ORDER_FILL",
            "orderID": "100",
            "clientOrderID": "sep-1",
            "instrument": "EUR_USD",
            "units": "1000",
            "price": "1.10012",
            "reason": "MARKET_ORDER",
            "pl": "0.0000",
            "financing": "0.0000",
            "commission": "0.0000",
            "accountBalance": "100000.0000",
            "tradeOpened": opened,
        },
        {
            **BASE,
            "id": "102",
            "time": T.format(0),
            "type": "STOP_LOSS_ORDER",
            "tradeID": "101",
            "price": "1.09800",
            "timeInForce": "GTC",
            "triggerCondition": "DEFAULT",
            "reason": "ON_FILL",
            "orderFillTransactionID": "101",
        },
        {
            **BASE,
            "id": "103",
            "time": T.format(0),
            "type": "TAKE_PROFIT_ORDER",
            "tradeID": "101",
            "price": "1.10500",
            "timeInForce": "GTC",
            "reason": "ON_FILL",
        },
        {
            **BASE,
            "id": "104",
            "time": T.format(1),
            "type": "DAILY_FINANCING",
            "financing": "-0.1234",
            "accountBalance": "99999.8766",
            "positionFinancings": [
                {
                    "instrument": "EUR_USD",
                    "financing": "-0.1234",
                    "openTradeFinancings": [{"tradeID": "101", "financing": "-0.1234"}],
                }
            ],
        },
        {
            **BASE,
            "id": "105",
            "time": T.format(2),
            "type": "ORDER_FILL",
            "orderID": "102",
            "instrument": "EUR_USD",
            "units": "-1000",
            "price": "1.09800",
            "reason": "STOP_LOSS_ORDER",
            "pl": "-2.1200",
            "tradesClosed": [
                {
                    "tradeID": "101",
                    "units": "-1000",
                    "price": "1.09800",
                    "realizedPL": "-2.1200",
                    "financing": "-0.1234",
                }
            ],
        },
        {
            **BASE,
            "id": "106",
            "time": T.format(2),
            "type": "ORDER_CANCEL",
            "orderID": "103",
            "reason": "LINKED_TRADE_CLOSED",
        },
        {
            **BASE,
            "id": "107",
            "time": T.format(3),
            "type": "MARKET_ORDER_REJECT",
            "instrument": "EUR_USD",
            "units": "0",
            "rejectReason": "UNITS_INVALID",
            "clientExtensions": {"id": "sep-2"},
        },
    ]


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -1, 0, 10**40]),
    st.floats(),
    st.sampled_from(["", "NaN", "-Infinity", "1e999", "0", "abc", "eur_usd", "\x00", "101", "-1"]),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(
        st.sampled_from(["tradeID", "units", "price", "x"]), st.text(max_size=3), max_size=2
    ),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a transaction, nested objects and lists included."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        found.append((*prefix, key))
        if isinstance(inner, dict | list):
            found.extend(paths(inner, (*prefix, key)))
    return found


@st.composite
def mutated_sequences(draw: st.DrawFn) -> list[Any]:
    sequence = sample_sequence()
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(sequence) - 1))
        if draw(st.integers(0, 9)) == 0:
            sequence[index] = draw(JUNK)  # the whole transaction is junk
            continue
        transaction = sequence[index]
        if not isinstance(transaction, dict) or not transaction:
            continue
        *parents, last = draw(st.sampled_from(paths(transaction)))
        holder = transaction
        for step in parents:
            holder = holder[step]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[last]
        else:
            holder[last] = draw(JUNK)
    if draw(st.booleans()):
        sequence.append(copy.deepcopy(draw(st.sampled_from(sequence))))  # a duplicate delivery
    return sequence


def assert_sensible(trade: Trade) -> None:
    assert re.match(PAIR_SYMBOL_PATTERN, trade.pair_id), trade.pair_id
    for amount in (
        trade.initial_units,
        trade.current_units,
        trade.open_price,
        trade.realized_pl,
        trade.financing,
    ):
        assert isinstance(amount, Decimal) and amount.is_finite(), amount
    assert trade.initial_units != 0 and trade.open_price > 0
    assert trade.opened_at is not None and trade.broker_trade_id
    for price in (trade.stop_loss_price, trade.take_profit_price, trade.close_price):
        assert price is None or (price.is_finite() and price > 0), price
    if trade.state == Trade.State.CLOSED:
        assert trade.current_units == 0 and trade.closed_at is not None


@pytest.mark.django_db
@FUZZ
@given(sequence=mutated_sequences())
def test_mutated_broker_transactions_are_applied_or_skipped_never_crash(
    timescaledb: None, sequence: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    Trade.objects.all().delete()
    Order.objects.all().delete()
    from trading.models import BrokerTransaction

    BrokerTransaction.objects.all().delete()
    pairs = set(Pair.objects.values_list("symbol", flat=True))

    with caplog.at_level(logging.WARNING, logger="trading.ledger"):
        transactions_apply(account_id=ACCOUNT, transactions=sequence)

    for trade in Trade.objects.all():
        assert_sensible(trade)
    assert all(
        re.match(PAIR_SYMBOL_PATTERN, symbol)
        for symbol in set(Pair.objects.values_list("symbol", flat=True)) - pairs
    )


def test_the_unmutated_sequence_opens_and_closes_one_trade(timescaledb: None) -> None:
    transactions_apply(account_id=ACCOUNT, transactions=sample_sequence())

    trade = Trade.objects.get()
    assert_sensible(trade)
    assert (trade.state, trade.realized_pl, trade.financing) == (
        Trade.State.CLOSED,
        Decimal("-2.12"),
        Decimal("-0.2468"),
    )


def _with(index: int, **changes: Any) -> list[dict[str, Any]]:
    sequence = sample_sequence()
    sequence[index].update(changes)
    return sequence


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sequence",
    [
        _with(1, tradeOpened=True),  # was TypeError: 'bool' object is not subscriptable
        _with(1, tradeOpened={"units": "1000"}),  # was KeyError: 'tradeID'
        _with(1, instrument=""),  # made a Pair "" and a trade on it
        _with(1, tradeOpened={"tradeID": "101", "units": "0", "price": "1.1"}),  # a 0-unit trade
        _with(1, price="-1", tradeOpened={"tradeID": "101", "units": "1000"}),
        _with(1, tradeOpened={"tradeID": "101", "units": "1e40", "price": "1.1"}),  # DataError
        _with(4, positionFinancings=[None]),  # was AttributeError: 'NoneType' ... 'get'
        _with(5, tradesClosed=True),  # was TypeError: 'bool' object is not iterable
        _with(5, tradesClosed=[{"tradeID": "101", "realizedPL": "1e40"}]),
        _with(6, type=["ORDER_CANCEL"]),  # was TypeError: unhashable type: 'list'
        _with(7, rejectReason="\x00"),  # was DataError: unsupported Unicode escape sequence
        _with(2, price=float("nan")),  # was DataError: invalid input syntax for type json
        _with(3, id=2**63),  # was DataError: bigint out of range
        _with(3, id=float("inf")),  # was OverflowError
    ],
)
def test_a_transaction_the_fuzzer_found_crashing_the_ledger_is_skipped_alone(
    timescaledb: None, sequence: list[dict[str, Any]]
) -> None:
    applied = transactions_apply(account_id=ACCOUNT, transactions=sequence)

    # Only the broken transaction is skipped; the rest of its batch is applied
    assert applied == len(sequence) - 1
    for trade in Trade.objects.all():
        assert_sensible(trade)
    assert not Pair.objects.filter(symbol="").exists()
