"""A property-based fuzz of the API from its own OpenAPI schema (schemathesis): whatever an
operator sends, valid or not, the answer is never a server error, and every error is in the
API's one shape.

About 20 to 40 s on the 2-core machine: each of the ~37 operations gets a bounded number of
generated requests, which is what finds the 500s that hand-written cases miss.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework_simplejwt.tokens import RefreshToken

from oandasim.client import SimulatorProcess

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
            elif response.status_code >= 400:
                body = response.json()
                assert set(body["error"]) == {"code", "message", "field"}, body

        fuzz()

    assert not failures, "\n".join(failures[:20])
