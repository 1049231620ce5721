"""Fixtures of the console tests: an operator's login, candles, and the OANDA simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES

TOKEN = "console-test-token"
ACCOUNT = "101-001-0000000-008"
# A Thursday inside the bundled EUR/USD minutes, so the simulator's market is open with real
# prices.
THURSDAY = "2025-07-24T09:00:00Z"
OPERATOR_PASSWORD = "pw-for-console-tests"


@pytest.fixture
def operator_user(db: Any) -> User:
    return User.objects.create_superuser("ops", email="ops@example.com", password=OPERATOR_PASSWORD)


@pytest.fixture
def operator_client(operator_user: User) -> Client:
    client = Client()
    client.force_login(operator_user)
    return client


@pytest.fixture
def simulator(settings: Any) -> Iterator[SimulatorProcess]:
    """The OANDA simulator, with the settings and the per-thread broker client pointed at it."""
    from trading import execution

    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", THURSDAY, "--rate-limit", "0"),
        ],
    ) as process:
        settings.OANDA_API_URL = process.base_url
        settings.OANDA_TOKEN = TOKEN
        settings.OANDA_ACCOUNT_ID = ACCOUNT
        # broker_client() keeps one client per thread; a client from another test would talk to
        # a simulator that is gone.
        execution._clients.__dict__.clear()
        yield process
        execution._clients.__dict__.clear()


def minute_candles(start: datetime, count: int, *, price: float = 1.1000) -> list[dict[str, Any]]:
    """``count`` consecutive M1 candles from ``start``: a gentle zig-zag around ``price``."""
    candles = []
    for index in range(count):
        drift = ((index % 40) - 20) * 0.00005
        open_ = price + drift
        close = open_ + (0.00004 if index % 2 else -0.00003)
        candles.append(
            {
                "time": (start + timedelta(minutes=index)).isoformat().replace("+00:00", "Z"),
                "open": f"{open_:.5f}",
                "high": f"{max(open_, close) + 0.00006:.5f}",
                "low": f"{min(open_, close) - 0.00006:.5f}",
                "close": f"{close:.5f}",
                "volume": 10 + index % 7,
                "complete": True,
            }
        )
    return candles


CHART_END = datetime(2025, 7, 25, 21, 0, tzinfo=UTC)
