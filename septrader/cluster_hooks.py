"""The node heartbeat of a Celery worker started with ``SEPTRADER_NODE=<name>``.

Connected from septrader/celery.py (imported before Django is set up, so no models here). The
worker's main process starts a daemon thread at ``worker_ready`` that records the node's
heartbeat every CLUSTER_HEARTBEAT_SECONDS (septrader/cluster.py ``node_heartbeat``): it proves
the worker is alive without needing a free pool slot, and it stops when the worker dies.
"""

from __future__ import annotations

import os
from typing import Any

from celery import signals


def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    name = os.environ.get("SEPTRADER_NODE")
    if not name:
        return
    from monitoring.heartbeats import django_setup_once

    django_setup_once()
    from septrader.cluster import start_node_heartbeat

    start_node_heartbeat(name)


def connect_node_heartbeat() -> None:
    signals.worker_ready.connect(_on_worker_ready, weak=False)
