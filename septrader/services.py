"""Writes for system-wide records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from septrader.config import ConfigValueError, validate_config_value
from septrader.models import AuditLog, SystemConfig, TaskRun
from septrader.selectors import CONFIG_GENERATION_KEY


def _change_time(previous: datetime | None) -> datetime:
    """When a change made here now happened: now, but never at or before the change it replaces.

    The value it replaces may have been stamped by another node whose clock runs ahead; a new
    change stamped before it would lose to the old value on that node's next import.
    """
    now = timezone.now()
    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now


@transaction.atomic
def config_set(*, key: str, value: Any, updated_by: str = "") -> SystemConfig:
    """Validate and store one setting, bumping its version when the value changes.

    Every change records when it was made and on which node (``SYNC_NODE_NAME``), so sync can
    keep the later of two changes; a value equal to the stored one writes nothing.
    """
    stored_value = validate_config_value(key, value)
    setting, created = SystemConfig.objects.select_for_update().get_or_create(
        key=key,
        defaults={
            "value": stored_value,
            "updated_by": updated_by,
            "changed_at": _change_time(None),
            "origin_node": settings.SYNC_NODE_NAME,
        },
    )
    if not created and setting.value != stored_value:
        SystemConfig.objects.filter(key=key).update(
            value=stored_value,
            version=F("version") + 1,
            updated_by=updated_by,
            # update() skips auto_now, so the write time is set here.
            updated_at=timezone.now(),
            changed_at=_change_time(setting.changed_at),
            origin_node=settings.SYNC_NODE_NAME,
        )
        setting.refresh_from_db()
    return setting


class ConfigMergeOutcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    # The same value: at most the record of when and where it changed moves to the later one.
    SAME = "same"
    # This node's change is the later one and its value differs: a conflict, kept.
    KEPT_LATER_HERE = "kept_later_here"
    # The incoming change is the later one but the caller may not change settings.
    REFUSED = "refused"


@dataclass(frozen=True)
class ConfigMerge:
    key: str
    outcome: ConfigMergeOutcome
    # The value here before the merge (None when the key was not stored), and the incoming one.
    previous: Any
    incoming: Any
    # When and on which node the value here before the merge was changed.
    previous_changed_at: datetime | None = None
    previous_origin_node: str = ""


@transaction.atomic
def config_merge(
    *,
    key: str,
    value: Any,
    changed_at: datetime,
    origin_node: str,
    updated_by: str,
    may_change: bool,
) -> ConfigMerge:
    """Merge one setting changed on another node (``changed_at`` there, by ``origin_node``).

    The later change wins; of two changes at the same instant, the one made on the greater node
    name (compared as text) wins, so every node settles on the same value whatever the order of
    imports. The version still counts this node's writes. ``may_change`` False (a caller without
    the admin role) leaves every value as it is and reports the keys it would have changed.
    """
    incoming = validate_config_value(key, value)
    setting = SystemConfig.objects.select_for_update().filter(key=key).first()
    if setting is None:
        if not may_change:
            return ConfigMerge(key, ConfigMergeOutcome.REFUSED, None, incoming)
        setting, created = SystemConfig.objects.select_for_update().get_or_create(
            key=key,
            defaults={
                "value": incoming,
                "updated_by": updated_by,
                "changed_at": changed_at,
                "origin_node": origin_node,
            },
        )
        if created:
            return ConfigMerge(key, ConfigMergeOutcome.CREATED, None, incoming)
        # Another writer created it meanwhile: merge with what it wrote, as below.
    here_node = setting.origin_node or settings.SYNC_NODE_NAME
    if (changed_at, origin_node) <= (setting.changed_at, here_node):
        same = setting.value == incoming
        outcome = ConfigMergeOutcome.SAME if same else ConfigMergeOutcome.KEPT_LATER_HERE
    elif setting.value == incoming:
        # Nothing changes here, but the later record of the change is kept so that every node
        # compares a third node's change with the same time.
        SystemConfig.objects.filter(key=key).update(
            updated_at=timezone.now(), changed_at=changed_at, origin_node=origin_node
        )
        outcome = ConfigMergeOutcome.SAME
    elif not may_change:
        outcome = ConfigMergeOutcome.REFUSED
    else:
        SystemConfig.objects.filter(key=key).update(
            value=incoming,
            version=F("version") + 1,
            updated_by=updated_by,
            updated_at=timezone.now(),
            changed_at=changed_at,
            origin_node=origin_node,
        )
        outcome = ConfigMergeOutcome.UPDATED
    return ConfigMerge(key, outcome, setting.value, incoming, setting.changed_at, here_node)


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
def config_save(
    *, key: str, value: Any, previous: Any, actor: str, address: str | None = None
) -> SystemConfig:
    """Set one setting from the console's settings page (``config_set``), audited
    (``config.set``, from ``previous``: the value the operator saw, None for a new key)."""
    setting = config_set(key=key, value=value, updated_by=actor)
    audit_record(
        actor=actor,
        action="config.set",
        target=key,
        details={"from": previous, "to": setting.value},
        address=address,
    )
    return setting


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
