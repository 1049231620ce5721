"""Every endpoint against every role: anonymous callers get 401, a role below the endpoint's
gets 403, and the roles at or above it get through (to a validation error or a 404 for the
write endpoints, so that nothing is sent to a broker here).

``GET /api/health`` is public by design (statuses only) and tested in tests/monitoring.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from septrader.api.permissions import ROLES

TOO_LONG = "x" * 501
MISSING_UUID = uuid.UUID(int=1)

# (method, url, body, the lowest role allowed)
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("get", "/api/status", None, "viewer"),
    ("get", "/api/trading/status", None, "viewer"),
    ("post", "/api/trading/start", {"reason": TOO_LONG}, "operator"),
    ("post", "/api/trading/stop", {"reason": TOO_LONG}, "operator"),
    ("post", "/api/trading/kill", {"close_trades": "perhaps"}, "operator"),
    ("get", "/api/pairs/status", None, "viewer"),
    ("get", "/api/pairs/active", None, "viewer"),
    ("get", "/api/pairs/EUR_USD", None, "viewer"),
    ("patch", "/api/pairs/EUR_USD", {"node": TOO_LONG}, "operator"),
    ("post", "/api/pairs/EUR_USD/enable", {"force": "perhaps"}, "operator"),
    ("post", "/api/pairs/EUR_USD/disable", {"reason": TOO_LONG}, "operator"),
    ("post", "/api/pairs/EUR_USD/flatten", {"reason": TOO_LONG}, "operator"),
    ("get", "/api/pairs/EUR_USD/advance", None, "viewer"),
    ("post", "/api/pairs/EUR_USD/advance", None, "operator"),
    ("get", "/api/signals", None, "viewer"),
    ("get", f"/api/signals/{MISSING_UUID}", None, "viewer"),
    ("get", "/api/orders", None, "viewer"),
    ("get", "/api/orders/999999", None, "viewer"),
    ("get", "/api/trades", None, "viewer"),
    ("get", "/api/trades/999999", None, "viewer"),
    ("patch", "/api/trades/999999", {"stop_loss": "low"}, "operator"),
    ("post", "/api/trades/999999/close", {"units": TOO_LONG}, "operator"),
    ("get", "/api/performance/daily", None, "viewer"),
    ("get", "/api/candles/EUR_USD", None, "viewer"),
    ("get", "/api/metrics/qfh/EUR_USD", None, "viewer"),
    ("get", "/api/pair-models", None, "viewer"),
    ("get", "/api/pair-models/999999", None, "viewer"),
    ("post", "/api/pair-models/999999/promote", None, "operator"),
    ("get", "/api/evaluations", None, "viewer"),
    ("get", "/api/evaluations/999999", None, "viewer"),
    ("get", "/api/config", None, "viewer"),
    ("patch", "/api/config", {"risk.max_open_trades": "many"}, "admin"),
    ("put", "/api/config/reload", None, "operator"),
    ("post", "/api/sync/pull", None, "operator"),
    ("get", "/api/audit", None, "admin"),
    ("get", "/api/health/detail", None, "viewer"),
    ("get", "/api/alerts", None, "viewer"),
    ("post", "/api/alerts/999999/acknowledge", None, "operator"),
    ("get", "/api/parity", None, "viewer"),
    ("get", "/api/parity/999999", None, "viewer"),
]


def call(client: APIClient, method: str, url: str, body: Any) -> Any:
    return (
        getattr(client, method)(url, body, format="json")
        if body is not None
        else getattr(client, method)(url)
    )


def test_the_matrix_covers_every_endpoint_of_the_schema() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    documented = {
        (method, path)
        for path, operations in schema["paths"].items()
        for method in operations
        if not path.startswith("/api/token/") and path != "/api/health"
    }
    listed = set()
    for method, url, _, _ in ENDPOINTS:
        template = url
        for concrete, placeholder in (
            ("EUR_USD", "{pair}"),
            (str(MISSING_UUID), "{id}"),
            ("999999", "{id}"),
        ):
            template = template.replace(concrete, placeholder)
        listed.add((method, template))
    assert documented == listed


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "url", "body", "lowest"), ENDPOINTS)
@pytest.mark.parametrize("role", [None, *ROLES])
def test_each_endpoint_lets_in_exactly_the_roles_it_should(
    as_role: Callable[[str | None], APIClient],
    role: str | None,
    method: str,
    url: str,
    body: Any,
    lowest: str,
) -> None:
    # Given a client of this role, when it calls the endpoint
    response = call(as_role(role), method, url, body)
    # then anonymous callers must authenticate, lower roles are refused, the others get through.
    if role is None:
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "not_authenticated"
    elif ROLES.index(role) < ROLES.index(lowest):
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "permission_denied"
    else:
        assert response.status_code not in (401, 403, 500), response.content


@pytest.mark.django_db
def test_a_superuser_without_groups_counts_as_admin() -> None:
    from django.contrib.auth.models import User

    from tests.api.conftest import client_for

    root = User.objects.create_superuser("root", password="x")
    response = client_for(root).get("/api/audit")
    assert response.status_code == 200
    assert client_for(root).get("/api/status").json()["role"] == "admin"


@pytest.mark.django_db
def test_a_user_without_a_role_is_refused_everything(db: Any) -> None:
    from tests.api.conftest import client_for, make_user

    response = client_for(make_user(None)).get("/api/status")
    assert response.status_code == 403


@pytest.mark.django_db
def test_set_role_replaces_a_users_role(users: dict[str, Any]) -> None:
    from django.core.management import call_command

    from septrader.api.permissions import role_of
    from septrader.models import AuditLog

    call_command("set_role", "viewer-user", "admin")
    user = type(users["viewer"]).objects.get(username="viewer-user")
    assert role_of(user) == "admin"
    call_command("set_role", "viewer-user", "none")
    user = type(users["viewer"]).objects.get(username="viewer-user")
    assert role_of(user) is None
    assert AuditLog.objects.filter(action="user.role", target="viewer-user").count() == 2
