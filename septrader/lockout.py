"""One login lockout for every door: the console's /admin/login/ and the API's /api/token/.

django-axes keeps the count (settings ``AXES_*``, driven by ``API_LOGIN_MAX_FAILURES`` and
``API_LOGIN_LOCKOUT_SECONDS``): its authentication backend, first in AUTHENTICATION_BACKENDS,
refuses a locked username inside ``django.contrib.auth.authenticate`` before any password is
checked, so a username locked at one door is locked at the other. Failed attempts are rows in the
database, shared by every web worker. This module is the project's side of it: every failure,
lockout and refused attempt is written to the AuditLog, and the answer to a locked login is the
same whether the username exists or not, since failures are counted for any username.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.utils import reset
from django.contrib import admin
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.serializers import BaseSerializer
from rest_framework_simplejwt.serializers import TokenObtainSerializer

from septrader.services import audit_record

# Names the username the client typed, not an account: an unknown username is locked alike.
LOCKOUT_MESSAGE = "Too many failed logins for this username; try again later."


class LoginLockedOutError(Exception):
    """A login refused because its username is locked, or locked by this very failure (the API
    answers 429 ``locked_out`` naming the username field, septrader/api/errors.py)."""

    field = "username"

    def __init__(self) -> None:
        super().__init__(LOCKOUT_MESSAGE)
        self.message = LOCKOUT_MESSAGE


class AuditedAxesHandler(AxesDatabaseHandler):
    """django-axes' database handler, auditing what it decides (``AXES_HANDLER``).

    ``auth.login_failed``: a wrong password or an unknown username, counted towards the lock;
    ``auth.lockout``: the failure that locked the username; ``auth.login_refused``: an attempt
    while locked, refused before its password was checked and not counted.
    """

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
    ) -> None:
        # Axes' backend marks the request before the failure is reported when it refused a
        # locked username; the handler marks it afterwards when this failure reached the limit.
        refused_while_locked = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return
        username = str(get_client_username(request, credentials) or "")
        where = {"path": request.axes_path_info}
        if refused_while_locked:
            _audit("auth.login_refused", username, request, where)
            return
        failures = request.axes_failures_since_start
        _audit("auth.login_failed", username, request, {**where, "failures": failures})
        if request.axes_locked_out:
            _audit("auth.lockout", username, request, {**where, "failures": failures})


def _audit(action: str, username: str, request: Any, details: dict[str, Any]) -> None:
    audit_record(
        actor=username,
        action=action,
        target=username,
        details=details,
        address=request.axes_ip_address,
    )


def login_locked_out(request: Any) -> bool:
    """Whether authenticating this request was refused, or this failure locked the username."""
    return bool(getattr(request, "axes_locked_out", False))


def login_succeeded(user: AbstractBaseUser) -> None:
    """Clear the username's failures after a token login (``AXES_RESET_ON_SUCCESS`` for the
    API). A token login sends no ``user_logged_in`` signal, and axes' own handler of that signal
    would open a session for its access log, which a token client has no use for."""
    reset(username=user.get_username())


def token_login(*, request: Any, serializer: BaseSerializer[Any]) -> dict[str, Any]:
    """A token login (``POST /api/token/``) under the lockout: ``serializer`` (simplejwt's,
    holding the posted username and password) authenticates, and its tokens are returned.

    A failure on a locked username, or the failure that locks it, is ``LoginLockedOutError``;
    any other failure is simplejwt's own (``AuthenticationFailed``, a 401). A success clears
    the username's failures.
    """
    try:
        serializer.is_valid(raise_exception=True)
    except AuthenticationFailed:
        if login_locked_out(request):
            raise LoginLockedOutError from None
        raise
    # A valid serializer has authenticated an active user.
    assert isinstance(serializer, TokenObtainSerializer) and serializer.user
    login_succeeded(serializer.user)
    return dict(serializer.validated_data)


def console_lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """The console's page for a locked login (``AXES_LOCKOUT_CALLABLE``, called by axes'
    middleware); the API answers in its own error shape (septrader/api/views.py)."""
    context = {**admin.site.each_context(request), "title": "Login locked"}
    context["message"] = LOCKOUT_MESSAGE
    return render(request, "admin/login_locked.html", context, status=429)
