"""Console pages for trading: signals and the broker's records (read-only), the trading mode and
the kill switch, and maintenance windows.

Orders, trades, transactions and account snapshots mirror what OANDA holds; they change only
through the ledger, so the console shows them and never edits them. Actions call
``trading.services`` with the operator's name and address, which audits them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.html import format_html

from marketdata.models import Pair
from marketdata.oanda import OandaError
from septrader.admin_tools import (
    EstimatedCountPaginator,
    LiveChangeListAdmin,
    ReadOnlyAdmin,
    money_column,
    operator,
    price_column,
    significant_column,
)
from trading.models import (
    AccountSnapshot,
    BrokerTransaction,
    MaintenanceWindow,
    MarketSchedule,
    Order,
    PairSchedule,
    ScheduleBreak,
    ScheduleSession,
    Trade,
    TradingSignal,
    TradingState,
)
from trading.services import (
    TradingError,
    kill_switch_engage,
    maintenance_window_delete,
    maintenance_window_save,
    market_schedule_saved,
    pair_schedule_save,
    trade_close,
    trading_mode_set,
)

if TYPE_CHECKING:
    # Generic in django-stubs only: Django's classes take no subscript at run time.
    MaintenanceWindowModelForm = ModelForm[MaintenanceWindow]
    MaintenanceWindowModelAdmin = admin.ModelAdmin[MaintenanceWindow]
    MarketScheduleModelAdmin = admin.ModelAdmin[MarketSchedule]
    PairScheduleModelAdmin = admin.ModelAdmin[PairSchedule]
    ScheduleSessionInlineBase = admin.TabularInline[ScheduleSession, MarketSchedule]
    ScheduleBreakInlineBase = admin.TabularInline[ScheduleBreak, MarketSchedule]
else:
    MaintenanceWindowModelForm = ModelForm
    MaintenanceWindowModelAdmin = admin.ModelAdmin
    MarketScheduleModelAdmin = admin.ModelAdmin
    PairScheduleModelAdmin = admin.ModelAdmin
    ScheduleSessionInlineBase = admin.TabularInline
    ScheduleBreakInlineBase = admin.TabularInline


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


@admin.register(TradingSignal)
class TradingSignalAdmin(LiveChangeListAdmin, ReadOnlyAdmin):
    list_display = (
        "time",
        "pair",
        "timeframe",
        "direction",
        significant_column("confidence"),
        "status",
        "status_reason",
        "executed",
    )
    list_filter = ("status", "direction", "executed", "timeframe", "pair")
    search_fields = ("=id", "pair__symbol", "status_reason")
    ordering = ("-time",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Order)
class OrderAdmin(LiveChangeListAdmin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "pair",
        "kind",
        "units",
        "status",
        price_column("fill_price"),
        "broker_order_id",
        "client_id",
        "paper",
        "reason",
    )
    list_filter = ("status", "kind", "paper", "pair")
    search_fields = ("client_id", "broker_order_id", "broker_trade_id", "reason")
    ordering = ("-created_at",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Trade)
class TradeAdmin(LiveChangeListAdmin, ReadOnlyAdmin):
    list_display = (
        "opened_at",
        "pair",
        "broker_trade_id",
        "current_units",
        price_column("open_price"),
        "state",
        money_column("unrealized_pl", signed=True),
        money_column("realized_pl", signed=True),
        price_column("close_price"),
        "closed_at",
        "close_reason",
        "paper",
    )
    list_filter = ("state", "paper", "pair", "close_reason")
    search_fields = ("broker_trade_id", "client_id")
    ordering = ("-opened_at",)
    actions = ["close_trades"]

    @admin.action(description="Close the selected trades (at the broker; paper trades here)")
    def close_trades(self, request: HttpRequest, queryset: QuerySet[Trade]) -> None:
        actor, address = operator(request)
        for trade in queryset.filter(state=Trade.State.OPEN):
            try:
                trade_close(trade_id=trade.pk, actor=actor, address=address)
            except (TradingError, OandaError, ImproperlyConfigured) as error:
                self.message_user(
                    request, f"trade {trade.broker_trade_id}: {error}", messages.ERROR
                )
            else:
                self.message_user(request, f"trade {trade.broker_trade_id} closed")


@admin.register(BrokerTransaction)
class BrokerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "time", "type", "account_id", "received_at")
    list_filter = ("type",)
    search_fields = ("=id",)
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = ("id", "account_id", "type", "time", "received_at", "payload_pretty")
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_pretty(self, obj: BrokerTransaction) -> str:
        return _pretty(obj.payload)


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "time",
        "account_id",
        money_column("nav", "NAV", currency_field="currency"),
        money_column("balance", currency_field="currency"),
        money_column("unrealized_pl", signed=True),
        money_column("margin_used"),
        money_column("margin_available"),
        "open_trade_count",
    )
    list_filter = ("account_id",)
    ordering = ("-time",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(TradingState)
class TradingStateAdmin(ReadOnlyAdmin):
    """The one row of the trading mode: changed only by the actions, which audit every change."""

    list_display = (
        "mode",
        "reason",
        "changed_by",
        "changed_at",
        "market_open",
        "market_reason",
        "market_checked_at",
    )
    actions = ["resume_trading", "reduce_only", "engage_kill_switch"]

    def _set(self, request: HttpRequest, mode: str, reason: str) -> None:
        actor, address = operator(request)
        state = trading_mode_set(mode=mode, actor=actor, reason=reason, address=address)
        self.message_user(request, f"trading mode is now {state.mode}")

    @admin.action(description="Resume trading")
    def resume_trading(self, request: HttpRequest, queryset: QuerySet[TradingState]) -> None:
        self._set(request, TradingState.Mode.TRADING, "resumed in console")

    @admin.action(description="Reduce only (exits only, no new entries)")
    def reduce_only(self, request: HttpRequest, queryset: QuerySet[TradingState]) -> None:
        self._set(request, TradingState.Mode.REDUCING, "reducing set in console")

    @admin.action(
        description="Kill switch: halt, cancel pending orders, close trades as configured"
    )
    def engage_kill_switch(self, request: HttpRequest, queryset: QuerySet[TradingState]) -> None:
        actor, address = operator(request)
        try:
            result = kill_switch_engage(actor=actor, address=address)
        except (OandaError, ImproperlyConfigured) as error:
            # The mode is already halted (committed first); only the broker part failed.
            self.message_user(
                request,
                f"trading is halted, but the broker could not be reached: {error}",
                messages.ERROR,
            )
            return
        level = messages.ERROR if result.failures else messages.SUCCESS
        self.message_user(
            request,
            f"halted: {result.orders_cancelled} orders cancelled, {result.trades_closed} trades "
            f"closed" + (f"; failed: {'; '.join(result.failures)}" if result.failures else ""),
            level,
        )


class MaintenanceWindowForm(MaintenanceWindowModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ("starts_at", "ends_at", "reason", "pairs")
        help_texts = {"pairs": 'Pair symbols, for example ["EUR_USD", "GBP_USD"]; [] for all.'}

    def clean_pairs(self) -> list[str]:
        pairs = self.cleaned_data.get("pairs") or []
        if not isinstance(pairs, list) or any(not isinstance(item, str) for item in pairs):
            raise ValidationError(
                f"pairs={pairs!r} is not valid; expected a list of pair symbols such as "
                '["EUR_USD"], or [] for every pair.'
            )
        known = set(Pair.objects.filter(symbol__in=pairs).values_list("symbol", flat=True))
        unknown = [item for item in pairs if item not in known]
        if unknown:
            raise ValidationError(f"pairs: {', '.join(unknown)} are not known pairs.")
        return pairs

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        starts, ends = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", f"ends_at={ends:%Y-%m-%d %H:%M} must be after starts_at.")
        return cleaned


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(MaintenanceWindowModelAdmin):
    form = MaintenanceWindowForm
    list_display = ("reason", "starts_at", "ends_at", "pairs", "created_by", "created_at")
    search_fields = ("reason",)
    readonly_fields = ("created_by", "created_at")
    ordering = ("-starts_at",)

    def save_model(
        self,
        request: HttpRequest,
        obj: MaintenanceWindow,
        form: ModelForm[MaintenanceWindow],
        change: bool,
    ) -> None:
        actor, address = operator(request)
        maintenance_window_save(
            window=obj, changed=form.changed_data, created=not change, actor=actor, address=address
        )

    def delete_model(self, request: HttpRequest, obj: MaintenanceWindow) -> None:
        actor, address = operator(request)
        maintenance_window_delete(window=obj, actor=actor, address=address)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[MaintenanceWindow]) -> None:
        for window in queryset:
            self.delete_model(request, window)


class ScheduleSessionInline(ScheduleSessionInlineBase):
    model = ScheduleSession
    extra = 0
    fields = ("opens_day", "opens_at", "closes_day", "closes_at")


class ScheduleBreakInline(ScheduleBreakInlineBase):
    model = ScheduleBreak
    extra = 0
    fields = ("starts_at", "ends_at")


@admin.register(MarketSchedule)
class MarketScheduleAdmin(MarketScheduleModelAdmin):
    """Weekly sessions and daily breaks per instrument class; each row's ``clean`` refuses a
    session or break that ends before it starts, naming the field and its value."""

    list_display = ("name", "instrument_type", "time_zone", "holidays", "updated_at")
    fields = ("name", "instrument_type", "time_zone", "holidays")
    inlines = (ScheduleSessionInline, ScheduleBreakInline)

    def save_related(
        self,
        request: HttpRequest,
        form: ModelForm[MarketSchedule],
        formsets: Any,
        change: bool,
    ) -> None:
        super().save_related(request, form, formsets, change)
        actor, address = operator(request)
        market_schedule_saved(
            schedule=form.instance, created=not change, actor=actor, address=address
        )


@admin.register(PairSchedule)
class PairScheduleAdmin(PairScheduleModelAdmin):
    list_display = ("pair", "schedule")
    autocomplete_fields = ("pair",)

    def save_model(
        self,
        request: HttpRequest,
        obj: PairSchedule,
        form: ModelForm[PairSchedule],
        change: bool,
    ) -> None:
        actor, address = operator(request)
        pair_schedule_save(override=obj, created=not change, actor=actor, address=address)
