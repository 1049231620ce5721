from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.health import STATUS_RANK
from monitoring.metrics import TradingCollector
from monitoring.selectors import (
    alert_as_dict,
    alerts_unresolved,
    health_detail,
    health_summary,
    system_status,
)
from monitoring.services import AlertNotFound, alert_acknowledge
from septrader.api.client import client_address
from septrader.api.errors import ApiError
from septrader.api.permissions import OPERATOR, VIEWER, role_of


class HealthSerializer(serializers.Serializer[Any]):
    status = serializers.ChoiceField(
        choices=list(STATUS_RANK), help_text="The worst status of the components."
    )
    checked_at = serializers.DateTimeField()
    components = serializers.DictField(
        child=serializers.ChoiceField(choices=list(STATUS_RANK)),
        help_text="Each component's status, by name (the reasons: /api/health/detail).",
    )


class HealthView(APIView):
    """Public: the overall status and each component's, for load balancers and uptime checks.
    Open to anyone, never throttled (load balancers poll it), GET only."""

    roles = {"GET": None}
    authentication_classes = []
    throttle_classes = []
    http_method_names = ["get"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Another method is refused as not allowed (405), before the role check would say 403.
        if request.method != "GET":
            self.http_method_not_allowed(request)
        super().initial(request, *args, **kwargs)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # JSON whatever the client accepts (no 406 for a checker that asks for text).
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    @extend_schema(
        responses={
            200: OpenApiResponse(HealthSerializer, description="No component is down."),
            503: OpenApiResponse(HealthSerializer, description="A component is down."),
        },
        summary="Public: the overall status and each component's (503 when down)",
    )
    def get(self, request: Request) -> JsonResponse:
        summary = health_summary()
        return JsonResponse(summary, status=503 if summary["status"] == "down" else 200)


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


class StatusView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(responses=StatusSerializer, summary="Version, your role, mode, market, counts")
    def get(self, request: Request) -> Response:
        answer = {
            **system_status(),
            "user": request.user.get_username(),
            "role": role_of(request.user) or "",
        }
        return Response(StatusSerializer(answer).data)


class HealthDetailView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(
        responses=OpenApiTypes.OBJECT, summary="Every component's health and the open alerts"
    )
    def get(self, request: Request) -> Response:
        return Response(health_detail())


class AlertListView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The unresolved alerts")
    def get(self, request: Request) -> Response:
        return Response({"alerts": [alert_as_dict(alert) for alert in alerts_unresolved()]})


class AlertAcknowledgeView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Acknowledge an alert")
    def post(self, request: Request, pk: int) -> Response:
        try:
            alert = alert_acknowledge(
                alert_id=pk,
                actor=request.user.get_username(),
                address=client_address(request),
            )
        except AlertNotFound as error:
            raise ApiError(str(error), code="not_found", field="alert", status_code=404) from None
        return Response(alert_as_dict(alert))


_trading_registry = CollectorRegistry(auto_describe=False)
_trading_registry.register(TradingCollector())


def _metrics_allowed(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    return False


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus: request metrics (this process) and the trading gauges (read now)."""
    if not _metrics_allowed(request):
        response = HttpResponse(
            "Metrics need a staff session or the METRICS_TOKEN bearer token.\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body = generate_latest(REGISTRY) + generate_latest(_trading_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
