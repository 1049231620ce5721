"""A live stretch of the analysis run in-process on the bundled real EUR/USD minutes, for the
parity report's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pytest

from qfh import services
from qfh.models import PairModel
from tests.qfh.test_live_signals import load, make_pair_model, trade

# The New York trading day of the stretch: Wednesday 17:00 to Thursday 17:00 (2025-07-24).
DAY = date(2025, 7, 24)
# Minutes analysed live: the last of the eight hours loaded.
LIVE_MINUTES = 110


def run_live(times: list[datetime], capture: Callable[..., Any]) -> None:
    """The live analysis of each minute, as the qfh worker runs it (signals stored, their
    execution messages dropped)."""
    for time in times:
        with capture(execute=False):
            services.signals_analyze_closed(pairs=["EUR_USD"], time=time, xp=np)


@pytest.fixture
def live_stretch(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[[], tuple[list[datetime], PairModel]]:
    """Eight hours of real EUR/USD minutes, EUR_USD trading on a promoted model; calling it
    runs the live analysis of the last 110 minutes and returns their times and the model."""

    def run() -> tuple[list[datetime], PairModel]:
        times = load(seed_candles[:480])
        trade("EUR_USD")
        model = make_pair_model("EUR_USD", "testbed", {})
        run_live(times[-LIVE_MINUTES:], django_capture_on_commit_callbacks)
        return times[-LIVE_MINUTES:], model

    return run
