from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from monitoring.models import Alert, DailySummary, Heartbeat, Notification
from monitoring.services import alert_acknowledge


class NotificationInline(admin.TabularInline):
    model = Notification
    extra = 0
    can_delete = False
    fields = ("channel", "kind", "status", "attempts", "last_error", "sent_at")
    readonly_fields = fields


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("condition", "severity", "state", "count", "first_seen", "last_seen", "message")
    list_filter = ("state", "severity")
    search_fields = ("condition", "message")
    readonly_fields = [field.name for field in Alert._meta.fields]
    inlines = [NotificationInline]
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge the selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        for alert in queryset:
            alert_acknowledge(
                alert_id=alert.id,
                actor=request.user.get_username(),
                address=request.META.get("REMOTE_ADDR"),
            )
        self.message_user(request, f"{queryset.count()} alert(s) acknowledged.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "kind", "status", "attempts", "subject", "last_error")
    list_filter = ("channel", "kind", "status")
    readonly_fields = [field.name for field in Notification._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Heartbeat)
class HeartbeatAdmin(admin.ModelAdmin):
    list_display = ("component", "last_seen", "details")


@admin.register(DailySummary)
class DailySummaryAdmin(admin.ModelAdmin):
    list_display = ("day", "created_at")
    readonly_fields = ("day", "figures", "created_at")
