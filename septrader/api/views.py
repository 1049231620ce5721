"""System endpoints: tokens (with login lockout), status, configuration, sync, audit log."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from septrader.api.client import actor_of, client_address
from septrader.api.errors import ApiError
from septrader.api.fields import TimeRangeSerializer, query
from septrader.api.permissions import ADMIN, OPERATOR, VIEWER, has_role, role_of
from septrader.api.throttles import LoginRateThrottle
from septrader.lockout import LOCKOUT_MESSAGE, login_locked_out, login_succeeded
from septrader.models import AuditLog
from septrader.selectors import config_generation, config_listing
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
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            if login_locked_out(request):
                raise ApiError(
                    LOCKOUT_MESSAGE, code="locked_out", field="username", status_code=429
                ) from None
            raise
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        # A valid serializer has authenticated an active user.
        assert isinstance(serializer, jwt_serializers.TokenObtainSerializer) and serializer.user
        login_succeeded(serializer.user)
        return Response(serializer.validated_data)


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


# ----- status ------------------------------------------------------------------------------------


class MarketSerializer(serializers.Serializer[Any]):
    open = serializers.BooleanField()
    reason = serializers.CharField()
    next_change = serializers.DateTimeField()
    summary = serializers.CharField()


class CountsSerializer(serializers.Serializer[Any]):
    pairs = serializers.IntegerField()
    pairs_enabled = serializers.IntegerField()
    open_trades = serializers.IntegerField()
    pending_orders = serializers.IntegerField()
    signals_new = serializers.IntegerField()


class StatusSerializer(serializers.Serializer[Any]):
    version = serializers.CharField()
    time = serializers.DateTimeField()
    user = serializers.CharField()
    role = serializers.CharField()
    trading_mode = serializers.CharField()
    trading_reason = serializers.CharField()
    market = MarketSerializer()
    config_generation = serializers.IntegerField()
    counts = CountsSerializer()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sep-trader")
    except PackageNotFoundError:
        return "0.1.0"


class StatusView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(responses=StatusSerializer, summary="Version, your role, mode, market, counts")
    def get(self, request: Request) -> Response:
        from trading.market import market_status_at
        from trading.overview import counts, trading_state_current

        state = trading_state_current()
        market = market_status_at()
        answer = {
            "version": _version(),
            "time": timezone.now(),
            "user": request.user.get_username(),
            "role": role_of(request.user) or "",
            "trading_mode": state.mode,
            "trading_reason": state.reason,
            "market": {
                "open": market.open,
                "reason": market.reason,
                "next_change": market.next_change,
                "summary": market.summary(),
            },
            "config_generation": config_generation(),
            "counts": counts().__dict__,
        }
        return Response(StatusSerializer(answer).data)


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


# ----- sync --------------------------------------------------------------------------------------


class SyncPullSerializer(serializers.Serializer[Any]):
    result = serializers.JSONField()


class SyncPullView(APIView):
    """Import the inbox's new bundles (operator). Only an admin's pull changes settings: an
    operator's applies signals and models and lists the settings left for an admin."""

    roles = {"POST": OPERATOR}

    @extend_schema(
        request=None,
        responses=SyncPullSerializer,
        summary="Import every new bundle of the sync inbox, oldest first (settings: admin)",
    )
    def post(self, request: Request) -> Response:
        from septrader import sync

        try:
            result = sync.sync_pull(
                inbox=settings.SYNC_INBOX_DIR,
                actor=actor_of(request),
                address=client_address(request),
                config_allowed=has_role(request.user, ADMIN),
            )
        except sync.SyncConfigurationError as error:
            raise ApiError(str(error), code="unavailable", status_code=503) from None
        except sync.SyncError as error:
            raise ApiError(str(error), code="rejected", field="bundle") from None
        return Response({"result": _plain(result)})


def _plain(value: Any) -> Any:
    """A JSON-friendly form of whatever the sync service returns."""
    import dataclasses
    import json

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


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
        entries = AuditLog.objects.order_by("-time", "-id")
        if "actor" in filters:
            entries = entries.filter(actor=filters["actor"])
        if "action" in filters:
            entries = entries.filter(action=filters["action"])
        if "from" in filters:
            entries = entries.filter(time__gte=filters["from"])
        if "to" in filters:
            entries = entries.filter(time__lt=filters["to"])
        return entries
