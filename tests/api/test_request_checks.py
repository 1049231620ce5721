"""What every API request checks, as cheaply as bench/api.py needs: the user and role read in one
statement (never remembered between requests) and the rate counted in Redis."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from septrader.api import throttles
from tests.api.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

# 10 s into a window of a minute, whatever the wall clock says.
WINDOW_START = 1_800_000_000 // 60 * 60


@pytest.fixture
def three_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    rates = {**throttles.UserRateThrottle.THROTTLE_RATES, "user": "3/min"}
    monkeypatch.setattr(throttles.UserRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(throttles.UserRateThrottle, "timer", lambda self: WINDOW_START + 10.0)


def test_a_user_over_the_rate_waits_for_the_next_window_and_other_users_do_not(
    users: dict[str, Any], three_a_minute: None
) -> None:
    # Given a rate of three requests a minute
    viewer = client_for(users["viewer"])
    # When the viewer asks four times in one window
    statuses = [viewer.get("/api/pairs/status").status_code for _ in range(4)]
    # Then the fourth is refused until the window ends, 50 s later
    assert statuses == [200, 200, 200, 429]
    refused = viewer.get("/api/pairs/status")
    assert refused.json()["error"]["code"] == "throttled"
    assert refused.headers["Retry-After"] == "50"
    # And another user still gets through
    assert client_for(users["operator"]).get("/api/pairs/status").status_code == 200


def test_a_role_taken_away_is_refused_on_the_very_next_request(users: dict[str, Any]) -> None:
    # Given a viewer whose token works
    viewer = client_for(users["viewer"])
    assert viewer.get("/api/pairs/status").status_code == 200
    # When the role is taken away, the token unchanged
    users["viewer"].groups.clear()
    # Then the same token is refused at once
    assert viewer.get("/api/pairs/status").status_code == 403


def test_a_role_given_as_a_user_permission_counts_like_a_group(db: Any) -> None:
    # Given a user with no group but the operator permission of their own
    user = make_user(None, "direct-operator")
    user.user_permissions.add(Permission.objects.get(codename="api_control"))
    # Then they are an operator: their role shows and a viewer's reads are open to them
    client = client_for(user)
    assert client.get("/api/status").json()["role"] == "operator"
    assert client.get("/api/pairs/status").status_code == 200
    # And a group's higher role wins over it
    user.groups.add(Group.objects.get(name="admin"))
    assert client.get("/api/status").json()["role"] == "admin"


def test_the_token_of_a_deleted_user_is_refused(users: dict[str, Any]) -> None:
    viewer = client_for(users["viewer"])
    users["viewer"].delete()
    assert viewer.get("/api/pairs/status").status_code == 401


def test_the_public_health_check_is_in_the_schema_and_never_throttled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.test import APIClient

    # The schema documents GET /api/health alone, with its body for 200 and 503
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = schema["paths"]["/api/health"]
    assert list(operations) == ["get"]
    assert {"200", "503"} <= set(operations["get"]["responses"])
    # Given anonymous and user rates of three requests a minute
    for throttle in (throttles.AnonRateThrottle, throttles.UserRateThrottle):
        rates = {**throttle.THROTTLE_RATES, "anon": "3/min", "user": "3/min"}
        monkeypatch.setattr(throttle, "THROTTLE_RATES", rates)
    # When a load balancer polls it 60 times, anonymously
    client = APIClient()
    answers = [client.get("/api/health") for _ in range(60)]
    # Then every call is answered with the statuses, none throttled (nothing runs here: 503)
    assert {answer.status_code for answer in answers} <= {200, 503}
    assert all(set(answer.json()) == {"status", "checked_at", "components"} for answer in answers)
    # And it stays JSON whatever the client accepts, for GET only
    assert client.get("/api/health", HTTP_ACCEPT="text/plain").json()["status"]
    assert client.post("/api/health").status_code == 405
    assert client.head("/api/health").status_code == 405
