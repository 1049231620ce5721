"""The API's JWT authentication: simplejwt's, with the user and their role read in one statement.

Every API request authenticates, so its look-ups are paid on the most polled endpoints: the user
by the token's id (simplejwt) and then the role (``HasRole``) took two queries and 4.5 of the
6.4 ms of a ``GET /api/pairs/status`` in-process (bench/api.py --profile). The checks are
simplejwt's own, in its order.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import get_md5_hash_password

from septrader.api.permissions import user_with_role


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token: Token) -> Any:
        try:
            claimed = validated_token[api_settings.USER_ID_CLAIM]
            user_id = User._meta.pk.to_python(claimed)  # type: ignore[union-attr]
        except (KeyError, ValidationError) as error:
            raise InvalidToken("Token contained no recognizable user identification") from error
        user = user_with_role(user_id)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                "The user's password has been changed.", code="password_changed"
            )
        return user


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI description of the class above: simplejwt's bearer scheme, which drf-spectacular
    gives simplejwt's own class only."""

    target_class = "septrader.api.authentication.JWTAuthentication"
