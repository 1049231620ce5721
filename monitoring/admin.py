"""Console pages for alerts (acknowledged by the operator, audited), their notifications,
heartbeats and daily summaries: all written by the system, so read-only here."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from monitoring.models import Alert, DailySummary, Heartbeat, Notification
from monitoring.services import alert_acknowledge
from septrader.admin_tools import EstimatedCountPaginator, ReadOnlyAdmin, operator


def _pretty(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class NotificationInline(admin.TabularInline):
    model = Notification
    extra = 0
    can_delete = False
    fields = ("channel", "kind", "status", "attempts", "last_error", "sent_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = (
        "last_seen",
        "severity",
        "state",
        "condition",
        "message",
        "count",
        "first_seen",
        "acknowledged_by",
        "resolved_at",
    )
    list_filter = ("state", "severity")
    search_fields = ("condition", "message")
    ordering = ("-last_seen",)
    fields = (
        "condition",
        "severity",
        "state",
        "message",
        "count",
        "first_seen",
        "last_seen",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_at",
        "details_pretty",
    )
    readonly_fields = fields
    inlines = [NotificationInline]
    actions = ["acknowledge"]

    @admin.display(description="details")
    def details_pretty(self, obj: Alert) -> str:
        return _pretty(obj.details)

    @admin.action(description="Acknowledge the selected alerts (they stay until they clear)")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        actor, address = operator(request)
        acknowledged = 0
        for alert_id, state in queryset.values_list("id", "state"):
            alert_acknowledge(alert_id=alert_id, actor=actor, address=address)
            acknowledged += state == Alert.State.OPEN
        skipped = queryset.count() - acknowledged
        self.message_user(
            request,
            f"{acknowledged} alert(s) acknowledged"
            + (f"; {skipped} already acknowledged or resolved" if skipped else ""),
            messages.SUCCESS,
        )


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "kind", "status", "attempts", "subject", "last_error")
    list_filter = ("channel", "kind", "status")
    search_fields = ("subject",)
    ordering = ("-created_at", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = (
        "alert",
        "channel",
        "kind",
        "status",
        "subject",
        "text",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
        "created_at",
    )
    readonly_fields = fields


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("component", "last_seen", "details")
    search_fields = ("component",)


@admin.register(DailySummary)
class DailySummaryAdmin(ReadOnlyAdmin):
    list_display = ("day", "created_at")
    fields = ("day", "figures_pretty", "created_at")
    readonly_fields = fields

    @admin.display(description="figures")
    def figures_pretty(self, obj: DailySummary) -> str:
        return _pretty(obj.figures)
