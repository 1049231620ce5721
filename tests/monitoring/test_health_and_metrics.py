"""The health command and endpoints, and the Prometheus endpoint, against the real servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client, override_settings

from marketdata.models import Pair
from monitoring import selectors
from monitoring.models import Heartbeat
from monitoring.services import alert_raise, heartbeats_record
from trading.models import AccountSnapshot, Order


def run_health(*args: str) -> tuple[int, str]:
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("health", *args, stdout=out)
    return int(exit_info.value.code or 0), out.getvalue()


@pytest.fixture(autouse=True)
def fresh_public_report() -> None:
    selectors._public_report = None


def test_the_health_command_exits_0_1_or_2_as_components_are_healthy_degraded_or_down(
    db: Any,
) -> None:
    # The database and cache answer
    code, output = run_health("--component", "database", "--component", "cache")
    assert code == 0
    assert output.splitlines()[-1] == "overall: ok"

    # A worker queue without heartbeats is down, and says why
    code, output = run_health("--json", "--component", "worker:execution")
    report = json.loads(output)
    assert code == 2 and report["status"] == "down"
    [worker] = report["components"]
    assert worker["name"] == "worker:execution"
    assert "no worker consumes the execution queue" in worker["reason"]

    # A fresh heartbeat makes it healthy, with its last success
    heartbeats_record(components=["worker:execution"], details={"hostname": "droplet-1"})
    code, output = run_health("--json", "--component", "worker:execution")
    [worker] = json.loads(output)["components"]
    assert code == 0 and worker["status"] == "ok" and worker["last_success"]
    assert "droplet-1" in worker["reason"]

    # A stale one is down again, and the last success is kept
    Heartbeat.objects.update(last_seen=datetime.now(UTC) - timedelta(minutes=5))
    code, output = run_health("--json", "--component", "worker:execution")
    [worker] = json.loads(output)["components"]
    assert code == 2 and "last heartbeat 300 s ago" in worker["reason"]

    # Disk over its threshold is degraded (exit 1)
    from septrader.services import config_set

    config_set(key="monitoring.disk_percent", value=0)
    code, output = run_health("--json", "--component", "disk")
    assert code == 1 and json.loads(output)["components"][0]["status"] == "degraded"


def test_an_unknown_component_is_refused_with_the_accepted_names(db: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--component 'gpu' is unknown; expected one of"):
        call_command("health", "--component", "gpu")


def test_the_public_health_endpoint_gives_statuses_only_and_the_detail_needs_a_login(
    db: Any,
) -> None:
    client = Client()
    response = client.get("/api/health")
    body = response.json()
    # Nothing is running in this test: no workers, beat, streamer or OANDA account.
    assert response.status_code == 503 and body["status"] == "down"
    assert body["components"]["database"] == "ok"
    assert body["components"]["worker:qfh"] == "down"
    assert "reason" not in json.dumps(body)

    assert client.get("/api/health/detail").status_code in (401, 403)
    user = User.objects.create_user("ops", password="secret-password")
    client.force_login(user)
    assert client.get("/api/health/detail").status_code == 403  # no role yet
    user.groups.add(Group.objects.get(name="viewer"))
    alert_raise(condition="orders.burst", severity="critical", message="30 orders in 60 s")
    detail = client.get("/api/health/detail").json()
    reasons = {item["name"]: item["reason"] for item in detail["components"]}
    assert "OANDA_TOKEN must be set" in reasons["oanda"]
    assert all(
        {"status", "last_success", "latency_ms", "reason"} <= set(item)
        for item in detail["components"]
    )
    assert detail["alerts"][0]["condition"] == "orders.burst"

    url = f"/api/alerts/{detail['alerts'][0]['id']}/acknowledge"
    assert client.post(url).status_code == 403  # a viewer reads, an operator acknowledges
    user.groups.add(Group.objects.get(name="operator"))
    acknowledged = client.post(url)
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"] == "ops"
    assert client.post("/api/alerts/999999/acknowledge").status_code == 404


@override_settings(METRICS_TOKEN="scrape-token")
def test_metrics_need_the_token_or_staff_and_expose_the_trading_gauges(db: Any) -> None:
    now = datetime.now(UTC)
    AccountSnapshot.objects.create(
        account_id="101-1",
        time=now,
        balance=100000,
        nav="100123.45",
        unrealized_pl=0,
        margin_used="2500",
        margin_available=97000,
    )
    Order.objects.create(
        client_id="m1",
        account_id="101-1",
        pair_id="EUR_USD",
        units=1000,
        status="filled",
        sent_at=now,
        filled_at=now + timedelta(milliseconds=300),
    )
    alert_raise(condition="orders.burst", severity="critical", message="x")
    client = Client()

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token")
    assert response.status_code == 200
    text = response.content.decode()
    for line in (
        "septrader_nav 100123.45",
        "septrader_margin_used 2500.0",
        "septrader_open_trades 0.0",
        'septrader_alerts_open{severity="critical"} 1.0',
        'septrader_order_latency_seconds_bucket{le="0.5"} 1.0',
        'septrader_order_latency_seconds_bucket{le="0.25"} 0.0',
        'septrader_celery_queue_depth{queue="execution"}',
        'septrader_component_status{component="database"} 0.0',
        "septrader_http_requests_total{",
        "septrader_signals_last_minute 0.0",
    ):
        assert line in text, line

    staff = User.objects.create_user("admin", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200


def test_bitcoins_prices_are_expected_through_the_fx_weekend_and_the_euros_are_not(
    db: Any, broker_clock: Any
) -> None:
    # Given the broker's clock on a Saturday, bitcoin and the euro enabled, neither priced lately
    Pair.objects.create(
        symbol="BTC_USD",
        instrument_type=Pair.InstrumentType.CFD,
        pip_location=0,
        display_precision=1,
        trade_units_precision=2,
        enabled=True,
        state=Pair.State.TRADING,
    )
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True, state=Pair.State.TRADING)
    broker_clock(datetime(2026, 1, 10, 12, 0, tzinfo=UTC))

    # When the health of their prices is checked
    code, output = run_health("--json", "--component", "prices")
    checked = {c["name"]: c for c in json.loads(output)["components"]}

    # Then bitcoin's silence is degraded (crypto trades on Saturdays), the euro's is expected
    assert checked["prices:BTC_USD"]["status"] == "degraded"
    assert "no BTC_USD price" in checked["prices:BTC_USD"]["reason"]
    assert checked["prices:EUR_USD"]["status"] == "ok"
    assert checked["prices:EUR_USD"]["reason"] == "the market is closed"
    assert code == 1
