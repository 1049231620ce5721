"""Secrets never reach the logs, the database, error pages or the public health endpoint.

A realistic slice of the system runs with distinctive secrets: the real OANDA client against the
project's simulator (token T), a signal executed to a filled order, a reconciliation, the broker
failing with 503s (retries, then an error), and `manage.py health --json`. Every log record of
every logger at DEBUG (SQL included), everything printed, every text of every row of every table
and the errors raised are then searched for each secret.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings

from marketdata.oanda import OandaClient, OandaConfig, OandaError
from oandasim.client import SimulatorProcess
from tests.conftest import SEED_CANDLES
from tests.trading.conftest import THURSDAY, make_signal, trading_pair
from trading.execution import signal_execute
from trading.reconciliation import account_reconcile

OANDA_TOKEN = "oanda-token-SECRET-7f3a9c21e5d84b06"
ACCOUNT = "101-001-0000000-011"
SECRETS = {
    "OANDA_TOKEN": OANDA_TOKEN,
    "SECRET_KEY": "django-secret-key-SECRET-" + "k" * 40,
    "METRICS_TOKEN": "metrics-token-SECRET-0b1c2d3e",
    "EMAIL_HOST_PASSWORD": "smtp-password-SECRET-44aa",
    "TELEGRAM_BOT_TOKEN": "123456:telegram-SECRET-ZZyy",
    "SEPTRADER_SYNC_SECRET": "sync-secret-SECRET-9e8d7c",
}


@pytest.fixture
def secret_settings(settings: Any) -> Iterator[SimulatorProcess]:
    from trading import execution

    for name, value in SECRETS.items():
        setattr(settings, name, value)
    with SimulatorProcess(
        token=OANDA_TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", THURSDAY, "--paused"),
            *("--rate-limit", "0"),
        ],
    ) as simulator:
        settings.OANDA_API_URL = simulator.base_url
        settings.OANDA_STREAM_URL = simulator.base_url
        settings.OANDA_ACCOUNT_ID = ACCOUNT
        execution._clients.__dict__.clear()
        yield simulator
        execution._clients.__dict__.clear()


def everything_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    # The SQL of every query is logged too (Django only does so with a debug cursor).
    connection.force_debug_cursor = True


def every_stored_text() -> str:
    rows = []
    for model in apps.get_models():
        for row in model._default_manager.all().values_list():
            rows.append(f"{model._meta.label}: {row!r}")
    return "\n".join(rows)


def assert_no_secret_in(text: str, where: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"{name} appears in {where}"


@pytest.mark.django_db(transaction=False)
def test_a_run_of_trading_reconciliation_broker_errors_and_health_leaks_no_secret(
    secret_settings: SimulatorProcess,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    redis_url: str,
) -> None:
    import requests

    everything_logged_at_debug(caplog)
    raised: list[str] = []
    try:
        # A signal executed to a filled order with its stops, then a reconciliation pass.
        trading_pair()
        outcome = signal_execute(signal_id=make_signal(direction="BUY").pk)
        assert outcome.status == "executed", outcome.reason
        assert account_reconcile() is not None

        # The broker answers 503 twice (retried), then keeps failing until the client gives up.
        def fault(count: int) -> None:
            requests.post(
                f"{secret_settings.base_url}/__sim/fault",
                json={"status": 503, "count": count},
                headers={"Authorization": f"Bearer {OANDA_TOKEN}"},
                timeout=10,
            ).raise_for_status()

        fault(2)
        assert account_reconcile() is not None
        fault(10)
        impatient = OandaClient(
            OandaConfig(
                token=OANDA_TOKEN,
                account_id=ACCOUNT,
                api_url=secret_settings.base_url,
                max_attempts=2,
                backoff_base=0.01,
            )
        )
        with pytest.raises(OandaError) as failure:
            account_reconcile(client=impatient)
        raised += [str(failure.value), repr(failure.value), repr(impatient), repr(impatient.config)]
        logging.getLogger("tests.security").exception("the broker failed", exc_info=failure.value)

        # The health command, as the healthchecks run it.
        out = io.StringIO()
        # Degraded or down here (no workers): only the output matters.
        with contextlib.suppress(SystemExit):
            call_command("health", "--json", stdout=out, stderr=out)
        raised.append(out.getvalue())
        assert '"components"' in out.getvalue() or '"status"' in out.getvalue()
    finally:
        connection.force_debug_cursor = False

    printed = capfd.readouterr()
    logged = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    # The capture saw the broker's failures and every SQL statement.
    assert "event=oanda_retry" in logged and 'INSERT INTO "trading_orders"' in logged
    assert_no_secret_in(logged, "the logs")
    assert_no_secret_in(printed.out + printed.err, "stdout/stderr")
    assert_no_secret_in("\n".join(raised), "errors and command output")
    stored = every_stored_text()
    assert "EUR_USD" in stored  # the dump did read the trading tables
    assert_no_secret_in(stored, "the database")


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="tests.security.boom_urls", DEBUG=False)
def test_a_server_error_page_shows_no_settings_and_no_secret(settings: Any) -> None:
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    client = Client(raise_request_exception=False)
    for url in ("/boom/", "/api/boom/"):
        response = client.get(url)
        assert response.status_code == 500
        body = response.content.decode()
        assert_no_secret_in(body, f"the error page of {url}")
        for leak in ("Traceback", "SECRET_KEY", "DATABASES", "settings", "RuntimeError"):
            assert leak not in body, f"{url} shows {leak}"
    assert client.get("/api/boom/").json()["error"]["code"] == "server_error"


@pytest.mark.django_db
def test_the_public_health_endpoint_reveals_no_secret_or_address(
    settings: Any, redis_url: str
) -> None:
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.OANDA_API_URL = "https://api-fxpractice.example/"
    body = Client().get("/api/health").content.decode()
    assert_no_secret_in(body, "/api/health")
    database = connection.settings_dict
    for private in (settings.OANDA_API_URL, settings.CELERY_BROKER_URL, str(database["NAME"])):
        assert private not in body
