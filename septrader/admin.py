from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms import ModelForm
from django.http import HttpRequest

from septrader.config import ConfigValueError, validate_config_value
from septrader.models import SystemConfig
from septrader.services import config_set


class SystemConfigForm(ModelForm):
    class Meta:
        model = SystemConfig
        fields = ("key", "value")

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        try:
            validate_config_value(cleaned.get("key", ""), cleaned.get("value"))
        except ConfigValueError as error:
            raise ValidationError(str(error)) from None
        return cleaned


@admin.register(SystemConfig)
class SystemConfigAdmin(admin.ModelAdmin):
    form = SystemConfigForm
    list_display = ("key", "value", "version", "updated_at", "updated_by")
    search_fields = ("key",)
    readonly_fields = ("version", "updated_at", "updated_by")

    def save_model(
        self, request: HttpRequest, obj: SystemConfig, form: ModelForm, change: bool
    ) -> None:
        # Writes go through the service so the value is validated and the version bumped.
        saved = config_set(key=obj.key, value=obj.value, updated_by=request.user.get_username())
        obj.version = saved.version
