"""The parity report's page in a headless Chromium: the interactive chart of replayed against live
P&L replaces the server-drawn picture, under the Content-Security-Policy with no violation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from parity.services import parity_run
from tests.console.conftest import OPERATOR_PASSWORD, browser
from tests.console.test_browser import colour_count_and_ink, policy_violations, shown
from tests.parity.conftest import DAY

__all__ = ["browser"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_report_page_draws_both_equity_curves_in_chromium(
    live_server: Any, browser: Any, live_stretch: Callable[[], Any], tmp_path: Path
) -> None:
    # Given a day's report with trades on the replay's side, and an operator
    from selenium.webdriver.common.by import By

    live_stretch()
    (report,) = parity_run(day=DAY)
    User.objects.create_superuser("ops", email="ops@example.com", password=OPERATOR_PASSWORD)
    browser.get(f"{live_server.url}/admin/login/?next=/admin/parity/")
    browser.find_element(By.NAME, "username").send_keys("ops")
    browser.find_element(By.NAME, "password").send_keys(OPERATOR_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert shown(browser, By.ID, "parity-reports")

    # When the operator opens the report
    browser.get(f"{live_server.url}/admin/parity/{report.pk}/")
    canvas = shown(browser, By.ID, "parity-canvas")
    browser.find_element(By.CSS_SELECTOR, "#parity-canvas canvas")
    png = canvas.screenshot_as_png
    (tmp_path / "parity.png").write_bytes(png)

    # Then the interactive chart is drawn in place of the picture, with nothing blocked
    assert not browser.find_element(By.ID, "parity-fallback").is_displayed()
    assert browser.find_element(By.ID, "chart-attribution").is_displayed()
    colours, ink, _, _ = colour_count_and_ink(png)
    assert colours >= 4 and ink > 0.005, f"the chart looks blank (see {tmp_path})"
    assert policy_violations(browser) == []
