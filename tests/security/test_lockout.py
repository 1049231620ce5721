"""One login lockout for every door: the console's /admin/login/ and the API's /api/token/.

A username is locked after API_LOGIN_MAX_FAILURES (5) failed logins, wherever they happened, and
then neither door lets it in, even with the right password; the answer does not tell an unknown
username from a locked real one; failures, lockouts and refused attempts are in the AuditLog."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from septrader.models import AuditLog
from tests.api.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = {
    "code": "locked_out",
    "message": "Too many failed logins for this username; try again later.",
    "field": "username",
}


@pytest.fixture
def operator_with_console(db: Any) -> User:
    """An operator who may use both doors: the console (staff) and the API (operator role)."""
    user = User.objects.create_user("ops", password=PASSWORD, is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name="operator"))
    return user


def console_login(client: Client, username: str, password: str, **extra: Any) -> Any:
    return client.post(
        "/admin/login/?next=/admin/", {"username": username, "password": password}, **extra
    )


def token_login(username: str, password: str, **extra: Any) -> Any:
    return APIClient().post(
        "/api/token/", {"username": username, "password": password}, format="json", **extra
    )


def logged_in_to_the_console(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_the_console_login_is_locked_after_five_failures_even_with_the_right_password(
    operator_with_console: User,
) -> None:
    # Given four wrong passwords at the console, each answered with the login form again
    client = Client()
    for _ in range(4):
        assert console_login(client, "ops", "guess").status_code == 200
    # When the fifth is wrong too
    fifth = console_login(client, "ops", "guess")
    # Then the username is locked: the right password no longer opens the console
    assert fifth.status_code == 429
    right = console_login(client, "ops", PASSWORD)
    assert right.status_code == 429
    assert "Too many failed logins for this username; try again later." in right.content.decode()
    assert not logged_in_to_the_console(client)


def test_a_username_locked_at_the_api_can_log_in_neither_at_the_console_nor_at_the_api(
    operator_with_console: User,
) -> None:
    # Given five wrong passwords at /api/token/
    for _ in range(5):
        token_login("ops", "guess")
    # When the right password is tried at the console, then the API
    browser = Client()
    console = console_login(browser, "ops", PASSWORD)
    api = token_login("ops", PASSWORD)
    # Then both refuse, and the console session cannot drive the API either
    assert console.status_code == 429
    assert not logged_in_to_the_console(browser)
    assert browser.post("/api/trading/stop", {"reason": "probe"}).status_code in {401, 403}
    assert (api.status_code, api.json()["error"]) == (429, LOCKED)


def test_a_username_locked_at_the_console_gets_no_token(operator_with_console: User) -> None:
    browser = Client()
    for _ in range(5):
        console_login(browser, "ops", "guess")
    api = token_login("ops", PASSWORD)
    assert (api.status_code, api.json()["error"]) == (429, LOCKED)
    assert "access" not in api.json()


def test_the_lockout_answer_for_an_unknown_username_is_the_one_for_a_locked_real_user(
    operator_with_console: User,
) -> None:
    # Given five failures for a real username and for one that does not exist, at each door
    # (each from its own address, to stay under the per-address login throttle)
    answers: dict[str, list[tuple[int, Any]]] = {"ops": [], "nobody-at-all": []}
    for number, (username, attempts) in enumerate(answers.items()):
        address = f"10.0.4.{number + 1}"
        for _ in range(5):
            response = token_login(username, "guess", REMOTE_ADDR=address)
            attempts.append((response.status_code, response.json()))
        refused = token_login(username, PASSWORD, REMOTE_ADDR=address)
        attempts.append((refused.status_code, refused.json()))
    pages: dict[str, tuple[int, bytes]] = {}
    for username in ("ops-console", "nobody-at-the-console"):
        if username == "ops-console":
            User.objects.create_user(username, password=PASSWORD, is_staff=True)
        browser = Client()
        for _ in range(5):
            console_login(browser, username, "guess")
        refused_page = console_login(browser, username, PASSWORD)
        pages[username] = (refused_page.status_code, refused_page.content)
    # Then every answer, the failures' and the lockout's, is the same for both
    assert answers["ops"] == answers["nobody-at-all"]
    assert answers["ops"][-1] == (429, {"error": LOCKED})
    assert pages["ops-console"] == pages["nobody-at-the-console"]
    assert pages["ops-console"][0] == 429


def test_failures_the_lockout_and_refused_attempts_are_audited(
    operator_with_console: User,
) -> None:
    # Given five failures at the console from one address
    browser = Client()
    for _ in range(5):
        console_login(browser, "ops", "guess", REMOTE_ADDR="10.0.3.1")
    # When the right password is then tried at the API from another
    token_login("ops", PASSWORD, REMOTE_ADDR="10.0.3.2")
    # Then the AuditLog has each failure, the lockout once, and the refused attempt
    entries = list(AuditLog.objects.filter(target="ops").order_by("id"))
    assert [entry.action for entry in entries] == [
        *["auth.login_failed"] * 5,
        "auth.lockout",
        "auth.login_refused",
    ]
    failures = [entry.details["failures"] for entry in entries[:5]]
    assert failures == [1, 2, 3, 4, 5]
    lockout, refused = entries[5], entries[6]
    assert (lockout.address, lockout.details["path"]) == ("10.0.3.1", "/admin/login/")
    assert (refused.address, refused.details["path"]) == ("10.0.3.2", "/api/token/")
    # And no password, right or wrong, is in it
    stored = repr([(entry.actor, entry.target, entry.details) for entry in entries])
    assert "guess" not in stored and PASSWORD not in stored


def test_the_lock_ends_api_login_lockout_seconds_after_the_failure_that_set_it(
    operator_with_console: User, settings: Any
) -> None:
    # Given a username locked at the API
    for _ in range(5):
        token_login("ops", "guess")
    assert token_login("ops", PASSWORD).status_code == 429
    # When the lockout time has passed since the last counted failure
    AccessAttempt.objects.filter(username="ops").update(
        attempt_time=AccessAttempt.objects.get(username="ops").attempt_time
        - timedelta(seconds=settings.API_LOGIN_LOCKOUT_SECONDS + 1)
    )
    # Then the right password works again, at both doors
    assert token_login("ops", PASSWORD).status_code == 200
    browser = Client()
    assert console_login(browser, "ops", PASSWORD).status_code == 302
    assert logged_in_to_the_console(browser)


def test_an_admin_unlocks_a_username_early_by_deleting_its_attempt_in_the_console(
    operator_with_console: User,
) -> None:
    # Given a username locked at the API, and another admin in the console
    for _ in range(5):
        token_login("ops", "guess")
    admin = Client()
    admin.force_login(User.objects.create_superuser("chief", password=PASSWORD))
    # When the admin finds its attempt in the console and deletes it
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "ops" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="ops")
    deleted = admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    # Then the username logs in again
    assert token_login("ops", PASSWORD).status_code == 200
