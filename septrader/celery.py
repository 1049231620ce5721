"""The Celery application shared by every role.

Queues are declared explicitly (DESIGN.md section 1) so a worker started with ``-Q qfh`` on the GPU
PC and one with ``-Q execution,stream,default`` on the droplet each take only their own work.
A task's queue follows from its name (``qfh.*``, ``trading.*``, ``marketdata.*``) through the routes
below: Celery 5.7 deprecates the per-task ``queue`` attribute in favour of ``task_routes``.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from monitoring.heartbeats import connect_heartbeats
from nodes.worker import connect_node_heartbeat
from qfh.arrays import connect_worker_check
from septrader.queues import QUEUES, current_node, node_queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "septrader.settings")

app = Celery("septrader")
app.config_from_object("django.conf:settings", namespace="CELERY")
# A node's worker (SEPTRADER_NODE=<name>, DESIGN.md section 9) also has its own queue; other
# nodes' queues are created on demand when a signal is sent to them (task_create_missing_queues).
_node = current_node()
app.conf.task_queues = [Queue(name) for name in (*QUEUES, *([node_queue(_node)] if _node else []))]
app.conf.task_routes = {
    # Every node consumes ``execution``, so any live node can move a silent node's pairs.
    "septrader.failover_nodes_task": {"queue": "execution"},
    "qfh.*": {"queue": "qfh"},
    "trading.*": {"queue": "execution"},
    "marketdata.*": {"queue": "stream"},
}
app.autodiscover_tasks()
# Workers and beat write heartbeats the health checks read (monitoring/heartbeats.py).
connect_heartbeats()
# A node's worker heartbeats as the node (nodes/services.py).
connect_node_heartbeat()
# A worker on the qfh queue stops at start when QFH_BACKEND=cupy finds no CUDA device.
connect_worker_check()
