"""The node heartbeat of a Celery worker started with ``SEPTRADER_NODE=<name>``.

Connected from septrader/celery.py (imported before Django is set up, so no models here). The
worker's main process starts a daemon thread at ``worker_ready`` that records the node's
heartbeat every CLUSTER_HEARTBEAT_SECONDS (nodes/services.py ``node_heartbeat``): it proves
the worker is alive without needing a free pool slot, and it stops when the worker dies.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from septrader.queues import current_node


def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    name = current_node()
    if not name:
        return
    # Function-local: this module is imported with the Celery app, before Django is set up.
    from monitoring.heartbeats import django_setup_once

    django_setup_once()
    from nodes.services import start_node_heartbeat

    start_node_heartbeat(name)


def connect_node_heartbeat() -> None:
    signals.worker_ready.connect(_on_worker_ready, weak=False)
