"""Fixtures that start a real simulator subprocess and drive it with the unmodified oandapyV20."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oandapyV20.endpoints.orders as orders
import pytest
import requests

from oandasim.client import SimulatorProcess

ACCOUNT = "101-001-0000000-001"
TOKEN = "sim-token"
# A Thursday in the middle of the bundled real EUR/USD minutes (London morning).
THURSDAY_MORNING = "2025-07-24T09:00:00Z"


@dataclass
class Sim:
    process: SimulatorProcess
    api: Any

    @property
    def account(self) -> str:
        return self.process.account

    @property
    def url(self) -> str:
        return self.process.base_url

    def control(self, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a /__sim endpoint (GET without payload, POST with one)."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if payload is None:
            response = requests.get(f"{self.url}/__sim/{path}", headers=headers, timeout=10)
        else:
            response = requests.post(
                f"{self.url}/__sim/{path}", json=payload, headers=headers, timeout=30
            )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def advance(self, seconds: float) -> None:
        self.control("clock", {"advance": seconds})

    def jump(self, moment: str) -> None:
        self.control("clock", {"time": moment})

    def market(self, instrument: str, units: int, **extra: Any) -> dict[str, Any]:
        order = {"type": "MARKET", "instrument": instrument, "units": str(units), **extra}
        endpoint = orders.OrderCreate(self.account, data={"order": order})
        result: dict[str, Any] = self.api.request(endpoint)
        return result


SimFactory = Callable[..., Sim]


@pytest.fixture
def start_sim() -> Iterator[SimFactory]:
    """Start simulators with chosen arguments; each is stopped with SIGTERM after the test."""
    started: list[SimulatorProcess] = []

    def start(*args: str, start: str | None = THURSDAY_MORNING, paused: bool = True) -> Sim:
        arguments = ["--heartbeat", "0.2", "--stream-interval", "0.05", "--rate-limit", "0"]
        if start is not None:
            arguments += ["--start", start]
        if paused:
            arguments.append("--paused")
        process = SimulatorProcess(token=TOKEN, account=ACCOUNT, extra_args=[*arguments, *args])
        process.start()
        started.append(process)
        return Sim(process, process.api())

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def sim(start_sim: SimFactory) -> Sim:
    """A simulator replaying the bundled EUR/USD minutes with its clock paused on a Thursday."""
    return start_sim()


@pytest.fixture
def candle_file(tmp_path: Path) -> Callable[[str, list[tuple[str, str]]], str]:
    """Write a seed-format candle file of flat minutes: [(time, price), ...] -> PAIR=FILE."""

    def write(pair: str, minutes: list[tuple[str, str]]) -> str:
        rows = [
            {"time": t, "open": p, "high": p, "low": p, "close": p, "volume": 10}
            for t, p in minutes
        ]
        path = tmp_path / f"{pair}.json"
        path.write_text(json.dumps(rows))
        return f"{pair}={path}"

    return write
