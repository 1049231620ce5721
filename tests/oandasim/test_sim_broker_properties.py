"""Properties of the netting account under random order sequences, on the broker in-process."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from oandasim.broker import Broker
from oandasim.clock import SimClock
from oandasim.instruments import INSTRUMENTS
from oandasim.market import BUNDLED_DATA, Market, Series, load_candle_file
from oandasim.timeutil import parse_time

EUR_USD_MINUTES = load_candle_file(BUNDLED_DATA, INSTRUMENTS["EUR_USD"])


def _broker() -> Broker:
    series = {
        name: Series(
            instrument,
            instrument.default_spread_pips,
            EUR_USD_MINUTES if name == "EUR_USD" else None,
            history_floor=parse_time("2025-07-20T00:00:00Z"),
        )
        for name, instrument in INSTRUMENTS.items()
    }
    clock = SimClock(parse_time("2025-07-24T09:00:00Z"), paused=True)
    return Broker(market=Market(series), clock=clock, account_id="A")


steps = st.lists(
    st.tuples(
        st.sampled_from(["EUR_USD", "USD_JPY"]),
        st.integers(min_value=-5000, max_value=5000).filter(bool),
        st.integers(min_value=0, max_value=600),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_netting_keeps_one_side_per_pair_and_the_balance_equals_deposit_plus_realized(orders):
    # Given a fresh account
    broker = _broker()
    net: dict[str, int] = {}

    # When random market orders arrive at random moments
    for instrument, units, wait in orders:
        broker.clock.jump_to(broker.clock.now() + wait)
        status, body = broker.create_order(
            {"order": {"type": "MARKET", "instrument": instrument, "units": str(units)}}
        )
        assert status == 201
        if "orderFillTransaction" in body:
            net[instrument] = net.get(instrument, 0) + units

    # Then each pair holds trades on one side only, summing to the net of the filled orders
    for instrument, expected in net.items():
        held = [t.current_units for t in broker.open_trades() if t.instrument == instrument]
        assert sum(held) == expected
        assert all(u > 0 for u in held) or all(u < 0 for u in held)
    # And the ids are one sequence, and the balance is the deposit plus every fill's P&L
    ids = [int(t["id"]) for t in broker.transactions]
    assert ids == list(range(1, len(ids) + 1))
    realized = sum(
        (Decimal(t["pl"]) for t in broker.transactions if t["type"] == "ORDER_FILL"), Decimal(0)
    )
    assert broker.balance == Decimal("100000") + realized
