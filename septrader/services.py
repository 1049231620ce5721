"""Writes for system-wide records."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from septrader.config import ConfigValueError, validate_config_value
from septrader.models import AuditLog, SystemConfig, TaskRun


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


def audit_record(
    *,
    actor: str,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
    address: str | None = None,
) -> AuditLog:
    """Write one audit entry: an operator's action or an automatic state change.

    ``actor`` is a username, or ``system:<component>`` for what the system did by itself.
    """
    return AuditLog.objects.create(
        actor=actor[:150],
        action=action,
        target=target[:200],
        details=details or {},
        address=address,
    )


@transaction.atomic
def config_update(
    *, values: dict[str, Any], actor: str, address: str | None = None
) -> dict[str, SystemConfig]:
    """Set several settings at once: every value is validated before any is written, so one bad
    value (``ConfigValueError`` naming its key) leaves them all as they were. Audited, and the
    config generation moves on so processes that cache settings read them again."""
    if not isinstance(values, dict) or not values:
        raise ConfigValueError("body", values, "an object of one or more {key: value}")
    for key, value in values.items():
        validate_config_value(key, value)
    previous = dict(SystemConfig.objects.filter(key__in=values).values_list("key", "value"))
    settings = {
        key: config_set(key=key, value=value, updated_by=actor) for key, value in values.items()
    }
    audit_record(
        actor=actor,
        action="config.set",
        target=", ".join(sorted(values))[:200],
        details={
            key: {"from": previous.get(key), "to": setting.value}
            for key, setting in settings.items()
        },
        address=address,
    )
    transaction.on_commit(config_generation_bump)
    return settings


CONFIG_GENERATION_KEY = "config:generation"


def config_generation_bump() -> int:
    """Move the config generation on (a counter in the shared cache).

    Settings are read from the database on every use today, so a change takes effect at once;
    the generation is the signal for any process that keeps settings in memory (now or later) to
    drop its copy: it compares ``septrader.selectors.config_generation()`` with the number it
    loaded under.
    """
    cache.add(CONFIG_GENERATION_KEY, 0, timeout=None)
    try:
        return int(cache.incr(CONFIG_GENERATION_KEY))
    except ValueError:  # evicted between add() and incr()
        cache.set(CONFIG_GENERATION_KEY, 1, timeout=None)
        return 1


def config_reload(*, actor: str, address: str | None = None) -> int:
    """Ask every process to read its settings again (``PUT /api/config/reload``); audited."""
    generation = config_generation_bump()
    audit_record(
        actor=actor,
        action="config.reload",
        target=f"generation {generation}",
        address=address,
    )
    return generation


@transaction.atomic
def task_run_begin(*, key: str, task: str) -> bool:
    """Count an attempt of the task keyed ``key``; False when an earlier attempt completed it."""
    run, _ = TaskRun.objects.select_for_update().get_or_create(key=key, defaults={"task": task})
    if run.completed_at is not None:
        return False
    TaskRun.objects.filter(key=key).update(attempts=F("attempts") + 1, started_at=timezone.now())
    return True


def task_run_complete(*, key: str, result: dict[str, Any] | None = None) -> bool:
    """Mark the task keyed ``key`` done; True for the one attempt that completes it."""
    updated = TaskRun.objects.filter(key=key, completed_at__isnull=True).update(
        completed_at=timezone.now(), result=result or {}
    )
    return updated == 1
