"""The console's pair pages: lifecycle actions, risk overrides and the chart (candles: marketdata).

Every change goes through ``trading.services`` with the operator's name and address, so the
console's actions are checked and audited exactly like the API's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from console import charts
from console.admin_site import live_view
from console.dashboard import (
    CHART_TIMEFRAMES,
    ChartWindow,
    PageRequestError,
    chart_payload,
    chart_signals,
    chart_trades,
    chart_window,
    operator_time_zone,
    pair_chart_data,
)
from marketdata.models import Pair
from marketdata.oanda import OandaClient, OandaError
from marketdata.services import instruments_sync
from septrader.admin_tools import operator
from trading.services import (
    TradingError,
    pair_advance,
    pair_advance_check,
    pair_disable,
    pair_enable,
    pair_set_risk_overrides,
    pair_settings_set,
    trades_close_all,
)

logger = logging.getLogger(__name__)


class _DryRun(Exception):
    """Raised to roll back a service call made only to learn whether it would succeed."""


class PairForm(forms.ModelForm):
    """The operator's settings of a pair: its risk overrides and its execution node."""

    class Meta:
        model = Pair
        fields = ("risk_overrides", "node")
        help_texts = {
            "risk_overrides": 'Risk settings without the "risk." prefix, for example '
            '{"max_position_percent": "1.5"}; the same checks as the system settings apply.',
        }

    def clean_risk_overrides(self) -> Any:
        overrides = self.cleaned_data.get("risk_overrides")
        # The service's own checks decide, run in a savepoint that is rolled back: the form shows
        # exactly the error the API would give, and the real write happens in save_model.
        try:
            with transaction.atomic():
                pair_set_risk_overrides(
                    symbol=self.instance.symbol, overrides=overrides or {}, actor="console:check"
                )
                raise _DryRun
        except _DryRun:
            pass
        except TradingError as error:
            raise forms.ValidationError(error.message) from None
        return overrides


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    form = PairForm
    list_display = (
        "symbol",
        "state",
        "enabled",
        "forced_without_model",
        "node",
        "state_reason",
        "chart_link",
        "updated_at",
    )
    list_filter = ("enabled", "state", "instrument_type", "forced_without_model", "node")
    search_fields = ("symbol", "state_reason")
    list_select_related = ("node",)
    actions = [
        "enable_pairs",
        "advance_pairs",
        "enable_pairs_without_model",
        "disable_pairs",
        "flatten_pairs",
        "sync_instruments",
    ]
    readonly_fields = (
        "symbol",
        "state",
        "state_reason",
        "enabled",
        "forced_without_model",
        "paper_started_at",
        "advance_gates",
        "chart_link",
        *Pair.BROKER_FIGURES,
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("symbol", "state", "state_reason", "enabled", "chart_link")}),
        ("Paper stage before live", {"fields": ("paper_started_at", "advance_gates")}),
        ("Operator settings", {"fields": ("risk_overrides", "node", "forced_without_model")}),
        (
            "From the broker",
            {"fields": Pair.BROKER_FIGURES},
        ),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )

    # Pairs come from the migrations and the broker's instrument list; a referenced pair cannot
    # be deleted, and its lifecycle moves only through the actions below.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="chart")
    def chart_link(self, obj: Pair) -> str:
        url = reverse("admin:marketdata_pair_chart", args=[obj.pk])
        return format_html('<a href="{}">chart</a>', url)

    @admin.display(description="may it advance to live?")
    def advance_gates(self, obj: Pair) -> str:
        """Each gate between paper and live with its figure (trading/paper.py), as
        ``GET /api/pairs/<pair>/advance`` gives them."""
        verdict = pair_advance_check(symbol=obj.symbol)
        summary = (
            "Yes: every gate passes; use the action “Advance the selected pairs”."
            if verdict.allowed
            else f"No: {len(verdict.failed)} of {len(verdict.gates)} gates fail."
        )
        rows = format_html_join(
            "",
            '<li class="gate gate-{}"><strong>{} {}</strong>: {}</li>',
            (
                (
                    "passed" if gate.passed else "failed",
                    "✔" if gate.passed else "✘",
                    gate.name,
                    gate.reason,
                )
                for gate in verdict.gates
            ),
        )
        return format_html('<p class="advance-summary">{}</p><ul>{}</ul>', summary, rows)

    def save_model(
        self, request: HttpRequest, obj: Pair, form: forms.ModelForm, change: bool
    ) -> None:
        actor, address = operator(request)
        changes: dict[str, Any] = {}
        if "risk_overrides" in form.changed_data:
            changes["risk_overrides"] = form.cleaned_data["risk_overrides"] or {}
        if "node" in form.changed_data:
            node = form.cleaned_data["node"]
            changes["node"] = node.name if node else None
        pair_settings_set(symbol=obj.symbol, changes=changes, actor=actor, address=address)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Pair],
        act: Callable[[str, str, str | None], str],
    ) -> None:
        """Run ``act`` for each selected pair; a refusal is reported and the others go on."""
        actor, address = operator(request)
        for symbol in queryset.values_list("symbol", flat=True):
            try:
                done = act(symbol, actor, address)
            except TradingError as error:
                self.message_user(request, f"{symbol}: {error.message}", messages.ERROR)
            except (OandaError, ImproperlyConfigured) as error:
                self.message_user(
                    request, f"{symbol}: the broker could not be reached: {error}", messages.ERROR
                )
            else:
                self.message_user(request, f"{symbol}: {done}", messages.SUCCESS)

    @admin.action(
        description="Enable the selected pairs (needs a promoted pair model; starts on paper)"
    )
    def enable_pairs(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        def enable(symbol: str, actor: str, address: str | None) -> str:
            pair = pair_enable(symbol=symbol, actor=actor, address=address)
            if pair.state == Pair.State.PAPER:
                return "enabled on paper (no orders at the broker until it advances to live)"
            return "enabled for trading"

        self._each(request, queryset, enable)

    @admin.action(description="Advance the selected paper pairs to live (checks every gate)")
    def advance_pairs(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        def advance(symbol: str, actor: str, address: str | None) -> str:
            pair_advance(symbol=symbol, actor=actor, address=address)
            return "advanced from paper to live"

        self._each(request, queryset, advance)

    @admin.action(description="Enable the selected pairs even without a pair model (audited)")
    def enable_pairs_without_model(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        def enable(symbol: str, actor: str, address: str | None) -> str:
            pair = pair_enable(symbol=symbol, actor=actor, address=address, force=True)
            return "enabled" + (" without a pair model" if pair.forced_without_model else "")

        self._each(request, queryset, enable)

    @admin.action(description="Disable the selected pairs (no new entries)")
    def disable_pairs(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        def disable(symbol: str, actor: str, address: str | None) -> str:
            pair_disable(symbol=symbol, actor=actor, address=address, reason="disabled in console")
            return "disabled"

        self._each(request, queryset, disable)

    @admin.action(description="Flatten the selected pairs (close their trades at the broker)")
    def flatten_pairs(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        def flatten(symbol: str, actor: str, address: str | None) -> str:
            result = trades_close_all(
                actor=actor, pair=symbol, reason="flattened in console", address=address
            )
            if result.failures:
                raise TradingError(
                    f"closed {result.trades_closed} trades; failed: {'; '.join(result.failures)}"
                )
            return f"{result.trades_closed} trades closed"

        self._each(request, queryset, flatten)

    @admin.action(description="Sync all pairs from the broker's instruments (whatever is selected)")
    def sync_instruments(self, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
        # The account's whole instrument list is read: a sync has no use for a selection, which
        # Django's actions require only to run.
        actor, address = operator(request)
        try:
            result = instruments_sync(client=OandaClient(), actor=actor, address=address)
        except (OandaError, ImproperlyConfigured) as error:
            self.message_user(
                request,
                f"Instruments sync: the broker could not be reached: {error}",
                messages.ERROR,
            )
            return
        self.message_user(request, f"Instruments sync: {result.summary()}", messages.SUCCESS)
        for name, reason in result.skipped.items():
            self.message_user(request, f"Skipped {name}: {reason}", messages.WARNING)

    # ----- the chart page ------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        chart = path(
            "<path:object_id>/chart/",
            self.admin_site.admin_view(self.chart_view),
            name="marketdata_pair_chart",
        )
        data = path(
            "<path:object_id>/chart/data/",
            live_view(self.admin_site, self.chart_data_view),
            name="marketdata_pair_chart_data",
        )
        lists = path(
            "<path:object_id>/chart/lists/",
            live_view(self.admin_site, self.chart_lists_view),
            name="marketdata_pair_chart_lists",
        )
        # Before the default patterns, whose "<path:object_id>/" would swallow ".../chart/".
        return [chart, data, lists, *super().get_urls()]

    def _chart_pair(self, request: HttpRequest, object_id: str) -> Pair:
        if not self.has_view_permission(request):
            raise PermissionDenied
        if object_id.isdigit():
            return get_object_or_404(Pair, pk=object_id)
        return get_object_or_404(Pair, symbol=object_id)

    @staticmethod
    def _requested_window(request: HttpRequest, pair: Pair) -> ChartWindow:
        return chart_window(
            pair=pair.symbol,
            timeframe=request.GET.get("timeframe"),
            hours=request.GET.get("hours"),
            end=request.GET.get("end"),
        )

    @staticmethod
    def _bad_parameter(problem: PageRequestError) -> JsonResponse:
        error = {"code": "invalid", "message": str(problem), "field": problem.field}
        return JsonResponse({"error": error}, status=400)

    def chart_data_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The interactive chart's data (console/static/console/chart.js), for the window the
        page asks for: the same parameters as the page, a bad one answered 400 naming it."""
        pair = self._chart_pair(request, object_id)
        try:
            window = self._requested_window(request, pair)
        except PageRequestError as problem:
            return self._bad_parameter(problem)
        data = pair_chart_data(pair=pair.symbol, window=window)
        return JsonResponse(chart_payload(data, pair=pair.symbol, digits=pair.display_precision))

    def chart_lists_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The signals and trades under the chart, which the open page polls and swaps in."""
        pair = self._chart_pair(request, object_id)
        try:
            window = self._requested_window(request, pair)
        except PageRequestError as problem:
            return self._bad_parameter(problem)
        context = {
            "pair": pair,
            "signals": chart_signals(pair=pair.symbol, window=window),
            "trades": chart_trades(pair=pair.symbol, window=window),
            "operator_time_zone": operator_time_zone(),
        }
        return TemplateResponse(request, "admin/marketdata/pair/chart_lists.html", context)

    def chart_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        pair = self._chart_pair(request, object_id)
        error = ""
        try:
            window = self._requested_window(request, pair)
        except PageRequestError as problem:
            error = str(problem)
            window = chart_window(pair=pair.symbol, timeframe=None, hours=None, end=None)
        data = pair_chart_data(pair=pair.symbol, window=window)
        # The interactive chart asks for the same window; without an end it follows the newest
        # candles as they close.
        query = {"timeframe": window.timeframe, "hours": str(window.hours)}
        follow = not request.GET.get("end") or bool(error)
        if not follow:
            query["end"] = window.end.isoformat()
        data_url = reverse("admin:marketdata_pair_chart_data", args=[pair.pk])
        lists_url = reverse("admin:marketdata_pair_chart_lists", args=[pair.pk])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": pair,
            "title": f"{pair.symbol} {window.timeframe} chart",
            "pair": pair,
            "data": data,
            "error": error,
            "timeframes": CHART_TIMEFRAMES,
            "operator_time_zone": operator_time_zone(),
            "chart_data_url": f"{data_url}?{urlencode(query)}",
            "chart_lists_url": f"{lists_url}?{urlencode(query)}",
            "signals": data.signals,
            "trades": data.trades,
            "chart_follows": follow,
            "price_chart": charts.candle_chart_svg(
                data.candles,
                start=window.start,
                end=window.end,
                signals=data.signals,
                trades=data.trades,
                digits=pair.display_precision,
            ),
            "metrics_chart": charts.metrics_chart_svg(
                data.metrics, start=window.start, end=window.end
            ),
        }
        return TemplateResponse(request, "admin/marketdata/pair/chart.html", context)
