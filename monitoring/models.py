"""Health, alerts and notifications (DESIGN.md section 8)."""

from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """The last time a component proved alive, keyed by component name.

    Workers (``worker:<queue>``) and beat (``beat``) write their own every few seconds; the
    alert evaluation records the last success of the checks it runs (``check:<name>``), so a
    failing check can still say when it last passed.
    """

    component = models.CharField(max_length=100, primary_key=True)
    last_seen = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "monitoring_heartbeats"
        ordering = ["component"]

    def __str__(self) -> str:
        return f"{self.component} {self.last_seen:%Y-%m-%d %H:%M:%S}"


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK: dict[str, int] = {"info": 1, "warning": 2, "critical": 3}


class Alert(models.Model):
    """One occurrence of an alert condition, from first seen until the condition clears.

    At most one alert per condition is unresolved at a time: raising it again bumps ``count`` and
    ``last_seen``. An operator's acknowledgement keeps it unresolved (the condition still holds);
    only the condition clearing resolves it.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    id = models.BigAutoField(primary_key=True)
    # What is wrong, e.g. ``cache.unreachable`` or ``prices.stale:EUR_USD``.
    condition = models.CharField(max_length=100)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    message = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=12, choices=State.choices, default=State.OPEN)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "monitoring_alerts"
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["condition"],
                condition=models.Q(resolved_at__isnull=True),
                name="monitoring_alerts_one_unresolved_per_condition",
            ),
        ]
        indexes = [models.Index(fields=["state", "severity"], name="monitoring_alerts_state")]

    def __str__(self) -> str:
        return f"[{self.severity}] {self.condition}: {self.message}"


class Notification(models.Model):
    """One message for one channel: an alert raised or resolved, or a daily summary.

    Delivery is retried with backoff until it succeeds or runs out of attempts; what went wrong
    is kept. A message held back by the rate limit or the cooldown is stored as suppressed.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"
        TELEGRAM = "telegram", "Telegram"

    class Kind(models.TextChoices):
        RAISED = "raised", "Alert raised"
        RESOLVED = "resolved", "Alert resolved"
        SUMMARY = "summary", "Daily summary"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"
        SUPPRESSED = "suppressed", "Suppressed (rate limit or cooldown)"

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(
        Alert, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    text = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "monitoring_notifications"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="monitoring_notif_due"),
            models.Index(fields=["channel", "created_at"], name="monitoring_notif_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.kind} {self.status}: {self.subject}"


class DailySummary(models.Model):
    """The figures of one finished trading day (17:00 to 17:00 New York), sent once."""

    day = models.DateField(unique=True)
    figures = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "monitoring_daily_summaries"
        ordering = ["-day"]
        verbose_name_plural = "daily summaries"

    def __str__(self) -> str:
        return f"summary {self.day}"
