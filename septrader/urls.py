from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from marketdata import api as marketdata_api
from marketdata.models import PAIR_SYMBOL_PATTERN
from monitoring import views as monitoring_views
from parity import api as parity_api
from qfh import api as qfh_api
from septrader.api import views as system_api
from septrader.api.errors import json_not_found, json_server_error
from sync import api as sync_api
from trading import api as trading_api


class PairConverter:
    regex = PAIR_SYMBOL_PATTERN.strip("^$")

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(PairConverter, "pair")

api = [
    # Tokens (public, throttled; the login locks a username after repeated failures).
    path("token/", system_api.TokenObtainView.as_view(), name="token-obtain"),
    path("token/refresh/", system_api.TokenRefreshView.as_view(), name="token-refresh"),
    path("token/verify/", system_api.TokenVerifyView.as_view(), name="token-verify"),
    path("token/blacklist/", system_api.TokenBlacklistView.as_view(), name="token-blacklist"),
    # System.
    path("status", monitoring_views.StatusView.as_view(), name="status"),
    path("config", system_api.ConfigView.as_view(), name="config"),
    path("config/reload", system_api.ConfigReloadView.as_view(), name="config-reload"),
    path("sync/pull", sync_api.SyncPullView.as_view(), name="sync-pull"),
    path("audit", system_api.AuditLogListView.as_view(), name="audit-list"),
    # Trading.
    path("trading/status", trading_api.TradingStatusView.as_view(), name="trading-status"),
    path("trading/start", trading_api.TradingStartView.as_view(), name="trading-start"),
    path("trading/stop", trading_api.TradingStopView.as_view(), name="trading-stop"),
    path("trading/kill", trading_api.KillSwitchView.as_view(), name="trading-kill"),
    path("pairs/status", trading_api.PairsStatusView.as_view(), name="pairs-status"),
    path("pairs/active", trading_api.PairsActiveView.as_view(), name="pairs-active"),
    path("pairs/<pair:pair>", trading_api.PairDetailView.as_view(), name="pair-detail"),
    path("pairs/<pair:pair>/enable", trading_api.PairEnableView.as_view(), name="pair-enable"),
    path("pairs/<pair:pair>/disable", trading_api.PairDisableView.as_view(), name="pair-disable"),
    path("pairs/<pair:pair>/flatten", trading_api.PairFlattenView.as_view(), name="pair-flatten"),
    path("pairs/<pair:pair>/advance", trading_api.PairAdvanceView.as_view(), name="pair-advance"),
    path("signals", trading_api.SignalListView.as_view(), name="signal-list"),
    path("signals/<uuid:pk>", trading_api.SignalDetailView.as_view(), name="signal-detail"),
    path("orders", trading_api.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>", trading_api.OrderDetailView.as_view(), name="order-detail"),
    path("trades", trading_api.TradeListView.as_view(), name="trade-list"),
    path("trades/<int:pk>", trading_api.TradeDetailView.as_view(), name="trade-detail"),
    path("trades/<int:pk>/close", trading_api.TradeCloseView.as_view(), name="trade-close"),
    path("performance/daily", trading_api.DailyPerformanceView.as_view(), name="performance-daily"),
    # Market data and QFH.
    path("candles/<pair:pair>", marketdata_api.CandleListView.as_view(), name="candle-list"),
    path("metrics/qfh/<pair:pair>", qfh_api.MetricsView.as_view(), name="qfh-metrics"),
    path("pair-models", qfh_api.PairModelListView.as_view(), name="pair-model-list"),
    path("pair-models/<int:pk>", qfh_api.PairModelDetailView.as_view(), name="pair-model-detail"),
    path(
        "pair-models/<int:pk>/promote",
        qfh_api.PairModelPromoteView.as_view(),
        name="pair-model-promote",
    ),
    path("evaluations", qfh_api.EvaluationListView.as_view(), name="evaluation-list"),
    path("evaluations/<int:pk>", qfh_api.EvaluationDetailView.as_view(), name="evaluation-detail"),
    # Live against its replay, per New York trading day and pair (parity/).
    path("parity", parity_api.ParityListView.as_view(), name="parity-list"),
    path("parity/<int:pk>", parity_api.ParityDetailView.as_view(), name="parity-detail"),
    # The OpenAPI schema and its docs page (public: the API's shape is no secret).
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script from its own URL (?script) instead of
    # inline, which the Content-Security-Policy (settings.py) would block.
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="docs",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    # /api/health, /api/health/detail, /api/alerts and /metrics.
    path("", include("monitoring.urls")),
]

# JSON, in the API's error shape, for URLs under /api/ that match nothing (HTML elsewhere).
handler404 = json_not_found
handler500 = json_server_error
