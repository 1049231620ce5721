"""A stateful fuzz of the API (schemathesis's state machine from the OpenAPI schema, with the
links it infers between operations): sequences of an operator's requests, each step using what
earlier answers returned, never get a server error.

About 30 s on the 2-core machine; the stateless fuzz (tests/api/test_fuzz.py) tries each
operation alone, this one the chains between them (create, then read / change / delete it).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.tokens import RefreshToken

from oandasim.client import SimulatorProcess
from tests.api.conftest import client_for
from tests.api.test_fuzz import keep_the_test_connection

__all__ = ["keep_the_test_connection"]


@pytest.mark.django_db
@pytest.mark.usefixtures("keep_the_test_connection")
def test_chains_of_operator_requests_never_make_the_api_fail(
    users: dict[str, Any], broker: SimulatorProcess
) -> None:
    schema = schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", get_wsgi_application(), headers={"Accept": "application/json"}
    )
    token = f"Bearer {RefreshToken.for_user(users['operator']).access_token}"
    failures: list[str] = []

    class OperatorChains(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": token}}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            if response.status_code >= 500 and response.status_code not in (502, 503):
                failures.append(
                    f"{case.method} {case.formatted_path} query={case.query} "
                    f"body={case.body!r} -> {response.status_code} {response.text[:300]}"
                )

    links = [
        f"{link.source.label} -> {label}"
        for label, entry in OperatorChains._transitions.operations.items()
        for link in entry.incoming
    ]
    OperatorChains.TestCase.settings = settings(
        max_examples=STATEFUL_RUNS,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    OperatorChains.run()

    assert not failures, "\n".join(failures[:20])
    assert links, "schemathesis inferred no links between operations"


STATEFUL_RUNS = 60
STEPS = 8


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/pair-models", "/api/evaluations"])
def test_a_pair_filter_holding_a_nul_character_is_a_400_naming_the_pair(
    users: dict[str, Any], path: str
) -> None:
    # Found by the stateful fuzz: GET /api/pair-models?pair=d%00 was a 500 (DataError).
    response = client_for(users["operator"]).get(path, {"pair": "EUR\x00USD"})

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "pair"
