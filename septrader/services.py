"""Writes for system-wide records."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from septrader.config import validate_config_value
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
