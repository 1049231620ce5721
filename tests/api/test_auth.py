"""Tokens: login, expiry, refresh with rotation and blacklisting, tampering, throttling, lockout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from septrader.models import AuditLog
from tests.api.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(username: str, password: str = PASSWORD, **extra: Any) -> Any:
    return APIClient().post(
        "/api/token/", {"username": username, "password": password}, format="json", **extra
    )


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_login_returns_tokens_that_open_the_api(users: dict[str, Any]) -> None:
    response = login("viewer-user")
    assert response.status_code == 200
    tokens = response.json()
    assert bearer(tokens["access"]).get("/api/status").json()["role"] == "viewer"


def test_a_wrong_password_is_a_401_in_the_error_shape(users: dict[str, Any]) -> None:
    response = login("viewer-user", "wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_the_access_token_lives_15_minutes_and_the_refresh_token_a_day(
    users: dict[str, Any],
) -> None:
    tokens = login("viewer-user").json()
    access = AccessToken(tokens["access"])
    assert access["exp"] - access["iat"] == 15 * 60
    from rest_framework_simplejwt.tokens import RefreshToken

    refresh = RefreshToken(tokens["refresh"])
    assert refresh["exp"] - refresh["iat"] == 24 * 3600


def test_an_expired_access_token_is_refused(users: dict[str, Any]) -> None:
    token = AccessToken.for_user(users["viewer"])
    token.set_exp(lifetime=-timedelta(seconds=1))
    response = bearer(str(token)).get("/api/status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_tampered_token_is_refused(users: dict[str, Any]) -> None:
    # Given a viewer's token whose payload is edited to name the admin user
    import base64
    import json

    header, payload, signature = str(AccessToken.for_user(users["viewer"])).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(users["admin"].pk)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    # then the signature no longer matches and the API refuses it.
    response = bearer(f"{header}.{forged}.{signature}").get("/api/audit")
    assert response.status_code == 401


def test_a_refresh_rotates_the_refresh_token_and_the_old_one_stops_working(
    users: dict[str, Any],
) -> None:
    tokens = login("operator-user").json()
    first = APIClient().post("/api/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    assert first.json()["refresh"] != tokens["refresh"]
    assert bearer(first.json()["access"]).get("/api/status").status_code == 200
    again = APIClient().post("/api/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401


def test_a_blacklisted_refresh_token_cannot_be_refreshed(users: dict[str, Any]) -> None:
    tokens = login("operator-user").json()
    out = APIClient().post("/api/token/blacklist/", {"refresh": tokens["refresh"]}, format="json")
    assert out.status_code == 200
    again = APIClient().post("/api/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401


def test_verify_tells_a_valid_token_from_a_garbled_one(users: dict[str, Any]) -> None:
    tokens = login("viewer-user").json()
    assert (
        APIClient()
        .post("/api/token/verify/", {"token": tokens["access"]}, format="json")
        .status_code
        == 200
    )
    assert (
        APIClient().post("/api/token/verify/", {"token": "abc.def.ghi"}, format="json").status_code
        == 401
    )


def test_a_username_is_locked_after_five_failures_even_with_the_right_password(
    users: dict[str, Any],
) -> None:
    locked = {
        "code": "locked_out",
        "message": "Too many failed logins for this username; try again later.",
        "field": "username",
    }
    for _ in range(4):
        assert login("admin-user", "guess", REMOTE_ADDR="10.0.0.7").status_code == 401
    # The fifth failure locks the username, and says so.
    fifth = login("admin-user", "guess", REMOTE_ADDR="10.0.0.7")
    assert (fifth.status_code, fifth.json()["error"]) == (429, locked)
    response = login("admin-user", REMOTE_ADDR="10.0.0.8")
    assert response.status_code == 429
    assert response.json()["error"] == locked
    entry = AuditLog.objects.get(action="auth.lockout")
    assert (entry.target, entry.address) == ("admin-user", "10.0.0.7")
    # Another user is not affected.
    assert login("viewer-user", REMOTE_ADDR="10.0.0.9").status_code == 200


def test_a_successful_login_clears_the_failures(users: dict[str, Any]) -> None:
    for _ in range(4):
        login("admin-user", "guess", REMOTE_ADDR="10.0.1.1")
    assert login("admin-user", REMOTE_ADDR="10.0.1.2").status_code == 200
    for _ in range(4):
        login("admin-user", "guess", REMOTE_ADDR="10.0.1.3")
    assert login("admin-user", REMOTE_ADDR="10.0.1.4").status_code == 200


def test_logins_from_one_address_are_throttled(users: dict[str, Any]) -> None:
    statuses = [
        login(f"nobody-{n}", "guess", REMOTE_ADDR="10.0.2.1").status_code for n in range(11)
    ]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429
    assert login("viewer-user", REMOTE_ADDR="10.0.2.1").json()["error"]["code"] == "throttled"
    # Another address still logs in.
    assert login("viewer-user", REMOTE_ADDR="10.0.2.2").status_code == 200


def test_cors_is_closed_by_default(users: dict[str, Any]) -> None:
    response = APIClient().options(
        "/api/status",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "access-control-allow-origin" not in response.headers


def test_the_schema_and_the_docs_page_are_served_without_a_cdn() -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    docs = APIClient().get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()


def test_a_token_login_opens_no_session(users: dict[str, Any]) -> None:
    response = login("viewer-user")
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
