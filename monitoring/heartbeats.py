"""Heartbeats from Celery workers (one per queue they consume) and from beat.

A daemon thread in the worker's main process (and in beat's) records ``worker:<queue>`` (or
``beat``) every MONITORING_HEARTBEAT_SECONDS. It proves the process is alive without needing
beat or a free pool slot, so a stopped worker is seen as missing even while beat keeps sending
tasks, and a stopped beat is seen while every worker is idle. Connected from septrader/celery.py.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery import signals

logger = logging.getLogger(__name__)


def django_setup_once() -> None:
    """Set Django up unless it already is (Celery's Django fix-up does it in workers and beat).

    ``django.setup()`` applies ``settings.LOGGING`` again on every call. In a worker, whose
    stderr Celery has by then redirected into logging, that points the root handler at the
    redirect itself: every later line of the main process, and of every pool process forked
    afterwards (``--max-tasks-per-child``), was silently dropped.
    """
    from django.apps import apps

    if not apps.ready:
        import django

        django.setup()


def _publish_forever(components: list[str], interval: float, stop: threading.Event) -> None:
    django_setup_once()
    from django.db import close_old_connections, connection

    from monitoring.services import heartbeats_record

    details = {"hostname": socket.gethostname(), "pid": os.getpid()}
    while not stop.is_set():
        try:
            close_old_connections()
            heartbeats_record(components=components, details=details)
        except Exception as error:
            logger.warning("event=heartbeat_failed components=%s error=%r", components, error)
            connection.close()
        stop.wait(interval)


def start_publisher(components: list[str]) -> threading.Event:
    from django.conf import settings

    stop = threading.Event()
    thread = threading.Thread(
        target=_publish_forever,
        args=(components, float(settings.MONITORING_HEARTBEAT_SECONDS), stop),
        name="monitoring-heartbeat",
        daemon=True,
    )
    thread.start()
    logger.info("event=heartbeat_started components=%s", ",".join(components))
    return stop


def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from)
    start_publisher([f"worker:{queue}" for queue in queues])


def _on_beat_init(sender: Any = None, **kwargs: Any) -> None:
    start_publisher(["beat"])


def connect_heartbeats() -> None:
    signals.worker_ready.connect(_on_worker_ready, weak=False)
    signals.beat_init.connect(_on_beat_init, weak=False)
