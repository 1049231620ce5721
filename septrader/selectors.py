"""Reads of system-wide records."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from django.core.cache import cache
from django.db.models import Model, QuerySet

from septrader.config import CONFIG_KEYS
from septrader.models import AuditLog, SystemConfig

ModelT = TypeVar("ModelT", bound=Model)

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


def rows_narrowed(
    rows: QuerySet[ModelT],
    *,
    time_field: str = "time",
    start: datetime | None = None,
    end: datetime | None = None,
    **equal: Any,
) -> QuerySet[ModelT]:
    """``rows`` whose fields equal each value given in ``equal`` (None: any value), and whose
    ``time_field`` is in [start, end) (either end open when None): a list endpoint's filters."""
    rows = rows.filter(**{name: value for name, value in equal.items() if value is not None})
    if start is not None:
        rows = rows.filter(**{f"{time_field}__gte": start})
    if end is not None:
        rows = rows.filter(**{f"{time_field}__lt": end})
    return rows


def audit_entries(
    *,
    actor: str | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[AuditLog]:
    """The audit log, newest first: of one actor and one action when given, in [start, end)."""
    entries = AuditLog.objects.order_by("-time", "-id")
    return rows_narrowed(entries, start=start, end=end, actor=actor, action=action)
