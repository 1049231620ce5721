"""Writes for system-wide records."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from septrader.config import validate_config_value
from septrader.models import SystemConfig


@transaction.atomic
def config_set(*, key: str, value: Any, updated_by: str = "") -> SystemConfig:
    """Validate and store one setting, bumping its version when the value changes."""
    stored_value = validate_config_value(key, value)
    setting, created = SystemConfig.objects.select_for_update().get_or_create(
        key=key, defaults={"value": stored_value, "updated_by": updated_by}
    )
    if not created and setting.value != stored_value:
        SystemConfig.objects.filter(key=key).update(
            value=stored_value, version=F("version") + 1, updated_by=updated_by
        )
        setting.refresh_from_db()
    return setting
