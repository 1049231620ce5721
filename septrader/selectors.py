"""Reads of system-wide records."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache

from septrader.config import CONFIG_KEYS
from septrader.models import SystemConfig

# A counter in the shared cache that every settings change moves on (config_generation_bump).
CONFIG_GENERATION_KEY = "config:generation"


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


def config_generation() -> int:
    """The config generation (see ``septrader.services.config_generation_bump``); 0 before any."""
    return int(cache.get(CONFIG_GENERATION_KEY, 0))


def config_listing() -> list[dict[str, Any]]:
    """Every setting: key, value (stored or default), default, version, help, expectation."""
    stored = {row.key: row for row in SystemConfig.objects.all()}
    rows = []
    for key, spec in sorted(CONFIG_KEYS.items()):
        row = stored.get(key)
        rows.append(
            {
                "key": key,
                "value": row.value if row else spec.default,
                "default": spec.default,
                "kind": spec.kind,
                "expected": spec.expectation(),
                "version": row.version if row else 0,
                "updated_at": row.updated_at if row else None,
                "updated_by": row.updated_by if row else "",
                "help": spec.help,
            }
        )
    return rows
