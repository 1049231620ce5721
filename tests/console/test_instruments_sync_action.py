"""The pairs list's instruments sync: the broker's instruments through the one service, audited
with the operator's name and address."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from marketdata.models import Pair
from oandasim.client import SimulatorProcess
from septrader.models import AuditLog

FIGURES = tuple(name for name in Pair.BROKER_FIGURES if name != "financing")


def figures(symbol: str) -> tuple[Any, ...]:
    pair = Pair.objects.get(symbol=symbol)
    return tuple(getattr(pair, name) for name in FIGURES)


@pytest.mark.django_db
def test_the_admin_action_syncs_the_instruments_and_audits_the_operator(
    simulator: SimulatorProcess, operator_client: Client
) -> None:
    # When the operator picks the action on the pairs list
    response = operator_client.post(
        "/admin/marketdata/pair/",
        {
            "action": "sync_instruments",
            "_selected_action": [str(Pair.objects.get(symbol="EUR_USD").pk)],
        },
        follow=True,
    )

    # Then the pairs are created with the broker's figures and the page and the audit say so
    assert response.status_code == 200
    assert "Instruments sync: created=4 (XAU_USD, XAG_USD, BTC_USD, ETH_USD)" in (
        response.content.decode()
    )
    assert figures("XAU_USD") == ("METAL", -2, 3, 0, Decimal(1), Decimal(100_000), Decimal("0.05"))
    entry = AuditLog.objects.get(action="instruments.sync")
    assert (entry.actor, entry.address) == ("ops", "127.0.0.1")


@pytest.mark.django_db
def test_the_admin_action_reports_an_unreachable_broker_instead_of_failing(
    operator_client: Client, settings: Any
) -> None:
    # Given a broker that cannot be reached
    settings.OANDA_API_URL = "http://127.0.0.1:9"
    settings.OANDA_TOKEN, settings.OANDA_ACCOUNT_ID = "token", "101-001-0000000-009"

    # When the operator picks the action
    response = operator_client.post(
        "/admin/marketdata/pair/",
        {
            "action": "sync_instruments",
            "_selected_action": [str(Pair.objects.get(symbol="EUR_USD").pk)],
        },
        follow=True,
    )

    # Then the page says so, and nothing is written
    assert "Instruments sync: the broker could not be reached" in response.content.decode()
    assert Pair.objects.count() == 28
    assert not AuditLog.objects.filter(action="instruments.sync").exists()
