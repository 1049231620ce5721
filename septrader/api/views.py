"""System endpoints: tokens (with login lockout), configuration, audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from septrader.api.client import actor_of, client_address
from septrader.api.fields import TimeRangeSerializer, query
from septrader.api.permissions import ADMIN, OPERATOR, VIEWER
from septrader.api.throttles import LoginRateThrottle
from septrader.lockout import token_login
from septrader.models import AuditLog
from septrader.selectors import audit_entries, config_generation, config_listing
from septrader.services import config_reload, config_update
from septrader.tokens import refresh_token_rotate

# ----- tokens ------------------------------------------------------------------------------------


class TokenObtainView(jwt_views.TokenObtainPairView):
    """Username and password in, an access and a refresh token out. Throttled per address, and
    a username is locked for a while after repeated failures, here and at the console's login
    alike (septrader/lockout.py)."""

    roles = {"POST": None}
    throttle_classes = [LoginRateThrottle]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            tokens = token_login(request=request, serializer=self.get_serializer(data=request.data))
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        return Response(tokens)


class RotatingTokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        return refresh_token_rotate(
            token=attrs["refresh"], address=client_address(self.context["request"])
        )


class TokenRefreshView(jwt_views.TokenRefreshView):
    """A refresh token in, a new access token and a new refresh token out. Each refresh token
    works once, even for simultaneous requests; presenting one again revokes every refresh
    token of its login (septrader/tokens.py)."""

    roles = {"POST": None}
    throttle_classes = [LoginRateThrottle]
    serializer_class = RotatingTokenRefreshSerializer


class TokenVerifyView(jwt_views.TokenVerifyView):
    roles = {"POST": None}
    throttle_classes = [LoginRateThrottle]


class TokenBlacklistView(jwt_views.TokenBlacklistView):
    """Log out: the refresh token is blacklisted (access tokens expire on their own)."""

    roles = {"POST": None}
    throttle_classes = [LoginRateThrottle]


# ----- configuration -----------------------------------------------------------------------------


class ConfigEntrySerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    value = serializers.JSONField()
    default = serializers.JSONField()
    kind = serializers.ChoiceField(choices=["decimal", "int", "bool", "str", "list"])
    expected = serializers.CharField()
    version = serializers.IntegerField(help_text="0 while the default is in use.")
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by = serializers.CharField()
    help = serializers.CharField()


class ConfigSerializer(serializers.Serializer[Any]):
    generation = serializers.IntegerField()
    settings = ConfigEntrySerializer(many=True)


class ConfigReloadSerializer(serializers.Serializer[Any]):
    generation = serializers.IntegerField()


def _config_answer() -> Response:
    return Response(
        ConfigSerializer({"generation": config_generation(), "settings": config_listing()}).data
    )


class ConfigView(APIView):
    """Read every runtime setting (viewer); change some (admin)."""

    roles = {"GET": VIEWER, "PATCH": ADMIN}

    @extend_schema(responses=ConfigSerializer, summary="Every runtime setting")
    def get(self, request: Request) -> Response:
        return _config_answer()

    @extend_schema(
        request={"application/json": {"type": "object", "additionalProperties": True}},
        responses=ConfigSerializer,
        summary="Change settings: {key: value, ...}; all are validated before any is written",
    )
    def patch(self, request: Request) -> Response:
        config_update(values=request.data, actor=actor_of(request), address=client_address(request))
        return _config_answer()


class ConfigReloadView(APIView):
    roles = {"PUT": OPERATOR}

    @extend_schema(
        request=None,
        responses=ConfigReloadSerializer,
        summary="Tell every process to read its settings again (bumps the config generation)",
    )
    def put(self, request: Request) -> Response:
        generation = config_reload(actor=actor_of(request), address=client_address(request))
        return Response({"generation": generation})


# ----- audit log ---------------------------------------------------------------------------------


class AuditLogSerializer(serializers.ModelSerializer[AuditLog]):
    class Meta:
        model = AuditLog
        fields = ["id", "time", "actor", "address", "action", "target", "details"]


class AuditFilterSerializer(TimeRangeSerializer):
    actor = serializers.CharField(required=False, max_length=150)
    action = serializers.CharField(required=False, max_length=64)


@extend_schema(parameters=[AuditFilterSerializer], summary="The audit log, newest first (admin)")
class AuditLogListView(generics.ListAPIView[AuditLog]):
    roles = {"GET": ADMIN}
    serializer_class = AuditLogSerializer

    def get_queryset(self) -> QuerySet[AuditLog]:
        filters = query(AuditFilterSerializer, self.request)
        return audit_entries(
            actor=filters.get("actor"),
            action=filters.get("action"),
            start=filters.get("from"),
            end=filters.get("to"),
        )
