"""Reads of system-wide records."""

from __future__ import annotations

from typing import Any

from septrader.config import CONFIG_KEYS
from septrader.models import SystemConfig


def config_get(key: str) -> Any:
    """The stored value of a setting, or its default when nobody has set it."""
    stored = SystemConfig.objects.filter(key=key).values_list("value", flat=True).first()
    return CONFIG_KEYS[key].default if stored is None else stored


def config_values(prefix: str) -> dict[str, Any]:
    """Every setting whose key starts with ``prefix``, stored values over defaults, in one query."""
    values = {key: spec.default for key, spec in CONFIG_KEYS.items() if key.startswith(prefix)}
    stored = SystemConfig.objects.filter(key__startswith=prefix).values_list("key", "value")
    values.update({key: value for key, value in stored if key in CONFIG_KEYS})
    return values
