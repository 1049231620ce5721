"""Fixtures of the console tests: an operator's login, candles, the OANDA simulator and a headless
Chromium."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES, require

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


# ----- a headless Chromium (tests/console/test_browser.py, test_live_browser.py) ---------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    require(
        CHROMIUM is not None and CHROMEDRIVER is not None,
        "Chromium and its driver are not installed (apt-get install chromium chromium-driver; "
        "scripts/services.sh does it)",
    )
    require(
        importlib.util.find_spec("selenium") is not None
        and importlib.util.find_spec("PIL") is not None,
        "selenium and pillow are not installed (the dev extra lists them)",
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        # Root in a container has no user namespace for Chromium's sandbox.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1200",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    # The browser's console log, where Chromium reports what the Content-Security-Policy blocked.
    # And its network events ("performance"), where every request the page makes is listed.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
