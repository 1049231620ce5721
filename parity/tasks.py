"""The parity report's beat task (default queue): after each New York 17:00 close, the finished
day's reports of the pairs that lack one."""

from __future__ import annotations

from celery import shared_task

from parity.services import live_analyses_prune, parity_run_due


@shared_task(name="parity.run_parity_reports_task")  # type: ignore[untyped-decorator]  # celery: no hints
def run_parity_reports_task() -> list[str]:
    """Idempotent: a pair whose report of the day exists is left alone."""
    return [f"{report.pair_id} {report.day.isoformat()}" for report in parity_run_due()]


@shared_task(name="parity.prune_live_analyses_task")  # type: ignore[untyped-decorator]  # celery: no hints
def prune_live_analyses_task() -> int:
    """Daily: the live analysis log older than SystemConfig parity.live_analysis_days."""
    return live_analyses_prune()
