"""The Celery queues every role agrees on (DESIGN.md sections 1 and 9), and which node this
process is. Imported by the Celery app before Django is set up: no models here."""

from __future__ import annotations

import os

# Analysis, consumed by the GPU PC's worker.
ANALYSIS_QUEUE = "qfh"
# Execution of pairs without a node; every node consumes it too.
EXECUTION_QUEUE = "execution"
STREAM_QUEUE = "stream"
# The droplet's worker: everything else, and the analysis when the PC is off (qfh/routing.py).
DEFAULT_QUEUE = "default"
QUEUES = (ANALYSIS_QUEUE, EXECUTION_QUEUE, STREAM_QUEUE, DEFAULT_QUEUE)
# A node's worker runs with this variable set to the node's name.
NODE_ENV = "SEPTRADER_NODE"


def node_queue(name: str) -> str:
    """The execution queue of node ``name``: ``exec.<name>``."""
    return f"exec.{name}"


def current_node() -> str | None:
    """The node this process runs as (``SEPTRADER_NODE``), or None outside a cluster."""
    return os.environ.get(NODE_ENV) or None
