from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from tests.conftest import SEED_CANDLES


@pytest.mark.django_db
def test_an_operator_sees_the_loaded_candles_read_only_in_the_admin(timescaledb: None) -> None:
    # Given the bundled real EUR/USD minutes and a staff login
    call_command(
        "load_candles", str(SEED_CANDLES), pair="EUR_USD", timeframe="M1", no_progress=True
    )
    admin = User.objects.create_superuser("ops", password="pw-for-test")
    client = Client()
    client.force_login(admin)

    # When the operator opens the candle list filtered to EUR/USD
    page = client.get("/admin/marketdata/candle/", {"pair__symbol__exact": "EUR_USD"})

    # Then the newest real candle is listed, and candles cannot be added or edited by hand
    assert page.status_code == 200
    html = page.content.decode()
    assert "July 25, 2025, 8:59 p.m." in html
    assert "1.17" in html
    assert "/admin/marketdata/candle/add/" not in html


@pytest.mark.django_db
def test_the_pairs_list_shows_the_seeded_majors() -> None:
    admin = User.objects.create_superuser("ops", password="pw-for-test")
    client = Client()
    client.force_login(admin)

    page = client.get("/admin/marketdata/pair/")

    html = page.content.decode()
    assert page.status_code == 200
    for symbol in ("EUR_USD", "USD_JPY", "CHF_JPY", "AUD_NZD"):
        assert symbol in html
    assert "28 pairs" in html
