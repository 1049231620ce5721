"""Diagnostic tasks shared by every queue."""

from __future__ import annotations

import socket

from celery import shared_task


@shared_task(name="septrader.ping_task", ignore_result=False)
def ping_task(queue: str) -> dict[str, str]:
    """Answer from the worker that consumes ``queue``, so a check can prove the queue is served."""
    return {"queue": queue, "host": socket.gethostname()}
