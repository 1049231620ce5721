"""Tasks of the project as a whole: diagnostics."""

from __future__ import annotations

import socket
import time

from celery import shared_task

from septrader.services import task_run_begin, task_run_complete


@shared_task(name="septrader.ping_task", ignore_result=False)
def ping_task(queue: str) -> dict[str, str]:
    """Answer from the worker that consumes ``queue``, so a check can prove the queue is served."""
    return {"queue": queue, "host": socket.gethostname()}


@shared_task(name="septrader.run_probe_task", ignore_result=False)
def run_probe_task(key: str, seconds: float) -> bool:
    """A keyed no-op that takes ``seconds``: proves a lost task is redelivered and done once.

    Operators can send it to a queue to see a worker pick it up (`docs/celery.md`); the
    reliability test kills the worker while it sleeps. Returns whether this attempt did the work.
    """
    if not task_run_begin(key=key, task="septrader.run_probe_task"):
        return False
    time.sleep(seconds)
    return task_run_complete(key=key, result={"host": socket.gethostname()})
