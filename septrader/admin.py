"""Console pages for system settings, the audit log and task runs (nodes: nodes/admin.py)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from septrader.admin_tools import EstimatedCountPaginator, ReadOnlyAdmin, operator
from septrader.config import CONFIG_KEYS, ConfigValueError, validate_config_value
from septrader.models import AuditLog, SystemConfig, TaskRun
from septrader.services import config_save


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
        # Writes go through the service so the value is validated, the version bumped and the
        # change audited.
        actor, address = operator(request)
        saved = config_save(
            key=obj.key,
            value=obj.value,
            previous=form.initial.get("value") if change else None,
            actor=actor,
            address=address,
        )
        obj.version = saved.version


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


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    """Idempotency records of once-only tasks: how often each was delivered and when it finished."""

    list_display = ("task", "key", "attempts", "started_at", "completed_at")
    list_filter = ("task",)
    search_fields = ("key", "task")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
