from __future__ import annotations

from django.contrib import admin

from trading.models import TradingSignal


@admin.register(TradingSignal)
class TradingSignalAdmin(admin.ModelAdmin):
    list_display = ("time", "pair", "timeframe", "direction", "confidence", "status", "executed")
    list_filter = ("status", "direction", "timeframe", "pair")
    search_fields = ("id",)
    readonly_fields = ("id", "created_at", "updated_at")
    ordering = ("-time",)
