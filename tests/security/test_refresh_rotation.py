"""A refresh token is exchanged exactly once, even by simultaneous requests, and presenting one
again revokes every refresh token of its login, the reuse detection of the OAuth 2.0 Security
BCP (septrader/tokens.py)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from septrader.models import AuditLog
from tests.api.conftest import PASSWORD


def login(username: str = "operator-user") -> dict[str, str]:
    response = APIClient().post(
        "/api/token/", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    return dict(response.json())


def refresh(token: str) -> Any:
    return APIClient().post("/api/token/refresh/", {"refresh": token}, format="json")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_simultaneous_refreshes_with_one_token_give_exactly_one_new_token(
    live_server: Any, users: dict[str, Any]
) -> None:
    # Given a login's refresh token, sent by four clients at the same moment to the running
    # server (a thread per request, each with its own database connection)
    tokens = requests.post(
        f"{live_server.url}/api/token/",
        json={"username": "operator-user", "password": PASSWORD},
        timeout=30,
    ).json()
    start = threading.Barrier(4)
    answers: list[requests.Response] = []

    def exchange() -> None:
        start.wait()
        answers.append(
            requests.post(
                f"{live_server.url}/api/token/refresh/",
                json={"refresh": tokens["refresh"]},
                timeout=30,
            )
        )

    clients = [threading.Thread(target=exchange) for _ in range(4)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()

    # Then exactly one gets a new refresh token; the others are refused as reuses
    assert sorted(answer.status_code for answer in answers) == [200, 401, 401, 401]
    issued = next(answer.json() for answer in answers if answer.status_code == 200)
    refused = [answer.json()["error"] for answer in answers if answer.status_code == 401]
    assert all(error["code"] == "authentication_failed" for error in refused)
    # And since the token was presented again, the new one of its family is revoked too
    again = requests.post(
        f"{live_server.url}/api/token/refresh/", json={"refresh": issued["refresh"]}, timeout=30
    )
    assert again.status_code == 401
    assert "access" not in again.json()
    assert AuditLog.objects.filter(action="auth.refresh_reuse", target="operator-user").exists()


@pytest.mark.django_db
def test_reusing_a_rotated_refresh_token_revokes_every_refresh_token_of_its_login(
    users: dict[str, Any],
) -> None:
    # Given a login refreshed twice, and another login of the same user
    session = [login()["refresh"]]
    for _ in range(2):
        answer = refresh(session[-1])
        assert answer.status_code == 200
        session.append(answer.json()["refresh"])
    other_login = login()["refresh"]
    # When the first refresh token of the session is presented again
    reuse = refresh(session[0])
    # Then it is refused, and so is every token of the session, the newest included
    assert reuse.status_code == 401
    assert "already used" in reuse.json()["error"]["message"]
    for token in session:
        replay = refresh(token)
        assert replay.status_code == 401
        assert "access" not in replay.json()
    # But the other login of the same user is another family and still works
    assert refresh(other_login).status_code == 200
    # And each reuse is audited; the first one revoked the one live token of the session
    entries = AuditLog.objects.filter(action="auth.refresh_reuse").order_by("id")
    assert [entry.details["revoked"] for entry in entries] == [1, 0, 0, 0]
    assert {(entry.actor, entry.target) for entry in entries} == {("operator-user",) * 2}


@pytest.mark.django_db
def test_a_refresh_keeps_a_session_going_while_each_token_is_used_once(
    users: dict[str, Any],
) -> None:
    token = login()["refresh"]
    for _ in range(3):
        answer = refresh(token)
        assert answer.status_code == 200
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {answer.json()['access']}")
        assert client.get("/api/status").json()["user"] == "operator-user"
        token = answer.json()["refresh"]
    assert not AuditLog.objects.filter(action="auth.refresh_reuse").exists()
