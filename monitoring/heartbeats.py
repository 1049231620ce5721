"""Heartbeats from Celery workers (one per queue they consume) and from beat.

A daemon thread in the worker's main process (and in beat's) records ``worker:<queue>`` (or
``beat``) every MONITORING_HEARTBEAT_SECONDS. It proves the process is alive without needing
beat or a free pool slot, so a stopped worker is seen as missing even while beat keeps sending
tasks, and a stopped beat is seen while every worker is idle. Connected from septrader/celery.py.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from collections.abc import Callable
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


def start_heartbeat_thread(
    beat: Callable[[], object],
    *,
    interval: float,
    thread_name: str,
    on_error: Callable[[Exception], None],
    setup: Callable[[], None] | None = None,
) -> threading.Event:
    """A daemon thread that calls ``beat`` every ``interval`` seconds until the event it returns
    is set: the one heartbeat loop of workers, beat and nodes.

    The thread runs ``setup`` first (once), and gives every beat a usable database connection
    (a connection closed by the server, or past its age, is replaced). A beat that raises is
    handed to ``on_error`` (to log it), its connection is closed, and the thread beats again on
    time: a database that is down for a while does not stop the heartbeats for good.
    """
    stop = threading.Event()
    thread = threading.Thread(
        target=_beat_forever,
        args=(beat, interval, stop, on_error, setup),
        name=thread_name,
        daemon=True,
    )
    thread.start()
    return stop


def _beat_forever(
    beat: Callable[[], object],
    interval: float,
    stop: threading.Event,
    on_error: Callable[[Exception], None],
    setup: Callable[[], None] | None,
) -> None:
    if setup is not None:
        setup()
    from django.db import close_old_connections, connection

    while not stop.is_set():
        try:
            close_old_connections()
            beat()
        except Exception as error:
            on_error(error)
            connection.close()
        stop.wait(interval)


def _publish(components: list[str], details: dict[str, Any]) -> None:
    # Function-local: this module is imported with the Celery app, before Django is set up.
    from monitoring.services import heartbeats_record

    heartbeats_record(components=components, details=details)


def start_publisher(components: list[str]) -> threading.Event:
    from django.conf import settings

    def failed(error: Exception) -> None:
        logger.warning("event=heartbeat_failed components=%s error=%r", components, error)

    details = {"hostname": socket.gethostname(), "pid": os.getpid()}
    stop = start_heartbeat_thread(
        functools.partial(_publish, components, details),
        interval=float(settings.MONITORING_HEARTBEAT_SECONDS),
        thread_name="monitoring-heartbeat",
        on_error=failed,
        setup=django_setup_once,
    )
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
