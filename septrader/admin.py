"""Console pages for system settings, the audit log and execution nodes."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html

from septrader.admin_tools import EstimatedCountPaginator, ReadOnlyAdmin, operator
from septrader.cluster import (
    ClusterError,
    ClusterReport,
    node_drain,
    node_rejoin,
    nodes_rebalance,
)
from septrader.config import CONFIG_KEYS, ConfigValueError, validate_config_value
from septrader.models import AuditLog, Node, SystemConfig, TaskRun
from septrader.services import audit_record, config_set


class SystemConfigForm(forms.ModelForm):
    """A setting's value, checked against its schema (the error names the key and expectation)."""

    key = forms.ChoiceField(choices=[(key, key) for key in sorted(CONFIG_KEYS)])

    class Meta:
        model = SystemConfig
        fields = ("key", "value")
        help_texts = {
            "value": 'JSON: decimals as strings ("0.02"), integers as numbers, true or false, '
            "lists in brackets."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key = self.instance.key if self.instance and self.instance.pk else None
        if key in CONFIG_KEYS:
            spec = CONFIG_KEYS[key]
            self.fields["value"].help_text = f"{spec.help} Expected: {spec.expectation()}."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # On a change page the key is read-only, so it comes from the stored row.
        key = cleaned.get("key") or self.instance.key
        if key and "value" in cleaned:
            try:
                cleaned["value"] = validate_config_value(key, cleaned["value"])
            except ConfigValueError as error:
                self.add_error("value", str(error))
        return cleaned


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    form = SystemConfigForm
    list_display = ("key", "value", "version", "updated_at", "updated_by", "origin_node")
    search_fields = ("key",)
    readonly_fields = ("version", "updated_at", "updated_by", "changed_at", "origin_node")

    def get_readonly_fields(self, request: HttpRequest, obj: SystemConfig | None = None) -> Any:
        # A stored setting's key is its identity: change the value, or delete and add another.
        return (*self.readonly_fields, "key") if obj is not None else self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: SystemConfig, form: forms.ModelForm, change: bool
    ) -> None:
        # Writes go through the service so the value is validated and the version bumped.
        actor, address = operator(request)
        previous = form.initial.get("value") if change else None
        saved = config_set(key=obj.key, value=obj.value, updated_by=actor)
        obj.version = saved.version
        audit_record(
            actor=actor,
            action="config.set",
            target=obj.key,
            details={"from": previous, "to": saved.value},
            address=address,
        )


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("time", "actor", "address", "action", "target", "details_short")
    list_filter = ("action",)
    search_fields = ("actor", "action", "target")
    ordering = ("-time", "-id")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = ("time", "actor", "address", "action", "target", "details_pretty")
    readonly_fields = fields

    @admin.display(description="details")
    def details_short(self, obj: AuditLog) -> str:
        text = json.dumps(obj.details, sort_keys=True, default=str)
        return text if len(text) <= 120 else text[:117] + "..."

    @admin.display(description="details")
    def details_pretty(self, obj: AuditLog) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.details, indent=2, sort_keys=True, default=str)
        )


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("name", "state", "last_heartbeat", "queue", "pair_list", "created_at")
    list_filter = ("state",)
    search_fields = ("name",)
    readonly_fields = ("last_heartbeat", "queue", "created_at")
    actions = ("drain_nodes", "rejoin_nodes", "rebalance_pairs")

    @admin.display(description="queue")
    def queue(self, obj: Node) -> str:
        return obj.queue

    @admin.display(description="pairs")
    def pair_list(self, obj: Node) -> str:
        return ", ".join(pair.symbol for pair in obj.pairs.all()) or "-"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("pairs")

    def _report(self, request: HttpRequest, report: ClusterReport, verb: str) -> None:
        moved = ", ".join(f"{pair} to {target}" for pair, _, target in report.moved)
        self.message_user(request, f"{verb}; moved: {moved or 'nothing'}.")
        if report.stranded:
            self.message_user(
                request,
                f"No healthy active node for {', '.join(report.stranded)}.",
                level=messages.WARNING,
            )

    @admin.action(description="Drain (maintenance): move their pairs to other nodes")
    def drain_nodes(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        for node in queryset:
            report = node_drain(name=node.name, actor=actor, address=address)
            self._report(request, report, f"{node.name} draining")

    @admin.action(description="Rejoin: make active again (then rebalance to give them pairs)")
    def rejoin_nodes(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        for node in queryset:
            node_rejoin(name=node.name, actor=actor, address=address)
        self.message_user(request, f"{queryset.count()} node(s) active.")

    @admin.action(description="Rebalance pairs over all active nodes (selection ignored)")
    def rebalance_pairs(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        try:
            report = nodes_rebalance(actor=actor, address=address)
        except ClusterError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self._report(request, report, "Rebalanced")

    def save_model(
        self, request: HttpRequest, obj: Node, form: forms.ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        actor, address = operator(request)
        audit_record(
            actor=actor,
            action="node.change" if change else "node.add",
            target=obj.name,
            details={"changed": form.changed_data, "state": obj.state},
            address=address,
        )


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    """Idempotency records of once-only tasks: how often each was delivered and when it finished."""

    list_display = ("task", "key", "attempts", "started_at", "completed_at")
    list_filter = ("task",)
    search_fields = ("key", "task")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
