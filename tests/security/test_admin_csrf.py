"""The console's forms and actions refuse a POST without the CSRF token, even from a logged-in
operator (the browser of an operator visiting a hostile page carries the session cookie)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from marketdata.models import Pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(db: Any) -> Client:
    user = User.objects.create_superuser("ops", email="ops@example.com", password="pw-csrf-test")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client: Client, url: str) -> str:
    """The token a real browser gets from the page holding the form."""
    response = client.get(url)
    assert response.status_code == 200
    return str(response.context["csrf_token"])


def test_an_admin_change_form_needs_the_csrf_token(staff_client: Client) -> None:
    url = "/admin/auth/group/add/"
    refused = staff_client.post(url, {"name": "traders"})
    assert refused.status_code == 403
    assert not Group.objects.filter(name="traders").exists()

    token = csrf_token(staff_client, url)
    accepted = staff_client.post(url, {"name": "traders", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert Group.objects.filter(name="traders").exists()


def test_an_admin_action_needs_the_csrf_token(staff_client: Client) -> None:
    from trading.services import pair_enable

    pair_enable(symbol="EUR_USD", actor="setup", force=True)
    url = "/admin/marketdata/pair/"
    form = {
        "action": "disable_pairs",
        "_selected_action": [str(Pair.objects.get(symbol="EUR_USD").pk)],
    }

    refused = staff_client.post(url, form)
    assert refused.status_code == 403
    assert Pair.objects.get(symbol="EUR_USD").enabled

    token = csrf_token(staff_client, url)
    accepted = staff_client.post(url, {**form, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert not Pair.objects.get(symbol="EUR_USD").enabled


def test_a_session_write_to_the_api_needs_the_csrf_token_too(staff_client: Client) -> None:
    # The browsable API and the docs page use the console's session (septrader/settings.py).
    refused = staff_client.post(
        "/api/trading/stop", {"reason": "csrf"}, content_type="application/json"
    )
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
