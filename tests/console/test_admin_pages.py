"""The console's pages: the dashboard, read-only broker records, validated settings, and a pair's
chart that reads only its window however many candles are stored."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketdata.models import Pair
from marketdata.services import candles_ingest
from septrader.models import AuditLog, Node, SystemConfig
from tests.console.conftest import CHART_END, minute_candles
from trading.models import (
    AccountSnapshot,
    BrokerTransaction,
    MaintenanceWindow,
    Order,
    Trade,
    TradingSignal,
    TradingState,
)


def broker_rows() -> dict[str, Any]:
    """One row of each broker-owned or system-written model."""
    now = datetime(2025, 7, 25, 14, 0, tzinfo=UTC)
    signal = TradingSignal.objects.create(
        time=now, pair_id="EUR_USD", direction="BUY", confidence=0.7, price=Decimal("1.17")
    )
    order = Order.objects.create(
        client_id=f"sep-{uuid.uuid4()}",
        account_id="acct",
        signal=signal,
        pair_id="EUR_USD",
        units=Decimal(1000),
        status=Order.Status.FILLED,
    )
    trade = Trade.objects.create(
        account_id="acct",
        broker_trade_id="77",
        order=order,
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.17"),
        opened_at=now,
        unrealized_pl=Decimal("12.5"),
    )
    transaction = BrokerTransaction.objects.create(
        id=9001, account_id="acct", type="ORDER_FILL", time=now, payload={"id": "9001"}
    )
    snapshot = AccountSnapshot.objects.create(
        account_id="acct",
        time=now,
        balance=Decimal(100000),
        nav=Decimal("100012.5"),
        unrealized_pl=Decimal("12.5"),
        margin_used=Decimal(23),
        margin_available=Decimal(99977),
        open_trade_count=1,
    )
    audit = AuditLog.objects.create(actor="ops", action="pair.disable", target="EUR_USD")
    return {
        "tradingsignal": signal,
        "order": order,
        "trade": trade,
        "brokertransaction": transaction,
        "accountsnapshot": snapshot,
        "auditlog": audit,
    }


READ_ONLY = [
    ("trading", "tradingsignal"),
    ("trading", "order"),
    ("trading", "trade"),
    ("trading", "brokertransaction"),
    ("trading", "accountsnapshot"),
    ("septrader", "auditlog"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "model"), READ_ONLY)
def test_broker_owned_and_system_records_can_be_viewed_but_not_added_changed_or_deleted(
    operator_client: Client, app: str, model: str
) -> None:
    row = broker_rows()[model]
    base = f"/admin/{app}/{model}/"

    listing = operator_client.get(base)
    detail = operator_client.get(f"{base}{row.pk}/change/")

    assert listing.status_code == 200 and detail.status_code == 200
    assert f"{base}add/" not in listing.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert operator_client.get(f"{base}add/").status_code == 403
    assert operator_client.post(f"{base}{row.pk}/change/", {}).status_code == 403
    assert operator_client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(row).objects.filter(pk=row.pk).exists()


@pytest.mark.django_db
def test_a_bad_setting_value_shows_a_form_error_naming_the_key_and_changes_nothing(
    operator_client: Client,
) -> None:
    response = operator_client.post(
        "/admin/septrader/systemconfig/add/",
        {"key": "risk.max_open_trades", "value": "-3"},
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "risk.max_open_trades=-3 is not valid" in errors["value"][0]
    assert not SystemConfig.objects.filter(key="risk.max_open_trades").exists()


@pytest.mark.django_db
def test_a_good_setting_value_is_stored_through_the_service_and_audited(
    operator_client: Client,
) -> None:
    url = "/admin/septrader/systemconfig/add/"
    operator_client.post(url, {"key": "risk.max_open_trades", "value": "3"})
    change = "/admin/septrader/systemconfig/risk.max_open_trades/change/"
    response = operator_client.post(change, {"value": "4"})

    assert response.status_code == 302
    setting = SystemConfig.objects.get(key="risk.max_open_trades")
    assert (setting.value, setting.version, setting.updated_by) == (4, 2, "ops")
    entries = AuditLog.objects.filter(action="config.set").order_by("id")
    assert [(e.details["to"], e.address) for e in entries] == [(3, "127.0.0.1"), (4, "127.0.0.1")]


@pytest.mark.django_db
def test_pair_risk_overrides_are_checked_like_settings_and_saved_with_an_audit_entry(
    operator_client: Client,
) -> None:
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    url = f"/admin/marketdata/pair/{eur_usd.pk}/change/"

    refused = operator_client.post(url, {"risk_overrides": '{"max_open_trades": -1}', "node": ""})
    assert refused.status_code == 200
    assert "risk.max_open_trades=-1 is not valid" in str(
        refused.context["adminform"].form.errors["risk_overrides"]
    )
    assert not AuditLog.objects.filter(action="pair.risk_overrides").exists()

    saved = operator_client.post(url, {"risk_overrides": '{"max_open_trades": 2}', "node": ""})
    assert saved.status_code == 302
    eur_usd.refresh_from_db()
    assert eur_usd.risk_overrides == {"max_open_trades": 2}
    assert AuditLog.objects.get(action="pair.risk_overrides").actor == "ops"


@pytest.mark.django_db
def test_the_dashboard_shows_state_market_account_open_trades_and_stream_lag(
    operator_client: Client, settings: Any
) -> None:
    # Given a halted system, an account snapshot with an open trade, and a trading pair
    settings.OPERATOR_TIME_ZONE = "Europe/London"
    broker_rows()
    TradingState.objects.update_or_create(
        pk=1, defaults={"mode": TradingState.Mode.HALTED, "reason": "kill switch"}
    )
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True, state=Pair.State.TRADING)
    candles = minute_candles(CHART_END - timedelta(minutes=5), 5)
    candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1")
    # ... and a trade that lost 40 and closed a minute ago, in today's trading day
    just_now = timezone.now() - timedelta(minutes=1)
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="78",
        pair_id="GBP_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(0),
        open_price=Decimal("1.3"),
        opened_at=just_now - timedelta(seconds=30),
        close_price=Decimal("1.296"),
        closed_at=just_now,
        state=Trade.State.CLOSED,
        realized_pl=Decimal(-40),
    )

    # When the operator opens the console
    page = operator_client.get("/admin/")

    # Then every panel is there with the figures
    html = page.content.decode()
    assert page.status_code == 200
    assert re.search(r'id="trading-mode">Halted \(kill switch\)<', html)
    assert "kill switch" in html
    assert re.search(r'id="market-state">(open|closed)<', html)
    assert "operator time zone Europe/London" in html
    assert re.search(r"\((Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:\d\d (GMT|BST)\)", html)
    # Money in the account currency with two decimals, prices to the pair's display precision
    assert 'id="account-nav">100,012.50 USD<' in html
    assert "Open trades (1, unrealised" in html and "+12.50" in html
    assert "<td>1.17000</td>" in html  # the open trade's price
    assert re.search(r'id="today-pl" class="loss">-40.00', html)
    assert "-40.00 USD on 1 closed trades" in html
    assert 'class="stream-row"><td>EUR_USD</td>' in html
    assert "2025-07-25 20:59Z" in html  # the newest stored candle, for the lag


@pytest.mark.django_db
def test_the_dashboard_counts_paper_trades_apart_from_the_accounts_open_trades(
    operator_client: Client,
) -> None:
    # Given the account's open trade and a paper trade of a pair on paper
    broker_rows()
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="paper-1",
        pair_id="GBP_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.3"),
        opened_at=timezone.now(),
        unrealized_pl=Decimal("-0.20"),
        paper=True,
    )

    html = operator_client.get("/admin/").content.decode()

    # Then the open trades are the account's, and the paper trade is counted on its own line
    assert "Open trades (1, unrealised" in html and "+12.50" in html
    assert "Paper trades open: 1, unrealised" in html and "-0.20" in html
    assert "never at the broker" in html


@pytest.mark.django_db
def test_the_dashboard_lists_unresolved_alerts_and_marks_silent_workers(
    operator_client: Client,
) -> None:
    from monitoring.services import alert_raise, alert_resolve, heartbeats_record

    now = timezone.now()
    alert_raise(
        condition="prices.stale:EUR_USD",
        severity="warning",
        message="No EUR_USD price for 5 minutes on an open market",
    )
    alert_raise(condition="cache.unreachable", severity="critical", message="Redis is down")
    alert_resolve(condition="cache.unreachable")
    heartbeats_record(components=["worker:execution"], now=now)
    heartbeats_record(components=["beat"], now=now - timedelta(minutes=10))

    html = operator_client.get("/admin/").content.decode()

    alerts = html[html.index('id="panel-alerts"') : html.index('id="panel-audit"')]
    assert "Recent alerts (1 unresolved)" in alerts
    assert alerts.index("No EUR_USD price for 5 minutes") < alerts.index("Redis is down")
    beats = html[html.index('id="panel-heartbeats"') : html.index('id="panel-alerts"')]
    assert re.search(r"worker:execution.*?state-ok", beats, re.S)
    assert re.search(r"beat</td>.*?state-down\">10 min<", beats, re.S)


@pytest.mark.django_db
def test_the_dashboard_needs_a_fixed_number_of_queries(operator_client: Client) -> None:
    operator_client.get("/admin/")  # Sessions, content types and the state row settle first.
    with CaptureQueriesContext(connection) as few:
        operator_client.get("/admin/")
    broker_rows()
    for index in range(20):
        Trade.objects.create(
            account_id="acct",
            broker_trade_id=f"t{index}",
            pair_id="GBP_USD",
            initial_units=Decimal(1),
            current_units=Decimal(1),
            open_price=Decimal(1),
            opened_at=CHART_END,
        )
    with CaptureQueriesContext(connection) as many:
        operator_client.get("/admin/")

    assert len(many) <= len(few) + 2  # Account figures run once a snapshot exists.


@pytest.fixture
def a_month_of_candles(db: Any, timescaledb: None) -> int:
    """30 days of EUR/USD minutes (43,200 rows) ending at CHART_END, a signal and a trade."""
    start = CHART_END - timedelta(days=30)
    count = 30 * 24 * 60
    result = candles_ingest(candles=minute_candles(start, count), pair="EUR_USD", timeframe="M1")
    assert result.stored == count
    TradingSignal.objects.create(
        time=CHART_END - timedelta(hours=2), pair_id="EUR_USD", direction="SELL", confidence=0.8
    )
    TradingSignal.objects.create(  # Outside the default window: must not be drawn.
        time=CHART_END - timedelta(days=3), pair_id="EUR_USD", direction="BUY", confidence=0.8
    )
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="501",
        pair_id="EUR_USD",
        initial_units=Decimal(-1000),
        current_units=Decimal(0),
        open_price=Decimal("1.1001"),
        opened_at=CHART_END - timedelta(hours=2) + timedelta(minutes=1),
        close_price=Decimal("1.0995"),
        closed_at=CHART_END - timedelta(hours=1),
        state=Trade.State.CLOSED,
        realized_pl=Decimal("0.60"),
    )
    return count


@pytest.mark.django_db
def test_the_chart_reads_only_its_window_with_a_month_of_minutes_stored(
    operator_client: Client, a_month_of_candles: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The M1 candle reads bypass Django's cursor (marketdata.selectors._rows and _last_m1_bars),
    # so record the reads they make as well as Django's own queries.
    from marketdata import selectors

    candle_reads: list[tuple[str, Any]] = []
    original = selectors._rows

    def recording(queryset: Any, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
        rows = original(queryset, fields)
        candle_reads.append((str(queryset.query), len(rows)))
        return rows

    last_m1 = selectors._last_m1_bars

    def recording_last(pair: str, count: int, until: Any) -> list[Any]:
        rows = last_m1(pair, count, until)
        candle_reads.append((f"last M1 of {pair} LIMIT {count}", len(rows)))
        return rows

    monkeypatch.setattr(selectors, "_rows", recording)
    monkeypatch.setattr(selectors, "_last_m1_bars", recording_last)
    eur_usd = Pair.objects.get(symbol="EUR_USD")

    with CaptureQueriesContext(connection) as queries:
        page = operator_client.get(f"/admin/marketdata/pair/{eur_usd.pk}/chart/")

    html = page.content.decode()
    assert page.status_code == 200
    # Six hours of M1 candles: 360 drawn out of 43,200 stored, the signal and trade overlaid
    assert html.count('<g class="candle ') == 360
    assert html.count('class="signal sell"') == 1 and 'class="signal buy"' not in html
    assert html.count('class="trade-entry short"') == 1 and html.count('class="trade-exit"') == 1
    # Two candle reads: the newest candle (LIMIT 1) to anchor the window, then the window itself
    assert [rows for _, rows in candle_reads] == [1, 360]
    assert "LIMIT 1" in candle_reads[0][0]
    assert '"time" >= 2025-07-25 15:00:00+00:00' in candle_reads[1][0]
    assert '"time" < 2025-07-25 21:00:00+00:00' in candle_reads[1][0]
    # And Django's own queries are a handful, none of them unbounded on the candle table
    assert len(queries) <= 12
    for query in queries:
        if "market_candles" in query["sql"]:
            assert '"time" >=' in query["sql"] or "LIMIT" in query["sql"]


@pytest.mark.django_db
def test_the_chart_draws_hourly_candles_from_the_aggregate_and_reports_bad_parameters(
    operator_client: Client, a_month_of_candles: int
) -> None:
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    url = f"/admin/marketdata/pair/{eur_usd.pk}/chart/"

    hourly = operator_client.get(url, {"timeframe": "H1", "hours": "48"}).content.decode()
    bad = operator_client.get(url, {"timeframe": "D", "hours": "x"})

    assert hourly.count('<g class="candle ') == 48
    assert bad.status_code == 200
    assert "timeframe=&#x27;D&#x27; is not valid; expected one of M1, M5, M15, H1." in (
        bad.content.decode()
    )
    assert bad.content.decode().count('<g class="candle ') == 360


@pytest.mark.django_db
def test_the_chart_of_a_pair_without_candles_says_so(operator_client: Client) -> None:
    pair = Pair.objects.get(symbol="NZD_USD")

    page = operator_client.get(f"/admin/marketdata/pair/{pair.symbol}/chart/")

    assert page.status_code == 200
    assert "No candles in this window." in page.content.decode()


@pytest.mark.django_db
def test_the_candle_list_shows_a_pairs_newest_minutes_first_without_counting_them_all(
    operator_client: Client, a_month_of_candles: int
) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE market_candles")

    with CaptureQueriesContext(connection) as queries:
        page = operator_client.get("/admin/marketdata/candle/", {"pair__symbol__exact": "EUR_USD"})

    html = page.content.decode()
    assert page.status_code == 200
    first_row = html[html.index("<tbody>") : html.index("</tr>", html.index("<tbody>"))]
    assert "July 25, 2025, 8:59 p.m." in first_row
    # The planner's estimate stands in for the count of a big filtered list
    assert any(query["sql"].startswith("EXPLAIN (FORMAT JSON)") for query in queries)
    assert not any("COUNT(*)" in query["sql"] for query in queries)


@pytest.mark.django_db
def test_nodes_added_and_changed_in_the_console_are_audited(operator_client: Client) -> None:
    added = operator_client.post(
        "/admin/septrader/node/add/", {"name": "node-c", "state": "active"}
    )
    assert added.status_code == 302
    node = Node.objects.get(name="node-c")
    changed = operator_client.post(
        f"/admin/septrader/node/{node.pk}/change/", {"name": "node-c", "state": "draining"}
    )
    assert changed.status_code == 302

    entries = AuditLog.objects.filter(action__in=["node.add", "node.change"]).order_by("id")
    assert [(e.action, e.actor, e.target, e.details, e.address) for e in entries] == [
        ("node.add", "ops", "node-c", {"changed": ["name"], "state": "active"}, "127.0.0.1"),
        ("node.change", "ops", "node-c", {"changed": ["state"], "state": "draining"}, "127.0.0.1"),
    ]


@pytest.mark.django_db
def test_maintenance_windows_added_changed_and_deleted_in_the_console_are_audited(
    operator_client: Client,
) -> None:
    form = {
        "starts_at_0": "2030-01-02",
        "starts_at_1": "10:00:00",
        "ends_at_0": "2030-01-02",
        "ends_at_1": "11:00:00",
        "reason": "broker upgrade",
        "pairs": '["EUR_USD"]',
    }
    assert operator_client.post("/admin/trading/maintenancewindow/add/", form).status_code == 302
    window = MaintenanceWindow.objects.get()
    assert window.created_by == "ops"
    url = f"/admin/trading/maintenancewindow/{window.pk}/"
    changed = operator_client.post(f"{url}change/", {**form, "reason": "longer upgrade"})
    assert changed.status_code == 302
    deleted = operator_client.post(f"{url}delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not MaintenanceWindow.objects.exists()

    entries = AuditLog.objects.filter(action__startswith="maintenance.").order_by("id")
    assert [(e.action, e.actor, e.target, e.details, e.address) for e in entries] == [
        (
            "maintenance.add",
            "ops",
            "broker upgrade 2030-01-02 10:00 to 11:00 UTC",
            {"changed": ["starts_at", "ends_at", "reason", "pairs"], "pairs": ["EUR_USD"]},
            "127.0.0.1",
        ),
        (
            "maintenance.change",
            "ops",
            "longer upgrade 2030-01-02 10:00 to 11:00 UTC",
            # As Django's form reports it, the JSON pairs field among the changed ones.
            {"changed": ["reason", "pairs"], "pairs": ["EUR_USD"]},
            "127.0.0.1",
        ),
        (
            "maintenance.delete",
            "ops",
            "longer upgrade 2030-01-02 10:00 to 11:00 UTC",
            {},
            "127.0.0.1",
        ),
    ]


@pytest.mark.django_db
def test_a_pairs_node_and_risk_overrides_changed_together_are_both_audited(
    operator_client: Client,
) -> None:
    node = Node.objects.create(name="node-a")
    eur_usd = Pair.objects.get(symbol="EUR_USD")
    saved = operator_client.post(
        f"/admin/marketdata/pair/{eur_usd.pk}/change/",
        {"risk_overrides": '{"max_open_trades": 2}', "node": str(node.pk)},
    )

    assert saved.status_code == 302
    eur_usd.refresh_from_db()
    assert (eur_usd.node_id, eur_usd.risk_overrides) == (node.pk, {"max_open_trades": 2})
    entries = AuditLog.objects.filter(target="EUR_USD", action__startswith="pair.")
    assert {(e.action, e.actor, e.address) for e in entries} == {
        ("pair.risk_overrides", "ops", "127.0.0.1"),
        ("pair.assign_node", "ops", "127.0.0.1"),
    }
    assert entries.get(action="pair.assign_node").details == {"from": None, "to": "node-a"}
