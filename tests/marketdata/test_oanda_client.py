"""The OANDA client wrapper against the real oandapyV20 talking to the project's simulator."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import oandapyV20.endpoints.accounts as accounts
import oandapyV20.endpoints.orders as orders
import oandapyV20.endpoints.pricing as pricing
import oandapyV20.endpoints.trades as trades
import pytest
import requests

from marketdata.oanda import (
    OandaAuthError,
    OandaClient,
    OandaConfig,
    OandaConnectionError,
    OandaRejected,
    OandaUnavailable,
    RateLimiter,
)
from oandasim.client import SimulatorProcess

TOKEN = "client-test-token-5f3a"
ACCOUNT = "101-001-0000000-001"


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=["--start", "2025-07-24T09:00:00Z", "--paused", "--rate-limit", "0"],
    ) as process:
        yield process


@pytest.fixture
def faults(simulator: SimulatorProcess) -> Iterator[Any]:
    def inject(**payload: Any) -> dict[str, Any]:
        response = requests.post(
            f"{simulator.base_url}/__sim/fault",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    yield inject
    inject(clear=True)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(
    simulator: SimulatorProcess, sleeps: Sleeps | None = None, **changes: Any
) -> OandaClient:
    config = OandaConfig(
        token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url, read_timeout=10.0
    )
    return OandaClient(replace(config, **changes), sleep=sleeps if sleeps is not None else Sleeps())


def test_it_reads_the_account_from_the_simulator(simulator: SimulatorProcess) -> None:
    summary = client_for(simulator).request(accounts.AccountSummary(ACCOUNT))
    assert summary["account"]["id"] == ACCOUNT
    assert summary["account"]["currency"] == "USD"


def test_a_wrong_token_is_an_auth_error_with_the_brokers_message(
    simulator: SimulatorProcess,
) -> None:
    client = client_for(simulator, token="wrong")
    with pytest.raises(OandaAuthError) as error:
        client.request(accounts.AccountSummary(ACCOUNT))
    assert error.value.status == 401
    assert "authorization" in error.value.message.lower()


def test_a_429_burst_on_a_read_is_retried_with_backoff_until_it_succeeds(
    simulator: SimulatorProcess, faults: Any
) -> None:
    sleeps = Sleeps()
    faults(status=429, count=2)

    summary = client_for(simulator, sleeps).request(accounts.AccountSummary(ACCOUNT))

    assert summary["account"]["id"] == ACCOUNT
    assert len(sleeps) == 2
    assert all(0 <= delay <= 8.0 for delay in sleeps)


def test_a_read_gives_up_after_its_attempts_and_says_why(
    simulator: SimulatorProcess, faults: Any
) -> None:
    sleeps = Sleeps()
    faults(status=503, count=10)

    with pytest.raises(OandaUnavailable) as error:
        client_for(simulator, sleeps, max_attempts=3).request(accounts.AccountSummary(ACCOUNT))

    assert error.value.status == 503
    assert len(sleeps) == 2
    # Exactly three requests reached the broker: the other seven injected answers are unused.
    assert faults()["remaining"] == 7


def test_an_order_is_never_resent_after_a_503(simulator: SimulatorProcess, faults: Any) -> None:
    # Given a broker that answers the next request with 503
    sleeps = Sleeps()
    faults(status=503, count=1)
    client = client_for(simulator, sleeps)
    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "100"}}

    # When an order is sent
    with pytest.raises(OandaUnavailable):
        client.request(orders.OrderCreate(ACCOUNT, data=order))

    # Then it was sent once, not retried, and no trade exists
    assert sleeps == []
    assert client.request(trades.OpenTrades(ACCOUNT))["trades"] == []


def test_a_rejected_order_carries_the_brokers_error_code(simulator: SimulatorProcess) -> None:
    client = client_for(simulator)
    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "0"}}

    with pytest.raises(OandaRejected) as error:
        client.request(orders.OrderCreate(ACCOUNT, data=order))

    assert error.value.status == 400
    assert error.value.error_code == "UNITS_INVALID"
    assert "UNITS_INVALID" in str(error.value)


def test_a_broker_that_does_not_answer_is_a_connection_error() -> None:
    sleeps = Sleeps()
    config = OandaConfig(
        token=TOKEN,
        account_id=ACCOUNT,
        api_url="http://127.0.0.1:9",
        connect_timeout=1.0,
        max_attempts=2,
    )
    with pytest.raises(OandaConnectionError):
        OandaClient(config, sleep=sleeps).request(accounts.AccountSummary(ACCOUNT))
    assert len(sleeps) == 1


def test_the_token_never_appears_in_the_logs(
    simulator: SimulatorProcess, faults: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    faults(status=429, count=1)
    client = client_for(simulator)
    client.request(accounts.AccountSummary(ACCOUNT))
    with pytest.raises(OandaAuthError):
        client_for(simulator, token=TOKEN + "-bad").request(accounts.AccountSummary(ACCOUNT))
    assert "oanda_retry" in caplog.text
    assert TOKEN not in caplog.text


def test_the_price_stream_yields_the_brokers_messages(simulator: SimulatorProcess) -> None:
    client = client_for(simulator)
    stream = client.stream(
        pricing.PricingStream(ACCOUNT, params={"instruments": "EUR_USD"}), read_timeout=10
    )
    first = next(iter(stream))
    assert isinstance(first, dict)
    assert first["type"] == "PRICE"
    assert first["instrument"] == "EUR_USD"


def test_the_rate_limiter_spaces_requests_beyond_its_burst() -> None:
    now = [0.0]
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(10, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()

    assert sum(waited) == pytest.approx(0.4)
