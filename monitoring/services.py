"""Writes of monitoring: heartbeats, alerts, notifications and their delivery, daily summaries."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from monitoring import channels, hooks
from monitoring.health import NEW_YORK, ComponentHealth, config_value, run_checks
from monitoring.models import Alert, DailySummary, Heartbeat, Notification, Severity
from monitoring.rules import RULES, Context, Unknown, owned_by
from monitoring.selectors import alert_as_dict
from septrader.locks import advisory_lock
from septrader.models import AuditLog
from trading.models import AccountSnapshot, Trade
from trading.schedule import trading_day_bounds

logger = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 6
# 30 s, 1, 2, 4, 8 min between attempts: about a quarter of an hour before a message is given up.
RETRY_BASE_SECONDS = 30
RETRY_CAP_SECONDS = 30 * 60
# Checks whose success the evaluation records, so a later failure can say when it last passed.
RECORDED_CHECKS = ("database", "cache", "broker", "oanda", "disk", "memory")
EVALUATION_LOCK = 7_310_001


class AlertNotFound(Exception):
    pass


# ----- heartbeats --------------------------------------------------------------------------------


def heartbeats_record(
    *, components: Iterable[str], now: datetime | None = None, details: dict[str, Any] | None = None
) -> None:
    """Mark components alive now (an upsert per component)."""
    moment = now or timezone.now()
    rows = [
        Heartbeat(component=name, last_seen=moment, details=details or {}) for name in components
    ]
    if rows:
        Heartbeat.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["component"],
            update_fields=["last_seen", "details"],
        )


# ----- alerts ------------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _message(alert: Alert, kind: str, now: datetime) -> tuple[str, str, dict[str, Any]]:
    label = alert.severity.upper()
    if kind == Notification.Kind.RESOLVED:
        lasted = _duration((now - alert.first_seen).total_seconds())
        subject = f"[RESOLVED] {alert.condition}"
        text = f"[RESOLVED] {alert.condition} after {lasted}: {alert.message}"
    else:
        subject = f"[{label}] {alert.condition}"
        text = f"[{label}] {alert.condition}: {alert.message}"
    payload = {
        "event": kind,
        "alert": {
            key: value
            for key, value in alert_as_dict(alert).items()
            if not key.startswith("acknowledged")
        },
    }
    return subject[:200], text, payload


def _queue_notifications(alert: Alert, kind: str, now: datetime) -> list[Notification]:
    """Queue one message per channel that takes the alert's severity, after the limits."""
    cooldown = timedelta(seconds=int(config_value("alerts.cooldown_seconds")))
    per_hour = int(config_value("alerts.rate_limit_per_hour"))
    subject, text, payload = _message(alert, kind, now)
    queued = []
    for channel in channels.channels_for(alert.severity):
        status, error = Notification.Status.PENDING, ""
        if kind == Notification.Kind.RESOLVED:
            # A resolution is sent only where the alert itself was announced.
            announced = alert.notifications.filter(
                channel=channel, kind=Notification.Kind.RAISED
            ).exclude(status=Notification.Status.SUPPRESSED)
            if not announced.exists():
                continue
        else:
            recent = Notification.objects.filter(
                channel=channel,
                kind=Notification.Kind.RAISED,
                alert__condition=alert.condition,
                created_at__gte=now - cooldown,
            ).exclude(status=Notification.Status.SUPPRESSED)
            sent_last_hour = (
                Notification.objects.filter(
                    channel=channel, created_at__gte=now - timedelta(hours=1)
                )
                .exclude(status=Notification.Status.SUPPRESSED)
                .count()
            )
            if recent.exists():
                status, error = Notification.Status.SUPPRESSED, "cooldown: raised again too soon"
            elif sent_last_hour >= per_hour:
                status, error = (
                    Notification.Status.SUPPRESSED,
                    f"rate limit: {per_hour} messages an hour on this channel",
                )
        queued.append(
            Notification.objects.create(
                alert=alert,
                channel=channel,
                kind=kind,
                subject=subject,
                text=text,
                payload=payload,
                status=status,
                last_error=error,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return queued


@transaction.atomic
def alert_raise(
    *,
    condition: str,
    severity: str,
    message: str,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Alert:
    """Open an alert for the condition, or count one more sighting of the open one.

    Only a newly opened alert is notified; a sighting updates the message, details, severity,
    ``count`` and ``last_seen``.
    """
    if severity not in Severity.values:
        raise ValueError(f"severity={severity!r} is not valid; expected one of {Severity.values}")
    moment = now or timezone.now()
    alert = (
        Alert.objects.select_for_update()
        .filter(condition=condition, resolved_at__isnull=True)
        .first()
    )
    if alert is not None:
        alert.count += 1
        alert.last_seen = moment
        alert.message = message[:500]
        alert.details = details or {}
        alert.severity = severity
        alert.save(update_fields=["count", "last_seen", "message", "details", "severity"])
        return alert
    alert = Alert.objects.create(
        condition=condition,
        severity=severity,
        message=message[:500],
        details=details or {},
        first_seen=moment,
        last_seen=moment,
    )
    logger.warning(
        "event=alert_raised condition=%s severity=%s message=%r", condition, severity, message
    )
    _queue_notifications(alert, Notification.Kind.RAISED, moment)
    return alert


@transaction.atomic
def alert_resolve(*, condition: str, now: datetime | None = None) -> Alert | None:
    """Resolve the condition's unresolved alert (if any) and announce it where it was raised."""
    moment = now or timezone.now()
    alert = (
        Alert.objects.select_for_update()
        .filter(condition=condition, resolved_at__isnull=True)
        .first()
    )
    if alert is None:
        return None
    alert.state = Alert.State.RESOLVED
    alert.resolved_at = moment
    alert.save(update_fields=["state", "resolved_at"])
    logger.info("event=alert_resolved condition=%s", condition)
    _queue_notifications(alert, Notification.Kind.RESOLVED, moment)
    return alert


@transaction.atomic
def alert_acknowledge(*, alert_id: int, actor: str, address: str | None = None) -> Alert:
    """An operator has seen the alert: it stays unresolved until its condition clears."""
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise AlertNotFound(f"alert_id={alert_id} does not exist")
    if alert.state == Alert.State.OPEN:
        alert.state = Alert.State.ACKNOWLEDGED
        alert.acknowledged_by = actor
        alert.acknowledged_at = timezone.now()
        alert.save(update_fields=["state", "acknowledged_by", "acknowledged_at"])
        AuditLog.objects.create(
            actor=actor,
            address=address,
            action="alert.acknowledge",
            target=alert.condition,
            details={"alert_id": alert.id, "message": alert.message},
        )
    return alert


# ----- delivery ----------------------------------------------------------------------------------


def notifications_deliver(*, now: datetime | None = None, limit: int = 50) -> int:
    """Send the pending messages that are due; returns how many were sent.

    A failure is kept with its reason and retried with exponential backoff; after
    MAX_DELIVERY_ATTEMPTS the message is marked failed. Each attempt is claimed with a conditional
    update, so two deliverers never send the same attempt.
    """
    moment = now or timezone.now()
    due = list(
        Notification.objects.filter(
            status=Notification.Status.PENDING, next_attempt_at__lte=moment
        ).order_by("next_attempt_at", "id")[:limit]
    )
    sent = 0
    for notification in due:
        attempt = notification.attempts + 1
        claimed = Notification.objects.filter(
            pk=notification.pk,
            status=Notification.Status.PENDING,
            attempts=notification.attempts,
        ).update(attempts=attempt)
        if claimed != 1:
            continue
        try:
            channels.send(notification)
        except channels.DeliveryError as error:
            gave_up = attempt >= MAX_DELIVERY_ATTEMPTS
            delay = min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_CAP_SECONDS)
            Notification.objects.filter(pk=notification.pk).update(
                status=Notification.Status.FAILED if gave_up else Notification.Status.PENDING,
                last_error=str(error)[:500],
                next_attempt_at=moment + timedelta(seconds=delay),
            )
            logger.warning(
                "event=notification_failed id=%s channel=%s attempt=%d gave_up=%s error=%r",
                notification.pk,
                notification.channel,
                attempt,
                gave_up,
                str(error),
            )
            continue
        Notification.objects.filter(pk=notification.pk).update(
            status=Notification.Status.SENT, sent_at=timezone.now(), last_error=""
        )
        sent += 1
    return sent


# ----- the evaluation ----------------------------------------------------------------------------


@dataclass
class Evaluation:
    components: list[ComponentHealth]
    raised: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    skipped: bool = False


def alerts_evaluate(*, now: datetime | None = None) -> Evaluation:
    """Check every component, run every rule, raise and resolve alerts, deliver what is due.

    One evaluation at a time (a beat task and ``manage.py monitor`` may both run it).
    """
    moment = now or timezone.now()
    components = run_checks(now=moment)
    evaluation = Evaluation(components=components)
    health = {component.name: component for component in components}
    if health["database"].status != "ok":
        # Nowhere to store an alert: the health command and endpoint report it (exit code 2).
        logger.error("event=alerts_not_evaluated reason=%r", health["database"].reason)
        evaluation.skipped = True
        return evaluation
    with advisory_lock(EVALUATION_LOCK) as granted:
        if not granted:
            evaluation.skipped = True
            return evaluation
        heartbeats_record(
            components=[
                f"check:{name}"
                for name in RECORDED_CHECKS
                if name in health and health[name].status == "ok"
            ],
            now=moment,
        )
        context = Context(now=moment, health=health)
        open_conditions = set(
            Alert.objects.filter(resolved_at__isnull=True).values_list("condition", flat=True)
        )
        for key, rule in RULES:
            try:
                firing = rule(context)
            except Unknown as error:
                evaluation.unknown.append(key)
                logger.info("event=alert_rule_unknown rule=%s reason=%r", key, str(error))
                continue
            except Exception:
                evaluation.unknown.append(key)
                logger.exception("event=alert_rule_failed rule=%s", key)
                continue
            firing_now = set()
            for item in firing:
                firing_now.add(item.condition)
                if item.condition not in open_conditions:
                    evaluation.raised.append(item.condition)
                alert_raise(
                    condition=item.condition,
                    severity=item.severity,
                    message=item.message,
                    details=item.details,
                    now=moment,
                )
            evaluation.firing.extend(sorted(firing_now))
            for condition in sorted(open_conditions):
                if owned_by(key, condition) and condition not in firing_now:
                    alert_resolve(condition=condition, now=moment)
                    evaluation.resolved.append(condition)
    try:
        notifications_deliver(now=moment)
    except DatabaseError:
        logger.exception("event=notification_delivery_failed")
    return evaluation


# ----- the daily summary -------------------------------------------------------------------------


def _nav_at(moment: datetime) -> Decimal | None:

    nav: Decimal | None = (
        AccountSnapshot.objects.filter(time__lte=moment)
        .order_by("-time")
        .values_list("nav", flat=True)
        .first()
    )
    return nav


def daily_summary_figures(day: date) -> dict[str, Any]:

    start, end = trading_day_bounds(day)
    # The account's trades; paper trades are not money.
    closed = Trade.objects.filter(closed_at__gte=start, closed_at__lt=end, paper=False)
    totals = closed.aggregate(
        count=Count("id"),
        wins=Count("id", filter=Q(realized_pl__gt=0)),
        losses=Count("id", filter=Q(realized_pl__lt=0)),
        realized=Sum("realized_pl"),
    )
    nav_start, nav_end = _nav_at(start), _nav_at(end)
    alerts = Alert.objects.filter(first_seen__gte=start, first_seen__lt=end)
    by_severity = dict(alerts.values_list("severity").annotate(count=Count("id")))
    return {
        "day": day.isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "trades_opened": Trade.objects.filter(
            opened_at__gte=start, opened_at__lt=end, paper=False
        ).count(),
        "trades_closed": totals["count"],
        "wins": totals["wins"],
        "losses": totals["losses"],
        "realized_pl": str(totals["realized"] or Decimal(0)),
        "nav_start": str(nav_start) if nav_start is not None else None,
        "nav_end": str(nav_end) if nav_end is not None else None,
        "pl": str(nav_end - nav_start) if nav_start is not None and nav_end is not None else None,
        "alerts_raised": sum(by_severity.values()),
        "alerts_by_severity": by_severity,
        "alerts_open": Alert.objects.filter(resolved_at__isnull=True).count(),
        # Live against its replay (parity/, through the hook: monitoring imports no higher app).
        "parity": hooks.daily_summary_parity(day),
    }


def _summary_text(figures: dict[str, Any]) -> str:
    pl = figures["pl"] if figures["pl"] is not None else "unknown (no account snapshots)"
    severities = ", ".join(
        f"{count} {severity}" for severity, count in sorted(figures["alerts_by_severity"].items())
    )
    return (
        f"SEP Trader daily summary for the trading day ending {figures['day']} 17:00 New York\n"
        f"P&L (NAV change): {pl}; realized: {figures['realized_pl']}\n"
        f"Trades: {figures['trades_opened']} opened, {figures['trades_closed']} closed "
        f"({figures['wins']} won, {figures['losses']} lost)\n"
        f"Alerts: {figures['alerts_raised']} raised{f' ({severities})' if severities else ''}, "
        f"{figures['alerts_open']} open now\n"
        f"{_parity_line(figures['parity'])}"
    )


def _parity_line(parity: dict[str, Any]) -> str:
    if not parity["reports"]:
        return "Parity (live against its replay): no pair was live"
    return (
        f"Parity (live against its replay): {parity['reports']} pair(s), "
        f"{parity['mismatches']} signal mismatch(es), {parity['unexplained']} unexplained; "
        f"P&L live minus replay {parity['pl_difference']}"
    )


def daily_summary_send(
    *, day: date | None = None, now: datetime | None = None
) -> DailySummary | None:
    """Send the summary of a finished trading day once, on every configured channel.

    Without ``day`` it is the day that ended at the last 17:00 New York, and only in the hour
    after it (the beat entry runs hourly). Returns None when there is nothing (more) to send.
    """
    moment = now or timezone.now()
    if day is None:
        local = moment.astimezone(NEW_YORK)
        if local.hour != 17:
            return None
        day = local.date()
    if not config_value("alerts.daily_summary"):
        return None
    figures = daily_summary_figures(day)
    with transaction.atomic():
        summary, created = DailySummary.objects.get_or_create(
            day=day, defaults={"figures": figures}
        )
        if not created:
            return None
        text = _summary_text(figures)
        for channel in channels.channels_for(None):
            Notification.objects.create(
                channel=channel,
                kind=Notification.Kind.SUMMARY,
                subject=f"SEP Trader daily summary {day.isoformat()}",
                text=text,
                payload={"event": "summary", "summary": figures},
                next_attempt_at=moment,
                created_at=moment,
            )
    notifications_deliver(now=moment)
    return summary
