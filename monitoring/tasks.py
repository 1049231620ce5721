"""Periodic monitoring work (default queue): the alert evaluation and the daily summary."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from monitoring.services import alerts_evaluate, daily_summary_send, notifications_deliver


@shared_task(name="monitoring.evaluate_alerts_task")
def evaluate_alerts_task() -> dict[str, Any]:
    evaluation = alerts_evaluate()
    return {
        "raised": evaluation.raised,
        "resolved": evaluation.resolved,
        "skipped": evaluation.skipped,
    }


@shared_task(name="monitoring.send_daily_summary_task")
def send_daily_summary_task() -> str | None:
    summary = daily_summary_send()
    return summary.day.isoformat() if summary else None


@shared_task(name="monitoring.deliver_notifications_task")
def deliver_notifications_task() -> int:
    return notifications_deliver()
