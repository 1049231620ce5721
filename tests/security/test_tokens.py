"""JWT cases beyond tests/api/test_auth.py (which covers expiry, an edited payload, rotation,
logout's blacklist and the lockout): forged headers, foreign keys, the wrong kind of token, a
replayed refresh after logout of a rotated session, and a deactivated user."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.api.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refresh(token: str) -> Any:
    return APIClient().post("/api/token/refresh/", {"refresh": token}, format="json")


def test_an_unsigned_alg_none_token_is_refused(users: dict[str, Any]) -> None:
    claims = dict(AccessToken.for_user(users["admin"]).payload)
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert bearer(forged).get("/api/status").status_code == 401


def test_a_token_signed_with_another_key_is_refused(users: dict[str, Any]) -> None:
    claims = dict(AccessToken.for_user(users["admin"]).payload)
    forged = jwt.encode(claims, "not-the-servers-key-" * 3, algorithm="HS256")
    assert bearer(forged).get("/api/status").status_code == 401


def test_a_refresh_token_does_not_open_the_api_and_an_access_token_does_not_refresh(
    users: dict[str, Any],
) -> None:
    session = RefreshToken.for_user(users["operator"])
    assert bearer(str(session)).get("/api/status").status_code == 401
    assert refresh(str(session.access_token)).status_code == 401


def test_no_refresh_token_of_a_rotated_session_works_after_logout(users: dict[str, Any]) -> None:
    # Given a session refreshed twice (each refresh rotates the refresh token)
    login = APIClient().post(
        "/api/token/", {"username": "operator-user", "password": PASSWORD}, format="json"
    )
    chain = [login.json()["refresh"]]
    for _ in range(2):
        chain.append(refresh(chain[-1]).json()["refresh"])
    # When the operator logs out with the newest one
    out = APIClient().post("/api/token/blacklist/", {"refresh": chain[-1]}, format="json")
    assert out.status_code == 200
    # Then replaying any refresh token of the session gets nothing
    for token in chain:
        replay = refresh(token)
        assert replay.status_code == 401
        assert "access" not in replay.json()


def test_the_tokens_of_a_deactivated_user_stop_working(users: dict[str, Any]) -> None:
    session = RefreshToken.for_user(users["operator"])
    users["operator"].is_active = False
    users["operator"].save()
    assert bearer(str(session.access_token)).get("/api/status").status_code == 401
    assert refresh(str(session)).status_code == 401
