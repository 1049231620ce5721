"""Tasks of the project as a whole: diagnostics and the scheduled database backup."""

from __future__ import annotations

import socket
import time

from celery import shared_task


@shared_task(name="septrader.ping_task", ignore_result=False)
def ping_task(queue: str) -> dict[str, str]:
    """Answer from the worker that consumes ``queue``, so a check can prove the queue is served."""
    return {"queue": queue, "host": socket.gethostname()}


@shared_task(name="septrader.backup_database_task")
def backup_database_task() -> str:
    """The scheduled backup (CELERY_BEAT_SCHEDULE); returns the archive's path.

    Not retried: a failure is logged and the next night's run tries again.
    """
    from septrader.backups import backup_create

    return str(backup_create().path)


@shared_task(name="septrader.run_probe_task", ignore_result=False)
def run_probe_task(key: str, seconds: float) -> bool:
    """A keyed no-op that takes ``seconds``: proves a lost task is redelivered and done once.

    Operators can send it to a queue to see a worker pick it up (`docs/celery.md`); the
    reliability test kills the worker while it sleeps. Returns whether this attempt did the work.
    """
    from septrader.services import task_run_begin, task_run_complete

    if not task_run_begin(key=key, task="septrader.run_probe_task"):
        return False
    time.sleep(seconds)
    return task_run_complete(key=key, result={"host": socket.gethostname()})


@shared_task(name="septrader.failover_nodes_task")
def failover_nodes_task() -> dict[str, object]:
    """Move the pairs of nodes silent beyond ``cluster.node_silence_seconds`` (beat, every 10 s)."""
    from septrader.cluster import nodes_failover

    report = nodes_failover()
    return {"down": report.down, "moved": report.moved, "stranded": report.stranded}
