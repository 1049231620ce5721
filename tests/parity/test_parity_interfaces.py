"""How the parity report is reached: ``manage.py parity``, the beat task after each New York
close, ``GET /api/parity``, the daily summary's line, and the alerts that follow the newest
report; bad input is refused naming the field, the value and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from celery import current_app
from django.core.cache import cache
from django.core.management import CommandError, call_command

from monitoring.models import Alert
from monitoring.services import daily_summary_figures
from parity.models import ParityReport
from parity.services import (
    live_analyses_prune,
    parity_alerts_update,
    parity_run,
    parity_run_due,
)
from qfh.models import LiveAnalysis
from septrader.models import AuditLog
from septrader.services import config_set
from tests.api.conftest import client_for, make_user
from tests.parity.conftest import DAY
from tests.security.test_content_security_policy import INLINE
from trading.models import Order, Trade, TradingSignal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_throttle_counts(redis_url: str) -> Any:
    cache.clear()
    yield
    cache.clear()


def test_the_command_reports_the_day_and_a_rerun_replaces_it(
    live_stretch: Callable[[], Any],
) -> None:
    # Given a live stretch of EUR_USD on 2025-07-24
    live_stretch()

    # When the command runs for the day, twice
    out = StringIO()
    call_command("parity", "--day", DAY.isoformat(), stdout=out)
    first = ParityReport.objects.get()
    call_command("parity", "--day", DAY.isoformat(), "--pair", "EUR_USD", stdout=out)

    # Then one report holds the day, computed afresh, and the command says what it found
    again = ParityReport.objects.get()
    assert again.pk == first.pk and again.computed_at > first.computed_at
    assert again.execution_rows.count() == first.replay_signals
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Parity EUR_USD 2025-07-24: ")
    assert "0 unexplained" in lines[0] and lines[0] == lines[1]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--day", "2025-07-32"), "--day='2025-07-32' is not valid; expected a trading day as"),
        (("--day", "2025-07-24"), "--day='2025-07-24' is not valid; expected a trading day that"),
        (("--day", "2025-07-25"), "--day='2025-07-25' is not valid; expected a trading day that"),
        (
            ("--day", "2025-07-23", "--pair", "eur_usd"),
            "--pair='eur_usd' is not valid; expected upper-case letters and digits",
        ),
        (
            ("--day", "2025-07-23", "--pair", "XYZ_ABC"),
            "--pair='XYZ_ABC' is not valid; expected one of the",
        ),
    ],
    ids=["malformed day", "today", "future", "malformed pair", "unknown pair"],
)
def test_the_command_refuses_a_day_not_finished_or_a_pair_it_does_not_know(
    broker_clock: Callable[..., None], arguments: tuple[str, ...], message: str
) -> None:
    # Given the market's clock on Thursday 2025-07-24 at noon UTC (the day ends at 21:00 UTC)
    broker_clock(datetime(2025, 7, 24, 12, 0, tzinfo=UTC))
    with pytest.raises(CommandError) as refused:
        call_command("parity", *arguments, stdout=StringIO())
    assert str(refused.value).startswith(message), str(refused.value)
    assert not ParityReport.objects.exists()


def test_a_report_made_while_a_live_trade_was_open_is_run_again_once_the_trade_has_closed(
    live_stretch: Callable[[], Any],
) -> None:
    # Given a live stretch whose first signal filled, the trade still open at the close
    live_stretch()
    signal = TradingSignal.objects.filter(pair_id="EUR_USD").earliest("time")
    signal.status = TradingSignal.Status.EXECUTED
    signal.save()
    sign = 1 if signal.direction == "BUY" else -1
    order = Order.objects.create(
        client_id="parity-open",
        account_id="101-1",
        signal=signal,
        pair_id="EUR_USD",
        units=sign * 10_000,
        status=Order.Status.FILLED,
        fill_price=Decimal("1.17000"),
        filled_at=signal.time,
    )
    trade = Trade.objects.create(
        account_id="101-1",
        broker_trade_id="77",
        order=order,
        pair_id="EUR_USD",
        initial_units=sign * 10_000,
        current_units=sign * 10_000,
        open_price=Decimal("1.17000"),
        opened_at=signal.time,
        unrealized_pl=Decimal("-3.5000"),
    )

    # When beat reports the day after its close, and looks again a minute later
    (first,) = parity_run_due(now=datetime(2025, 7, 24, 21, 5, tzinfo=UTC))
    assert parity_run_due(now=datetime(2025, 7, 24, 21, 6, tzinfo=UTC)) == []
    row = first.execution_rows.get(signal=signal)
    assert (row.outcome, row.live_closed_at, row.live_pl) == ("filled", None, Decimal("-3.5000"))

    # When the trade closes at the broker, and beat looks again, twice
    closed_at = datetime(2025, 7, 25, 2, 30, tzinfo=UTC)
    trade.state = Trade.State.CLOSED
    trade.current_units = Decimal(0)
    trade.close_price = Decimal("1.17120")
    trade.closed_at = closed_at
    trade.close_reason = "TAKE_PROFIT_ORDER"
    trade.realized_pl = Decimal("12.0000")
    trade.financing = Decimal("-0.9000")
    trade.unrealized_pl = Decimal(0)
    trade.save()
    again = parity_run_due(now=datetime(2025, 7, 25, 2, 31, tzinfo=UTC))
    later = parity_run_due(now=datetime(2025, 7, 25, 2, 32, tzinfo=UTC))

    # Then the day's report is run once more and carries the broker's final figures
    assert [(report.pk, report.day) for report in again] == [(first.pk, DAY)] and later == []
    row = again[0].execution_rows.get(signal=signal)
    assert (row.live_closed_at, row.live_close_reason) == (closed_at, "TAKE_PROFIT_ORDER")
    assert row.live_pl == Decimal("11.1000")
    parts = {name: Decimal(value) for name, value in again[0].attribution.items()}
    assert sum(parts.values()) == again[0].pl_difference


def test_the_live_analysis_log_is_pruned_after_its_days_and_a_pruned_day_is_not_rerun(
    live_stretch: Callable[[], Any], settings: Any
) -> None:
    # Given a reported live stretch on 2025-07-24, and a minute analysed a month later
    live_stretch()
    call_command("parity", "--day", DAY.isoformat(), stdout=StringIO())
    logged = LiveAnalysis.objects.count()
    now = datetime(2025, 8, 25, 23, 7, tzinfo=UTC)
    recent = LiveAnalysis.objects.create(pair_id="EUR_USD", time=now - timedelta(hours=1))

    # When the daily prune runs with the log kept 7 days, and runs again
    config_set(key="parity.live_analysis_days", value=7, updated_by="ops")
    pruned = (live_analyses_prune(now=now), live_analyses_prune(now=now))

    # Then the stretch's log is gone, the recent minute kept, and the cut audited once: the
    # start of the trading day 7 days before Tuesday 2025-08-26 (Monday 17:00 New York)
    assert pruned == (logged, 0) and logged > 0
    assert list(LiveAnalysis.objects.values_list("pk", flat=True)) == [recent.pk]
    (entry,) = AuditLog.objects.filter(action="parity.live_analyses_pruned")
    assert entry.actor == "system:parity"
    assert entry.details == {"before": "2025-08-18T21:00:00+00:00", "rows": logged, "days_kept": 7}

    # And a rerun of the pruned day is refused naming the setting; its report stays
    with pytest.raises(CommandError) as refused:
        call_command("parity", "--day", DAY.isoformat(), stdout=StringIO())
    message = str(refused.value)
    assert message.startswith(
        "--day='2025-07-24' is not valid; expected a trading day from 2025-08-19 on"
    )
    assert "parity.live_analysis_days" in message
    assert ParityReport.objects.filter(day=DAY).count() == 1

    # And beat runs the prune daily, after the New York close in either season; on today's clock
    # the recent minute is older than 7 days too
    entry_name = settings.CELERY_BEAT_SCHEDULE["parity.prune_live_analyses"]["task"]
    assert current_app.tasks[entry_name].apply().get() == 1
    assert not LiveAnalysis.objects.exists()


def test_after_the_close_the_beat_task_reports_the_day_once(
    live_stretch: Callable[[], Any],
) -> None:
    # Given a live stretch on the day ending 2025-07-24 17:00 New York
    live_stretch()

    # When the task runs before the close, after it, and again
    before = parity_run_due(now=datetime(2025, 7, 24, 20, 59, tzinfo=UTC))
    after = parity_run_due(now=datetime(2025, 7, 24, 21, 5, tzinfo=UTC))
    again = parity_run_due(now=datetime(2025, 7, 24, 21, 10, tzinfo=UTC))

    # Then the day is reported once, once it has ended
    assert before == [] and again == []
    assert [(report.pair_id, report.day) for report in after] == [("EUR_USD", DAY)]


def test_the_api_lists_reports_with_filters_and_names_a_bad_filter(
    live_stretch: Callable[[], Any],
) -> None:
    # Given the day's report and a viewer
    live_stretch()
    (report,) = parity_run(day=DAY)
    viewer = client_for(make_user("viewer"))

    # When the viewer lists the reports
    listed = viewer.get(
        "/api/parity", {"pair": "EUR_USD", "from": "2025-07-24", "to": "2025-07-24"}
    )

    # Then the report comes with its figures and its parts
    assert listed.status_code == 200, listed.content
    (row,) = listed.json()["results"]
    assert (row["pair"], row["day"], row["unexplained"]) == ("EUR_USD", "2025-07-24", 0)
    assert Decimal(row["pl_difference"]) == sum(Decimal(v) for v in row["attribution"].values())
    assert row["mismatch_rows"] == []
    detail = viewer.get(f"/api/parity/{report.pk}").json()
    assert len(detail["execution_rows"]) == report.execution_rows.count()
    assert len(detail["equity"]) >= 1
    # And the filters leave it out where they should
    assert viewer.get("/api/parity", {"unexplained": "true"}).json()["count"] == 0
    assert viewer.get("/api/parity", {"from": "2025-07-25"}).json()["count"] == 0
    # And a bad filter is a 400 naming the field
    for params, field in (
        ({"pair": "eur_usd"}, "pair"),
        ({"pair": "XYZ_ABC"}, "pair"),
        ({"from": "2025-02-30"}, "from"),
        ({"from": "2025-07-25", "to": "2025-07-24"}, "to"),
        ({"unexplained": "perhaps"}, "unexplained"),
    ):
        answer = viewer.get("/api/parity", params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]["field"] == field, answer.json()


def test_the_daily_summary_has_a_parity_line_and_runs_the_days_reports_first(
    live_stretch: Callable[[], Any],
) -> None:
    live_stretch()
    figures = daily_summary_figures(DAY)
    assert figures["parity"] == {
        "reports": 1,
        "mismatches": 0,
        "unexplained": 0,
        "pl_difference": str(ParityReport.objects.get().pl_difference),
        "pairs": {
            "EUR_USD": {
                "mismatches": 0,
                "unexplained": 0,
                "pl_difference": str(ParityReport.objects.get().pl_difference),
            }
        },
    }
    assert daily_summary_figures(date(2025, 7, 20))["parity"]["reports"] == 0


def test_slippage_beyond_its_setting_alerts_and_a_clean_newer_day_resolves_the_alerts(
    live_stretch: Callable[[], Any],
) -> None:
    # Given a report whose fills slipped (set on the stored report) and low thresholds
    live_stretch()
    (report,) = parity_run(day=DAY)
    config_set(key="parity.slippage_alert_pips", value="1")
    ParityReport.objects.filter(pk=report.pk).update(
        slippage_mean_pips=Decimal("1.4"), slippage_max_pips=Decimal("2.1"), unexplained=1
    )
    assert report.live_from is not None
    report.mismatch_rows.create(time=report.live_from, kind="live_only", cause="unexplained")

    # When the alerts follow the report
    parity_alerts_update(pair="EUR_USD")

    # Then both conditions are open, each naming what crossed its line
    slippage = Alert.objects.get(condition="parity.slippage:EUR_USD", resolved_at__isnull=True)
    assert "mean 1.40 pips above parity.slippage_alert_pips=1" in slippage.message
    assert Alert.objects.filter(condition="parity.unexplained:EUR_USD", resolved_at=None).exists()

    # When a newer day's report is clean
    ParityReport.objects.create(
        pair_id="EUR_USD", day=date(2025, 7, 25), computed_at=report.computed_at
    )
    parity_alerts_update(pair="EUR_USD")

    # Then both resolve
    assert not Alert.objects.filter(condition__startswith="parity.", resolved_at=None).exists()


def test_the_console_lists_the_reports_and_shows_one_with_its_parts_and_chart(
    live_stretch: Callable[[], Any], client: Any, django_user_model: Any
) -> None:
    # Given the day's report and an operator signed in to the console
    live_stretch()
    (report,) = parity_run(day=DAY)
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw"))

    # When the operator opens the parity page and the report
    listing = client.get("/admin/parity/").content.decode()
    page = client.get(f"/admin/parity/{report.pk}/").content.decode()

    # Then the list links the report with its figures
    assert f'href="/admin/parity/{report.pk}/"' in listing
    assert 'id="parity-EUR_USD-2025-07-24"' in listing
    # And the report shows its parts adding up, its trades, the server-drawn chart and the
    # chart's points as a data block (the Content-Security-Policy runs no inline script)
    assert page.count('class="part-row"') == len(report.attribution)
    assert page.count('class="execution-row"') == report.execution_rows.count()
    assert '<svg class="parity-equity"' in page and 'class="parity-live"' in page
    assert 'id="parity-canvas" class="chart-canvas" data-points="[{&quot;' in page
    assert "&quot;replay&quot;: &quot;" in page
    assert "console/parity.js" in page
    assert not INLINE.findall(page)
    # And a malformed pair filter says what was wrong and shows every pair
    refused = client.get("/admin/parity/?pair=eur").content.decode()
    assert "pair=&#x27;eur&#x27; does not match" in refused
    assert 'id="parity-EUR_USD-2025-07-24"' in refused
