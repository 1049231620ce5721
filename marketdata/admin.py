from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from marketdata.models import Candle, Pair
from septrader.admin_tools import EstimatedCountPaginator


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ("symbol", "enabled", "state", "pip_location", "margin_rate", "updated_at")
    list_filter = ("enabled", "state")
    search_fields = ("symbol",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    """Candles are written by ingestion only; the console shows them read-only."""

    list_display = (
        "time",
        "pair",
        "timeframe",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "complete",
    )
    list_filter = ("pair", "timeframe", "complete")
    date_hierarchy = None
    ordering = ("-time",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
