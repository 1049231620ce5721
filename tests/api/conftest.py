"""Users of each role, clients holding their tokens, and a simulator for broker actions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES

PASSWORD = "correct horse battery staple"
ROLES = ("viewer", "operator", "admin")
SIM_TOKEN = "api-test-token"
SIM_ACCOUNT = "101-001-0000000-009"


@pytest.fixture(autouse=True)
def empty_cache(redis_url: str) -> Iterator[None]:
    """Throttle counts, lockouts and the config generation start from nothing in every test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def make_user(role: str | None, name: str | None = None) -> User:
    user = User.objects.create_user(username=name or f"{role or 'nobody'}-user", password=PASSWORD)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return user


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def users(db: Any) -> dict[str, User]:
    return {role: make_user(role) for role in ROLES}


@pytest.fixture
def as_role(users: dict[str, User]) -> Callable[[str | None], APIClient]:
    """A client authenticated with a JWT of the given role (None: anonymous)."""

    def build(role: str | None) -> APIClient:
        return client_for(users[role] if role else None)

    return build


@pytest.fixture
def operator(as_role: Callable[[str | None], APIClient]) -> APIClient:
    return as_role("operator")


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    # Thursday morning in the bundled EUR/USD minutes: the market is open.
    with SimulatorProcess(
        token=SIM_TOKEN,
        account=SIM_ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}"),
            *("--start", "2025-07-24T09:00:00Z", "--paused", "--rate-limit", "0"),
        ],
    ) as process:
        yield process


@pytest.fixture
def broker(simulator: SimulatorProcess, settings: Any) -> Iterator[SimulatorProcess]:
    """Point the trading services at the simulator, with a fresh per-thread client."""
    from trading import execution

    settings.OANDA_API_URL = simulator.base_url
    settings.OANDA_TOKEN = SIM_TOKEN
    settings.OANDA_ACCOUNT_ID = SIM_ACCOUNT
    execution._clients.__dict__.clear()
    yield simulator
    execution._clients.__dict__.clear()


@pytest.fixture
def open_trade(broker: SimulatorProcess, db: Any) -> Iterator[Any]:
    """A 1000-unit EUR_USD buy opened at the simulator and recorded through the ledger."""
    from marketdata import oanda
    from trading.execution import broker_client
    from trading.ledger import response_transactions_apply
    from trading.models import Trade

    client = broker_client()
    order = {"type": "MARKET", "instrument": "EUR_USD", "units": "1000"}
    response = client.request(oanda.OrderCreate(client.account_id, data={"order": order}))
    response_transactions_apply(client.account_id, response)
    yield Trade.objects.get(state=Trade.State.OPEN, pair_id="EUR_USD")
    # The simulator outlives the test: leave its account flat for the next one.
    for wire in client.request(oanda.OpenTrades(client.account_id)).get("trades", []):
        client.request(oanda.TradeClose(client.account_id, str(wire["id"]), data={"units": "ALL"}))
