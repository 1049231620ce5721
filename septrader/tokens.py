"""Refresh tokens that can be exchanged exactly once, and reuse detection over a login's family.

simplejwt rotates the refresh token on every refresh and blacklists the old one, but it checks
the blacklist and then blacklists with ``get_or_create``, so simultaneous refreshes with one token
all passed (four requests, four new refresh tokens). Here the exchange locks the token's
OutstandingToken row and inserts its BlacklistedToken, a one-to-one on that row, so the insert
succeeds exactly once, in the same transaction as the new token; a second exchange waits for the
first to commit and then fails to insert.

Every refresh token descended from one login carries the jti of that login's refresh token in
the ``family`` claim (the login's own token is named by its jti). A refresh token presented after
it was exchanged, or logged out, means two parties hold the session, and which is the rightful
one cannot be told: every live refresh token of the family is revoked and the reuse is audited
(RFC 9700, OAuth 2.0 Security Best Current Practice, "Refresh Token Protection"). Access tokens
already issued stay valid until they expire (ACCESS_TOKEN_LIFETIME, 15 minutes by default).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from septrader.services import audit_record

FAMILY_CLAIM = "family"


class RefreshTokenReused(TokenError):
    """A refresh token that was already exchanged, or logged out, was presented again."""


class _PresentedRefreshToken(RefreshToken):
    """A refresh token checked for signature, expiry and type, but not yet against the
    blacklist: ``refresh_token_rotate`` does that under the row lock, where a reuse is told
    from a first use."""

    def check_blacklist(self) -> None:
        return None


def refresh_token_rotate(*, token: str, address: str | None = None) -> dict[str, str]:
    """Exchange a refresh token, once, for a new access token and a new refresh token of the
    same family. Raises ``TokenError`` for a bad token, ``RefreshTokenReused`` (after revoking
    the family) for one already exchanged, and ``AuthenticationFailed`` for an inactive user."""
    # simplejwt annotates the encoded token it decodes as a Token object; it is the string.
    presented = _PresentedRefreshToken(token)  # type: ignore[arg-type]
    user = _active_user(presented)
    jti = str(presented[api_settings.JTI_CLAIM])
    family = family_of(presented.payload)
    access = str(presented.access_token)
    with transaction.atomic():
        OutstandingToken.objects.get_or_create(
            jti=jti,
            defaults={
                "user": user,
                "token": token,
                "created_at": datetime_from_epoch(presented["iat"]),
                "expires_at": datetime_from_epoch(presented["exp"]),
            },
        )
        # Concurrent exchanges of one token queue here; each sees what the one before committed.
        outstanding = OutstandingToken.objects.select_for_update().get(jti=jti)
        try:
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
            first_use = True
        except IntegrityError:
            first_use = False
        if first_use:
            presented[FAMILY_CLAIM] = family
            presented.set_jti()
            presented.set_exp()
            presented.set_iat()
            presented.outstand()
        else:
            revoked = refresh_token_family_revoke(user_id=user.pk, family=family)
            audit_record(
                actor=user.get_username(),
                action="auth.refresh_reuse",
                target=user.get_username(),
                details={"family": family, "jti": jti, "revoked": revoked},
                address=address,
            )
    # Raised after the commit, so the family stays revoked.
    if not first_use:
        raise RefreshTokenReused(
            "Token was already used; every refresh token of its login is now revoked."
        )
    return {"access": access, "refresh": str(presented)}


def refresh_token_family_revoke(*, user_id: Any, family: str) -> int:
    """Blacklist every live refresh token of ``user_id`` in ``family``; returns how many."""
    live = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    # The family is a claim inside each stored token, written by this module when it issued it.
    members = [row for row in live if family_of(_claims(row.token)) == family]
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=row) for row in members], ignore_conflicts=True
    )
    return len(members)


def _claims(stored: str) -> dict[str, Any]:
    """The claims of a token this server issued and stored; its signature was checked then."""
    return dict(UntypedToken(stored, verify=False).payload)  # type: ignore[arg-type]


def family_of(claims: Any) -> str:
    """The family of a token: its ``family`` claim, or its own jti for a login's token."""
    return str(claims.get(FAMILY_CLAIM) or claims[api_settings.JTI_CLAIM])


def _active_user(token: RefreshToken) -> Any:
    user_id = token.payload.get(api_settings.USER_ID_CLAIM)
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not api_settings.USER_AUTHENTICATION_RULE(user):
        raise AuthenticationFailed(
            "No active account found for the given token.", code="no_active_account"
        )
    return user
