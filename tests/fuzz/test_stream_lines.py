"""The streamer's handling of price-stream lines fed hypothesis-mutated OANDA PRICE and HEARTBEAT
messages (fields missing, junk, huge or non-finite numbers): a line is used or logged and
skipped, never an exception that would drop the stream. About 3 s.

(Lines that are not JSON at all are the simulator's ``inject`` fault in
tests/marketdata/test_streaming.py; this fuzzes what a JSON object may hold.)
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.oanda import BadLine
from marketdata.streaming import Streamer

PRICE: dict[str, Any] = {
    "type": "PRICE",
    "instrument": "EUR_USD",
    "time": "2026-01-06T14:00:01.123456789Z",
    "status": "tradeable",
    "tradeable": True,
    "bids": [{"price": "1.11914", "liquidity": 10000000}],
    "asks": [{"price": "1.11925", "liquidity": 10000000}],
    "closeoutBid": "1.11899",
    "closeoutAsk": "1.11940",
}
HEARTBEAT: dict[str, Any] = {"type": "HEARTBEAT", "time": "2026-01-06T14:00:05.000000000Z"}
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(
        ["", "abc", "NaN", "-1", "0", "9e999999", "-9e999999", "1e-999999", "EUR_USD", "\x00"]
    ),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "1e20"]),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["price", "liquidity"]), st.text(max_size=3), max_size=2),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        found.append((*prefix, key))
        if isinstance(inner, dict | list):
            found.extend(paths(inner, (*prefix, key)))
    return found


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = copy.deepcopy(draw(st.sampled_from([PRICE, HEARTBEAT])))
    for _ in range(draw(st.integers(1, 4))):
        if not message:
            break
        *parents, last = draw(st.sampled_from(paths(message)))
        holder: Any = message
        for step in parents:
            holder = holder[step]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[last]
        else:
            holder[last] = draw(JUNK)
    if draw(st.booleans()) and isinstance(message.get("bids"), list):
        # Both sides of the quote at once: numbers that are each fine but not together.
        extreme = st.sampled_from(["9e999999", "1e-999999", "1.1", "0.0000001", "999999999.9"])
        message["bids"] = [{"price": draw(extreme)}]
        message["asks"] = [{"price": draw(extreme)}]
    return message


@pytest.mark.django_db
@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(messages(), min_size=1, max_size=5))
def test_any_price_stream_object_is_used_or_logged_never_an_exception(
    timescaledb: None, redis_url: str, lines: list[dict[str, Any]]
) -> None:
    streamer = Streamer(pairs=["EUR_USD"], stream_transactions=False)
    ending: list[dict[str, Any] | BadLine] = [BadLine("{", "not JSON")]
    for line in [*lines, *ending]:
        assert streamer._on_price_message(line) in (True, False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bid", "ask"), [("9e999999", "9e999999"), ("1e-999999", "1e-999999"), ("1.1", "9e999999")]
)
def test_a_price_with_extreme_exponents_is_logged_and_skipped(
    timescaledb: None, redis_url: str, bid: str, ask: str
) -> None:
    streamer = Streamer(pairs=["EUR_USD"], stream_transactions=False)
    line = dict(PRICE, bids=[{"price": bid}], asks=[{"price": ask}])

    assert streamer._on_price_message(line) is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "line",
    [
        {"type": "HEARTBEAT", "lastTransactionID": float("inf")},  # JSON 1e400 reads as inf
        {"type": "HEARTBEAT", "lastTransactionID": float("nan")},
        {"type": "ORDER_CANCEL", "id": float("inf"), "time": "2026-01-06T14:00:00Z"},
    ],
)
def test_a_transaction_line_with_an_infinite_id_is_skipped(
    timescaledb: None, line: dict[str, Any]
) -> None:
    streamer = Streamer(pairs=["EUR_USD"])

    assert streamer._on_transaction_message(None, "101-001", 5, line) == 5  # type: ignore[arg-type]
