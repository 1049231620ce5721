from __future__ import annotations

from django.db import models
from django.utils import timezone

from septrader.queues import node_queue


class SystemConfig(models.Model):
    """One runtime setting (``system_config``): a key, its JSON value, and a version counter.

    Values are validated against ``septrader.config.CONFIG_KEYS`` by ``config_set`` before they
    are written; a process sees a new value by comparing versions, without a restart. The version
    counts this node's writes only, so it says nothing across nodes: sync compares when and where
    the value was last changed (``changed_at``, ``origin_node``) instead.
    """

    key = models.CharField(max_length=100, primary_key=True)
    value = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    # When this row was last written here (a change made here, or one imported by sync).
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(
        default=timezone.now,
        help_text="When (UTC) the value was last changed, on whichever node changed it.",
    )
    origin_node = models.CharField(
        max_length=255,
        blank=True,
        help_text="The node (SYNC_NODE_NAME) that made the last change; empty: this node.",
    )

    class Meta:
        db_table = "system_config"
        ordering = ["key"]
        verbose_name = "system setting"

    def __str__(self) -> str:
        return self.key


class AuditLog(models.Model):
    """Every operator action and every automatic state change: who, what, when, from where."""

    id = models.BigAutoField(primary_key=True)
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    # A username, or ``system:<component>`` for automatic actions (risk trips, reconciliation).
    actor = models.CharField(max_length=150)
    address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "audit_log"
        ordering = ["-time", "-id"]
        # The API roles' permissions (septrader/api/permissions.py), held by the groups of the
        # same names; they sit here because Django permissions belong to a model.
        permissions = [
            ("api_read", "Can read the API"),
            ("api_control", "Can control trading through the API"),
            ("api_admin", "Can change configuration and read the audit log through the API"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"


# The instrument types a node may serve (``marketdata.models.Pair.InstrumentType``'s values; this
# base layer may not import it, and a test checks that the two agree).
NODE_MARKETS = ("CURRENCY", "METAL", "CFD")


class Node(models.Model):
    """An execution node (a droplet): its queue is ``exec.<name>``; it trades its pairs."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAINING = "draining", "Draining (no new pairs, its pairs move away)"
        DOWN = "down", "Down (silent beyond the threshold)"

    name = models.SlugField(max_length=50, unique=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The markets this node trades: instrument types as the broker names them (``Pair``'s
    # ``instrument_type``: CURRENCY, METAL, CFD); empty = every market. A crypto droplet lists
    # CFD; failover, rebalance and assignments give it only such pairs, and its FX neighbours
    # (CURRENCY) never get a crypto pair.
    markets = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "cluster_nodes"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def serves(self, instrument_type: str) -> bool:
        return not self.markets or instrument_type in self.markets

    @property
    def queue(self) -> str:
        return node_queue(self.name)


class TaskRun(models.Model):
    """The idempotency record of a task that must take effect once even if delivered twice.

    Celery acknowledges a task only after it ran (``acks_late``), so a worker lost mid-task means
    the task runs again elsewhere. A task keyed here starts by counting an attempt, skips its work
    when a previous attempt already completed, and marks completion with a conditional update that
    only one attempt can win.
    """

    key = models.CharField(max_length=200, primary_key=True)
    task = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "task_runs"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.task} {self.key}"


class SyncImport(models.Model):
    """A sync bundle that was imported: importing the same bundle again changes nothing."""

    bundle_id = models.UUIDField(unique=True)
    sha256 = models.CharField(max_length=64)
    file_name = models.CharField(max_length=255)
    source_node = models.CharField(max_length=255)
    created_at = models.DateTimeField(help_text="When the source node wrote the bundle.")
    imported_at = models.DateTimeField(auto_now_add=True)
    counts = models.JSONField(default=dict)
    # Only an admin may change settings: an operator's import applies the rest of the bundle and
    # leaves these keys for an admin's import of the same bundle.
    config_refused = models.JSONField(
        default=list,
        blank=True,
        help_text="Settings the importer's role could not change; an admin's import applies them.",
    )

    class Meta:
        db_table = "sync_imports"
        ordering = ["-imported_at"]

    def __str__(self) -> str:
        return f"{self.file_name} from {self.source_node}"
