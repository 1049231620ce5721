"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which
``scripts/services.sh`` installs): log in, read the dashboard, disable a pair with the admin
action, check that the chart page really renders (a screenshot with candles in it) and that the
API docs page draws, all under the Content-Security-Policy with no violation in the browser's log.

About 10 s, most of it Chromium starting and the live server; it is the one test that shows the
console works in a browser rather than in Django's test client.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from marketdata.models import Pair
from qfh.services import candle_metrics_compute
from septrader.models import AuditLog
from tests.conftest import SEED_CANDLES
from tests.console.conftest import OPERATOR_PASSWORD
from trading.models import Trade, TradingSignal


def colour_count_and_ink(png: bytes) -> tuple[int, float, int, int]:
    """Distinct colours, the share of non-white pixels, and the green and red candle pixels."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    total = image.width * image.height
    counts = {colour: count for count, colour in image.getcolors(total) or []}
    colours = len(counts)
    ink = 1 - counts.get((255, 255, 255), 0) / total
    green = counts.get((0x2A, 0x7D, 0x2A), 0)
    red = counts.get((0xB0, 0x30, 0x30), 0)
    return colours, ink, green, red


def shown(browser: Any, by: str, selector: str) -> Any:
    """The element once the page that has it has loaded (up to 20 s)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((by, selector))
    )


def policy_violations(browser: Any) -> list[str]:
    """What the Content-Security-Policy blocked since the last look, from the browser's log."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


# serialized_rollback: the live server needs committed rows, and the flush after the test would
# otherwise remove the pairs the migrations seed, which later tests rely on.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_operator_logs_in_disables_a_pair_and_sees_the_chart_in_chromium(
    live_server: Any, browser: Any, timescaledb: None, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from trading.services import pair_enable

    # Given an operator account, the bundled real EUR/USD minutes, and EUR/USD trading
    User.objects.create_superuser("ops", email="ops@example.com", password=OPERATOR_PASSWORD)
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )
    pair_enable(symbol="EUR_USD", actor="setup", force=True)
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    # ... with its QFH metrics, a signal and a closed trade inside the chart's default window
    window_start = datetime(2025, 7, 25, 15, 0, tzinfo=UTC)
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", start=window_start, xp=np)
    TradingSignal.objects.create(
        time=window_start + timedelta(hours=2), pair_id="EUR_USD", direction="BUY", confidence=0.9
    )
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="42",
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(0),
        open_price=Decimal("1.17300"),
        opened_at=window_start + timedelta(hours=2, minutes=1),
        close_price=Decimal("1.17400"),
        closed_at=window_start + timedelta(hours=3),
        state=Trade.State.CLOSED,
        realized_pl=Decimal("1.00"),
    )

    # When the operator logs in through the form
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    # Then the dashboard shows the system state, the market and the stream panel
    assert shown(browser, By.ID, "trading-mode").text == "Trading"
    assert browser.find_element(By.ID, "market-state").text in {"open", "closed"}
    stream = browser.find_element(By.ID, "panel-stream").text
    assert "EUR_USD" in stream and "2025-07-25 20:59Z" in stream
    # (every page below is checked for what the Content-Security-Policy blocked)
    violations = policy_violations(browser)

    # When the operator disables EUR/USD with the list action
    browser.get(f"{live_server.url}/admin/marketdata/pair/?q=EUR_USD")
    browser.find_element(
        By.CSS_SELECTOR, f"input[name=_selected_action][value='{eur_usd.pk}']"
    ).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("disable_pairs")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()

    # Then the page confirms it, the database has it, and the audit log names the operator
    # (A click that submits a form returns before the next page has loaded: wait for it.)
    assert "EUR_USD: disabled" in shown(browser, By.CSS_SELECTOR, ".messagelist").text
    violations += policy_violations(browser)
    eur_usd.refresh_from_db()
    assert (eur_usd.enabled, eur_usd.state) == (False, Pair.State.DISABLED)
    entry = AuditLog.objects.get(action="pair.disable", target="EUR_USD")
    assert (entry.actor, entry.address) == ("ops", "127.0.0.1")

    # When the operator opens the pair's chart (the default window: the last 6 hours of M1) in a
    # browser that runs no JavaScript (the interactive chart: tests/console/test_live_browser.py)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    browser.get(f"{live_server.url}/admin/marketdata/pair/{eur_usd.pk}/chart/")
    candles = browser.find_elements(By.CSS_SELECTOR, "#price-chart svg g.candle")
    chart = browser.find_element(By.CSS_SELECTOR, "#price-chart svg")
    png = chart.screenshot_as_png
    (tmp_path / "chart.png").write_bytes(png)
    browser.save_screenshot(str(tmp_path / "chart-page.png"))
    violations += policy_violations(browser)

    # Then the server-drawn chart stays, with 360 candles in it, and the browser really drew them:
    # many colours, ink, and both the rising (green) and the falling (red) candle colours
    assert len(candles) == 360
    assert len(browser.find_elements(By.CSS_SELECTOR, "#price-chart svg .signal.buy")) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#price-chart svg .trade-exit")) == 1
    metric_lines = browser.find_elements(By.CSS_SELECTOR, "#metrics-chart svg polyline.metric")
    assert len(metric_lines) == 3
    colours, ink, green, red = colour_count_and_ink(png)
    assert colours >= 8, f"the chart looks blank: {colours} colours (see {tmp_path})"
    assert ink > 0.02, f"the chart looks blank: {ink:.1%} non-white (see {tmp_path})"
    assert green > 100 and red > 100, f"green={green} red={red} candle pixels (see {tmp_path})"
    # And the page's styles came from the app itself, not a CDN
    sources = browser.execute_script(
        "return [...document.querySelectorAll('link[href],script[src]')].map(e => e.href || e.src)"
    )
    assert sources and all(source.startswith(live_server.url) for source in sources)
    # And the chart's form kept its look with its style moved to the stylesheet (6em wide)
    hours = browser.find_element(By.NAME, "hours")
    width, font = (float(hours.value_of_css_property(name)[:-2]) for name in ("width", "font-size"))
    assert width == pytest.approx(6 * font, abs=1)

    # When the operator opens the API docs page (with JavaScript again)
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    browser.get(f"{live_server.url}/api/docs/")

    # Then Swagger UI draws the operations from the schema (its start-up script is a file too)
    assert "SEP Trader API" in shown(browser, By.CSS_SELECTOR, ".swagger-ui .info .title").text
    shown(browser, By.CSS_SELECTOR, ".swagger-ui .opblock")
    violations += policy_violations(browser)

    # And the Content-Security-Policy blocked nothing on any page
    assert not violations, "\n".join(violations)
