"""The trading tests' broker: the project's OANDA simulator, reached through the real client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests

from marketdata.models import Pair
from marketdata.oanda import OandaClient, OandaConfig
from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES
from trading.models import TradingSignal

TOKEN = "trading-test-token"
ACCOUNT = "101-001-0000000-007"
# A Thursday inside the bundled real EUR/USD minutes (the market is open, no holiday).
THURSDAY = "2025-07-24T09:00:00Z"


@dataclass
class Broker:
    simulator: SimulatorProcess

    @property
    def url(self) -> str:
        return self.simulator.base_url

    def client(self) -> OandaClient:
        return OandaClient(OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=self.url))

    def control(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/__sim/{path}",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def get(self, path: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.url}/v3/accounts/{ACCOUNT}/{path}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def post(self, path: str, payload: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        response = requests.request(
            method,
            f"{self.url}/v3/accounts/{ACCOUNT}/{path}",
            json=payload,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def advance(self, seconds: float) -> None:
        self.control("clock", {"advance": seconds})

    def open_trades(self) -> list[dict[str, Any]]:
        trades: list[dict[str, Any]] = self.get("openTrades")["trades"]
        return trades

    def orders_with_client_id(self, client_id: str) -> int:
        """How many orders the broker ever accepted under this client id (0 or 1)."""
        transactions = self.get("transactions/sinceid?id=1")["transactions"]
        return sum(
            1
            for transaction in transactions
            if transaction["type"] == "MARKET_ORDER"
            and (transaction.get("clientExtensions") or {}).get("id") == client_id
        )


def _start(speed: float, *extra: str) -> SimulatorProcess:
    return SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", THURSDAY, "--speed", str(speed)),
            *("--heartbeat", "0.5", "--stream-interval", "0.1", "--rate-limit", "0"),
            *("--paused",),
            *extra,
        ],
    )


@contextmanager
def pointed_broker(
    settings: Any, monkeypatch: pytest.MonkeyPatch, *extra: str, speed: float = 1.0
) -> Iterator[Broker]:
    """A paused simulator (``extra`` arguments added) with the project pointed at it."""
    from trading import execution

    with _start(speed, *extra) as simulator:
        settings.OANDA_API_URL = simulator.base_url
        settings.OANDA_STREAM_URL = simulator.base_url
        settings.OANDA_TOKEN = TOKEN
        settings.OANDA_ACCOUNT_ID = ACCOUNT
        for name, value in (
            ("OANDA_API_URL", simulator.base_url),
            ("OANDA_STREAM_URL", simulator.base_url),
            ("OANDA_TOKEN", TOKEN),
            ("OANDA_ACCOUNT_ID", ACCOUNT),
        ):
            monkeypatch.setenv(name, value)
        execution._clients.__dict__.clear()
        yield Broker(simulator)
        execution._clients.__dict__.clear()


@pytest.fixture
def broker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A paused simulator on a Thursday of real EUR/USD minutes; the project pointed at it.

    The clock is paused so tests decide when time passes (``broker.advance``). The environment
    is set too, so worker and executor processes started by a test reach the same broker.
    """
    with pointed_broker(settings, monkeypatch) as started:
        yield started


def trading_pair(symbol: str = "EUR_USD", **fields: Any) -> Pair:
    pair = Pair.objects.get(symbol=symbol)
    pair.enabled = True
    pair.state = Pair.State.TRADING
    pair.forced_without_model = True
    for name, value in fields.items():
        setattr(pair, name, value)
    pair.save()
    return pair


def make_signal(
    pair: str = "EUR_USD",
    direction: str = "BUY",
    minute: str = "2025-07-24T08:59:00Z",
    **fields: Any,
) -> TradingSignal:
    from django.utils.dateparse import parse_datetime

    time = parse_datetime(minute)
    assert time is not None
    return TradingSignal.objects.create(
        pair_id=pair,
        time=time,
        direction=direction,
        confidence=0.8,
        price=fields.pop("price", Decimal("1.17")),
        **fields,
    )
