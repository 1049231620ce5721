"""The pricing and transactions streams: snapshots, heartbeats, termination and stream faults."""

from __future__ import annotations

import queue
import threading
import time

import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.transactions as transactions
import pytest
import requests
from oandapyV20.exceptions import StreamTerminated, V20Error

from tests.oandasim.sim_schemas import (
    HEARTBEAT,
    TRANSACTION_HEARTBEAT,
    check,
    check_price,
    check_transaction,
)


def _collect(api, endpoint, sink: queue.Queue, errors: queue.Queue) -> threading.Thread:
    """Read a stream on its own thread (and its own API: requests sessions are not thread-safe)."""

    def run() -> None:
        try:
            for message in api.request(endpoint):
                sink.put(message)
            errors.put("ended")
        except StreamTerminated:
            errors.put("terminated")
        except Exception as error:
            errors.put(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_pricing_stream_sends_a_snapshot_then_prices_and_heartbeats(start_sim):
    # Given a clock running at 60x
    sim = start_sim("--speed", "60", paused=False)
    endpoint = pricing.PricingStream(sim.account, params={"instruments": "EUR_USD,USD_JPY"})

    # When
    messages = []
    for message in sim.api.request(endpoint):
        messages.append(message)
        if len(messages) >= 40:
            with pytest.raises(StreamTerminated):
                endpoint.terminate("enough")
            break

    # Then
    assert {m["instrument"] for m in messages[:2]} == {"EUR_USD", "USD_JPY"}
    prices = [m for m in messages if m["type"] == "PRICE"]
    heartbeats = [m for m in messages if m["type"] == "HEARTBEAT"]
    assert len(prices) > 10 and heartbeats
    for price in prices:
        check_price(price)
    for heartbeat in heartbeats:
        check(heartbeat, HEARTBEAT, "heartbeat")
    eur_times = [m["time"] for m in prices if m["instrument"] == "EUR_USD"]
    assert eur_times == sorted(eur_times)


def test_a_paused_market_streams_only_its_snapshot_and_heartbeats(sim):
    endpoint = pricing.PricingStream(sim.account, params={"instruments": "EUR_USD"})
    messages = []
    for message in sim.api.request(endpoint):
        messages.append(message)
        if len(messages) == 4:
            break
    assert [m["type"] for m in messages] == ["PRICE", "HEARTBEAT", "HEARTBEAT", "HEARTBEAT"]


def test_with_stream_unchanged_every_batch_carries_every_price_and_the_stats_count_them(
    start_sim,
):
    # Given a paused clock (prices never change) and --stream-unchanged, as bench/load.py runs it
    sim = start_sim("--stream-unchanged")
    endpoint = pricing.PricingStream(sim.account, params={"instruments": "EUR_USD,USD_JPY"})

    # When 40 prices are read
    prices = []
    for message in sim.api.request(endpoint):
        if message["type"] == "PRICE":
            prices.append(message)
        if len(prices) == 40:
            with pytest.raises(StreamTerminated):
                endpoint.terminate("enough")
            break
    stats = sim.control("stats")

    # Then both pairs came in every batch although neither price moved, and the simulator counted
    # every price it sent (a batch or two may have left after the client stopped reading)
    assert [p["instrument"] for p in prices] == ["EUR_USD", "USD_JPY"] * 20
    assert len({(p["bids"][0]["price"], p["asks"][0]["price"]) for p in prices}) == 2
    assert stats["prices_sent"] == 2 * stats["price_batches"] >= 40
    assert stats["requests"] == 1
    assert stats["clock"]["paused"] is True


def test_a_stream_for_an_unknown_instrument_fails_on_first_read(sim):
    generator = sim.api.request(pricing.PricingStream(sim.account, params={"instruments": "NOPE"}))
    with pytest.raises(V20Error) as error:
        next(iter(generator))
    assert error.value.code == 400


def test_the_transactions_stream_carries_transactions_and_heartbeats_with_the_last_id(sim):
    # Given a transactions stream on its own thread
    sink: queue.Queue = queue.Queue()
    errors: queue.Queue = queue.Queue()
    reader = sim.process.api(name="sim-tx-stream")
    endpoint = transactions.TransactionsStream(sim.account)
    _collect(reader, endpoint, sink, errors)
    first = sink.get(timeout=5)
    assert first["type"] == "HEARTBEAT"

    # When an order fills
    response = sim.market("EUR_USD", 100)

    # Then the stream delivers the order and its fill, then heartbeats name the last id
    seen = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        message = sink.get(timeout=5)
        seen.append(message)
        if (
            message["type"] == "HEARTBEAT"
            and message["lastTransactionID"] == (response["lastTransactionID"])
        ):
            break
    kinds = [m["type"] for m in seen if m["type"] != "HEARTBEAT"]
    assert kinds == ["MARKET_ORDER", "ORDER_FILL"]
    for message in seen:
        if message["type"] == "HEARTBEAT":
            check(message, TRANSACTION_HEARTBEAT, "transaction heartbeat")
        else:
            check_transaction(message)
    # terminate() must run on the reading thread, so end this one from the server side.
    sim.control("fault", {"stream": "transactions", "action": "end"})
    assert errors.get(timeout=5) == "ended"


def test_an_abrupt_stream_close_surfaces_as_a_chunked_encoding_error(sim):
    sink: queue.Queue = queue.Queue()
    errors: queue.Queue = queue.Queue()
    reader = sim.process.api(name="sim-drop")
    _collect(
        reader, pricing.PricingStream(sim.account, params={"instruments": "EUR_USD"}), sink, errors
    )
    sink.get(timeout=5)

    sim.control("fault", {"stream": "pricing", "action": "drop"})

    error = errors.get(timeout=5)
    assert isinstance(error, requests.exceptions.ChunkedEncodingError)


def test_a_clean_stream_end_just_stops_the_loop(sim):
    sink: queue.Queue = queue.Queue()
    errors: queue.Queue = queue.Queue()
    reader = sim.process.api(name="sim-end")
    _collect(reader, transactions.TransactionsStream(sim.account), sink, errors)
    sink.get(timeout=5)

    sim.control("fault", {"stream": "transactions", "action": "end"})

    assert errors.get(timeout=5) == "ended"


def test_a_silent_stream_sends_no_heartbeats_and_the_client_times_out(sim):
    # Given a client whose read timeout (1 s) is shorter than the silence
    sim.control("fault", {"stream": "pricing", "action": "silence", "seconds": 30})
    reader = sim.process.api(name="sim-silent", request_params={"timeout": (2, 1)})
    sink: queue.Queue = queue.Queue()
    errors: queue.Queue = queue.Queue()

    # When
    _collect(
        reader, pricing.PricingStream(sim.account, params={"instruments": "EUR_USD"}), sink, errors
    )

    # Then nothing arrives, not even the snapshot, and the client gives up
    error = errors.get(timeout=10)
    assert isinstance(error, requests.exceptions.ConnectionError)
    assert sink.empty()


def test_a_twenty_first_stream_is_refused_with_429(sim):
    # Given twenty open streams
    import http.client

    held = []
    for _ in range(20):
        connection = http.client.HTTPConnection("127.0.0.1", sim.process.port, timeout=5)
        connection.request(
            "GET",
            f"/v3/accounts/{sim.account}/transactions/stream",
            headers={"Authorization": "Bearer sim-token"},
        )
        assert connection.getresponse().status == 200
        held.append(connection)

    # When / Then
    generator = sim.api.request(transactions.TransactionsStream(sim.account))
    with pytest.raises(V20Error) as error:
        next(iter(generator))
    assert error.value.code == 429
    for connection in held:
        connection.close()
