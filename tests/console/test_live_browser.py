"""The live console in a real headless Chromium: an open dashboard, trade list and chart pick up
a new candle, signal and trade without a reload; the dashboard says when the connection is lost
and recovers; a list leaves rows selected for an action alone; the interactive chart zooms with
the wheel, shows a candle's values under the crosshair, and its page asks nothing of any server
but the app's (the browser's network log).

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
    here); fails after ``seconds``. An element swapped out while it was read is read again."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + seconds
    while True:
        try:
            result = check()
        except StaleElementReferenceException:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        time.sleep(0.25)


def text(browser: Any, element_id: str) -> str:
    """The text of the element with ``element_id`` now, read again if a poll swapped it out."""
    from selenium.webdriver.common.by import By

    return str(eventually(lambda: browser.find_element(By.ID, element_id).text or " "))


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


@pytest.fixture
def eur_usd_live(live_server: Any, timescaledb: None, settings: Any) -> Pair:
    """An operator, the bundled EUR/USD minutes with their QFH metrics, EUR/USD trading, and
    pages that refresh every second."""
    from trading.services import pair_enable

    settings.CONSOLE_REFRESH_SECONDS = 1
    User.objects.create_superuser("ops", email="ops@example.com", password=OPERATOR_PASSWORD)
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )
    pair_enable(symbol="EUR_USD", actor="setup", force=True)
    candle_metrics_compute(
        pair="EUR_USD", timeframe="M1", start=datetime(2025, 7, 25, 15, 0, tzinfo=UTC), xp=np
    )
    return Pair.objects.get(symbol="EUR_USD")


def a_candle_a_signal_and_a_trade() -> None:
    """The next minute closes, a SELL signal is made on it and trade 77 opens with SL and TP."""
    new_candle(NEXT_MINUTE)
    TradingSignal.objects.create(
        time=NEXT_MINUTE, pair_id="EUR_USD", direction="SELL", confidence=0.71234
    )
    open_trade("77", NEXT_MINUTE + timedelta(seconds=5))


def same_page(browser: Any) -> bool:
    """Whether the page is still the one marked by ``window.stillTheSamePage`` (no reload)."""
    return browser.execute_script("return window.stillTheSamePage") is True


# serialized_rollback: the live server needs committed rows, and the flush after the test would
# otherwise remove the pairs the migrations seed, which later tests rely on.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_open_dashboard_shows_a_new_candle_signal_and_trade_and_a_lost_connection(
    live_server: Any, browser: Any, eur_usd_live: Pair
) -> None:
    from selenium.webdriver.common.by import By

    # When the operator opens the dashboard
    log_in(browser, live_server.url)
    shown(browser, By.ID, "live-status")
    eventually(lambda: "Live: updated" in text(browser, "live-status"))
    browser.execute_script("window.stillTheSamePage = true")
    assert "No open trades." in text(browser, "panel-open-trades")

    # ... and a candle closes, a signal is made and a trade opens
    a_candle_a_signal_and_a_trade()

    # Then the dashboard shows all three without a reload
    eventually(lambda: "2025-07-25 21:00Z" in text(browser, "panel-stream"))
    eventually(lambda: "SELL" in text(browser, "panel-signals"))
    assert "0.7123" in text(browser, "panel-signals")
    eventually(lambda: "EUR_USD" in text(browser, "panel-open-trades"))
    assert same_page(browser)
    assert "Live: updated" in text(browser, "live-status")
    keep_screenshot(browser, "dashboard.png")

    # When the browser loses its network, the dashboard says so; when it is back, it recovers
    def live_status() -> str:
        return str(text(browser, "live-status"))

    browser.execute_cdp_cmd("Network.enable", {})
    offline = {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", offline)
    eventually(lambda: "Connection lost since" in live_status())
    assert "live-lost" in browser.find_element(By.ID, "live-status").get_attribute("class")
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {**offline, "offline": False})
    eventually(lambda: live_status().startswith("Live: updated"))
    assert same_page(browser)
    # And the Content-Security-Policy blocked nothing
    assert not policy_violations(browser)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_open_trade_list_shows_a_new_trade_and_leaves_rows_selected_for_an_action_alone(
    live_server: Any, browser: Any, eur_usd_live: Pair
) -> None:
    from selenium.webdriver.common.by import By

    # Given an open trade, on the operator's open trade list
    open_trade("81", NEXT_MINUTE)
    log_in(browser, live_server.url)
    shown(browser, By.ID, "live-status")
    browser.get(f"{live_server.url}/admin/trading/trade/")
    browser.execute_script("window.stillTheSamePage = true")

    def rows() -> str:
        return str(text(browser, "result_list"))

    # When a trade opens, it appears without a reload
    open_trade("82", NEXT_MINUTE + timedelta(minutes=1))
    eventually(lambda: "82" in rows().split())
    assert same_page(browser)

    # When the operator selects every row, the admin's own selection still works on the new rows
    eventually(lambda: browser.find_element(By.ID, "action-toggle").click() or True)
    assert "2 of 2 selected" in browser.find_element(By.CSS_SELECTOR, ".action-counter").text

    # ... and while they are selected, a new trade does not pull the rows from under them
    open_trade("83", NEXT_MINUTE + timedelta(minutes=2))
    time.sleep(3)
    assert "83" not in rows().split()
    checked = "#result_list input.action-select:checked"
    assert len(browser.find_elements(By.CSS_SELECTOR, checked)) == 2

    # When the selection is cleared, the list catches up
    eventually(lambda: browser.find_element(By.ID, "action-toggle").click() or True)
    eventually(lambda: "83" in rows().split())
    assert same_page(browser)
    assert not policy_violations(browser)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_open_chart_extends_by_itself_zooms_reads_values_and_asks_nothing_of_other_hosts(
    live_server: Any, browser: Any, eur_usd_live: Pair
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    # Given a candle, a signal and an open trade at the end of the stored minutes
    a_candle_a_signal_and_a_trade()
    log_in(browser, live_server.url)
    shown(browser, By.ID, "live-status")

    # When the operator opens the chart (the default window follows the newest candle)
    requested(browser)
    browser.get(f"{live_server.url}/admin/marketdata/pair/{eur_usd_live.pk}/chart/")
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
    eventually(lambda: "BUY" in text(browser, "chart-signals"))
    eventually(lambda: "1.17450" in text(browser, "chart-trades"))
    assert same_page(browser)

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
    eventually(lambda: " O 1.1" in text(browser, "chart-legend"))
    legend = text(browser, "chart-legend")
    assert all(part in legend for part in ("2025-07-25", " H ", " L ", " C ", " V ")), legend
    keep_screenshot(browser, "chart.png")
    violations = policy_violations(browser)

    # And every request the chart page made, in the browser's network log, went to the app itself
    requests = requested(browser)
    assert any("/chart/data/" in address for address in requests), requests
    assert any("lightweight-charts" in address for address in requests), requests
    outside = [address for address in requests if not address.startswith(live_server.url)]
    assert not outside, outside
    # And the Content-Security-Policy blocked nothing
    assert not violations, "\n".join(violations)
