"""A property-based fuzz of the API from its own OpenAPI schema (schemathesis): whatever an
operator sends, valid or not, the answer is never a server error, and every error is in the
API's one shape. Bodies the schema cannot describe (nested 100,000 deep, larger than the body
limit) are sent to a few endpoints by hand below.

About 20 to 40 s on the 2-core machine: each of the ~37 operations gets a bounded number of
generated requests, which is what finds the 500s that hand-written cases miss.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework_simplejwt.tokens import RefreshToken

from oandasim.client import SimulatorProcess
from tests.api.conftest import client_for

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def keep_the_test_connection() -> Any:
    """Requests go through the real WSGI handler, which closes the database connection after
    each one; Django's test client disconnects that signal, and so do we, so every request runs
    inside the test's transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
def test_no_generated_request_makes_the_api_fail(
    users: dict[str, Any], broker: SimulatorProcess
) -> None:
    # Given the schema the API serves, and an operator's token
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers={"Accept": "application/json"}
    )
    token = f"Bearer {RefreshToken.for_user(users['operator']).access_token}"
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 30

    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            # When a generated request is sent with the operator's token
            response = case.call(headers={"Authorization": token})
            # then the API answers it without a server error, and errors have the one shape.
            if response.status_code >= 500 and response.status_code not in (502, 503):
                failures.append(
                    f"{case.method} {case.formatted_path} "
                    f"query={case.query} body={case.body!r} -> {response.status_code} "
                    f"{response.text[:300]}"
                )
            # /api/health answers 503 with its own body (the statuses) while a component is down.
            elif response.status_code >= 400 and case.path != "/api/health":
                body = response.json()
                assert set(body["error"]) == {"code", "message", "field"}, body

        fuzz()

    assert not failures, "\n".join(failures[:20])


# Endpoints that read a JSON body, public and not: (method, path, role).
BODY_ENDPOINTS = [
    ("post", "/api/token/", None),
    ("post", "/api/token/refresh/", None),
    ("patch", "/api/config", "admin"),
    ("post", "/api/trading/stop", "operator"),
    ("patch", "/api/pairs/EUR_USD", "admin"),
    ("post", "/api/trades/1/close", "operator"),
]
DEPTH = 100_000


def deep_arrays() -> str:
    return "[" * DEPTH + "]" * DEPTH


def deep_objects() -> str:
    return '{"a":' * DEPTH + "1" + "}" * DEPTH


def oversized() -> str:
    # Valid JSON, one byte over the limit.
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return '{"username": "' + "x" * (limit - 15) + '"}'


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "role"), BODY_ENDPOINTS)
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (deep_arrays, 400, "malformed"),
        (deep_objects, 400, "malformed"),
        (oversized, 413, "too_large"),
    ],
    ids=["nested-arrays", "nested-objects", "oversized"],
)
def test_a_body_nested_too_deep_or_too_large_is_refused_in_the_error_shape_without_a_server_error(
    users: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    role: str | None,
    body: Any,
    status: int,
    code: str,
) -> None:
    # Given a client (anonymous for the token endpoints) and a body the parser must not swallow
    client = client_for(users[role] if role else None)
    text = body()

    # When it is sent as JSON
    with caplog.at_level(logging.WARNING):
        response = getattr(client, method)(path, text, content_type="application/json")

    # Then the answer is a 400 or 413 in the one error shape, naming the limit
    assert response.status_code == status, response.content[:300]
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    assert error["code"] == code
    limit_name = "API_MAX_JSON_DEPTH" if status == 400 else "REQUEST_MAX_BODY_BYTES"
    assert limit_name in error["message"]
    # And nothing was logged as a server error (no traceback)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, [record.getMessage()[:200] for record in errors]
