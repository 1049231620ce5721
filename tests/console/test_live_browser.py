"""The live console in a real headless Chromium: an open dashboard and an open chart pick up a new
candle, signal and trade without a reload; the interactive chart zooms with the wheel and shows a
candle's values under the crosshair; and the chart page asks nothing of any server but the app's.

Set CONSOLE_SCREENSHOTS to a folder (docs/screenshots for the README's pictures) to keep a
screenshot of the dashboard and of the chart from the run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from marketdata.models import Pair
from marketdata.services import candles_ingest
from qfh.services import candle_metrics_compute
from tests.conftest import SEED_CANDLES
from tests.console.conftest import OPERATOR_PASSWORD, minute_candles
from tests.console.test_browser import colour_count_and_ink, policy_violations, shown
from trading.models import Trade, TradingSignal

# The bundled EUR/USD minutes end at 2025-07-25 20:59Z.
NEXT_MINUTE = datetime(2025, 7, 25, 21, 0, tzinfo=UTC)


def eventually(check: Callable[[], Any], *, seconds: float = 20) -> Any:
    """``check()`` once it is truthy, asked four times a second (the pages refresh every 1 s
    here); fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        time.sleep(0.25)
    return result


def new_candle(moment: datetime) -> None:
    candles_ingest(candles=minute_candles(moment, 1, price=1.1740), pair="EUR_USD", timeframe="M1")


def open_trade(broker_id: str, moment: datetime) -> Trade:
    return Trade.objects.create(
        account_id="acct",
        broker_trade_id=broker_id,
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.17400"),
        opened_at=moment,
        stop_loss_price=Decimal("1.17000"),
        take_profit_price=Decimal("1.17800"),
        state=Trade.State.OPEN,
    )


def keep_screenshot(browser: Any, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / name))


def requested(browser: Any) -> list[str]:
    """The addresses of the requests the browser sent since the last look (its network log)."""
    addresses = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            addresses.append(message["params"]["request"]["url"])
    return addresses


def log_in(browser: Any, url: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_open_dashboard_and_chart_update_themselves_and_the_chart_zooms_and_reads_values(
    live_server: Any, browser: Any, timescaledb: None, settings: Any
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    from trading.services import pair_enable

    # Given an operator, the bundled EUR/USD minutes with their QFH metrics, and pages that
    # refresh every second
    settings.CONSOLE_REFRESH_SECONDS = 1
    User.objects.create_superuser("ops", email="ops@example.com", password=OPERATOR_PASSWORD)
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )
    pair_enable(symbol="EUR_USD", actor="setup", force=True)
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    candle_metrics_compute(
        pair="EUR_USD", timeframe="M1", start=datetime(2025, 7, 25, 15, 0, tzinfo=UTC), xp=np
    )

    # When the operator opens the dashboard
    log_in(browser, live_server.url)
    assert "Live: updated" in shown(browser, By.ID, "live-status").text
    browser.execute_script("window.stillTheSamePage = true")
    assert "No open trades." in browser.find_element(By.ID, "panel-open-trades").text

    # ... and a candle closes, a signal is made and a trade opens
    new_candle(NEXT_MINUTE)
    TradingSignal.objects.create(
        time=NEXT_MINUTE, pair_id="EUR_USD", direction="SELL", confidence=0.71234
    )
    open_trade("77", NEXT_MINUTE + timedelta(seconds=5))

    # Then the dashboard shows all three without a reload
    eventually(lambda: "2025-07-25 21:00Z" in browser.find_element(By.ID, "panel-stream").text)
    eventually(lambda: "SELL" in browser.find_element(By.ID, "panel-signals").text)
    assert "0.7123" in browser.find_element(By.ID, "panel-signals").text
    eventually(lambda: "EUR_USD" in browser.find_element(By.ID, "panel-open-trades").text)
    assert browser.execute_script("return window.stillTheSamePage") is True
    assert "Live: updated" in browser.find_element(By.ID, "live-status").text
    keep_screenshot(browser, "dashboard.png")
    violations = policy_violations(browser)

    # When the browser loses its network, the dashboard says so; when it is back, it recovers
    def live_status() -> str:
        return str(browser.find_element(By.ID, "live-status").text)

    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    eventually(lambda: "Connection lost since" in live_status())
    assert "live-lost" in browser.find_element(By.ID, "live-status").get_attribute("class")
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    eventually(lambda: live_status().startswith("Live: updated"))
    assert browser.execute_script("return window.stillTheSamePage") is True

    # When the operator opens the chart (the default window follows the newest candle)
    requested(browser)
    browser.get(f"{live_server.url}/admin/marketdata/pair/{eur_usd.pk}/chart/")
    chart = "window.consoleChart"
    eventually(lambda: browser.execute_script(f"return {chart} && {chart}.updates >= 1"))
    browser.execute_script("window.stillTheSamePage = true")

    # Then the interactive chart replaced the server-drawn one and draws the candles in colour,
    # with the signal, the trade entry and the open trade's stop loss and take profit
    assert not browser.find_element(By.ID, "live-chart").get_attribute("hidden")
    assert browser.find_element(By.ID, "chart-fallback").get_attribute("hidden")
    assert browser.execute_script(f"return {chart}.candles.data().length") == 360
    assert browser.execute_script(f"return {chart}.markers.markers().length") == 2
    assert browser.execute_script(f"return {chart}.priceLines.length") == 2
    assert browser.execute_script(f"return {chart}.metrics.coherence.data().length") > 0
    canvas = browser.find_element(By.ID, "chart-canvas")
    colours, ink, green, red = colour_count_and_ink(canvas.screenshot_as_png)
    assert colours >= 8 and ink > 0.02 and green > 100 and red > 100, (colours, ink, green, red)

    # When the next candle closes with a BUY signal on it, and the trade is closed
    new_candle(NEXT_MINUTE + timedelta(minutes=1))
    TradingSignal.objects.create(
        time=NEXT_MINUTE + timedelta(minutes=1), pair_id="EUR_USD", direction="BUY", confidence=0.8
    )
    Trade.objects.filter(broker_trade_id="77").update(
        state=Trade.State.CLOSED,
        current_units=0,
        closed_at=NEXT_MINUTE + timedelta(minutes=1, seconds=30),
        close_price=Decimal("1.17450"),
    )

    # Then the chart extends by the candle, marks the signal and the exit, drops the closed
    # trade's price lines, and lists the signal and the exit under it, without a reload
    last_time = int((NEXT_MINUTE + timedelta(minutes=1)).timestamp())
    eventually(
        lambda: browser.execute_script(f"return {chart}.candles.data().at(-1).time") == last_time
    )
    eventually(lambda: browser.execute_script(f"return {chart}.markers.markers().length") == 4)
    assert browser.execute_script(f"return {chart}.priceLines.length") == 0
    eventually(lambda: "BUY" in browser.find_element(By.ID, "chart-signals").text)
    eventually(lambda: "1.17450" in browser.find_element(By.ID, "chart-trades").text)
    assert browser.execute_script("return window.stillTheSamePage") is True

    # When the operator turns the wheel over the chart
    visible = f"return {chart}.chart.timeScale().getVisibleLogicalRange()"
    before = browser.execute_script(visible)
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas), 0, -400).perform()

    # Then the time scale zooms in: fewer candles are in view
    def narrower() -> bool:
        after = browser.execute_script(visible)
        return after["to"] - after["from"] < 0.95 * (before["to"] - before["from"])

    eventually(narrower)

    # When the pointer rests over the candles, the legend reads the candle's values
    ActionChains(browser).move_to_element_with_offset(canvas, -100, -100).perform()
    eventually(lambda: " O 1.1" in browser.find_element(By.ID, "chart-legend").text)
    legend = browser.find_element(By.ID, "chart-legend").text
    assert all(part in legend for part in ("2025-07-25", " H ", " L ", " C ", " V ")), legend
    keep_screenshot(browser, "chart.png")
    violations += policy_violations(browser)

    # And every request the chart page made, in the browser's network log, went to the app itself
    requests = requested(browser)
    assert any("/chart/data/" in address for address in requests), requests
    assert any("lightweight-charts" in address for address in requests), requests
    outside = [address for address in requests if not address.startswith(live_server.url)]
    assert not outside, outside
    # And the Content-Security-Policy blocked nothing on either page
    assert not violations, "\n".join(violations)
