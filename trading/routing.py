"""Where execution messages go (DESIGN.md sections 4 and 9).

A signal goes to its pair's node queue ``exec.<node>``, or to ``execution`` when the pair has no
node. Every send goes through the task's registered name (trading/apps.py registers the tasks), so
the modules below ``trading.tasks`` never import it; a send made inside a transaction waits for
its commit, so no executor can look for a signal that is not stored yet.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from marketdata.models import Pair
from septrader.queues import EXECUTION_QUEUE, current_node, node_queue
from septrader.selectors import config_get
from trading.models import TradingSignal

logger = logging.getLogger(__name__)

EXECUTE_SIGNAL_TASK = "trading.execute_signal_task"


def execution_queue_for(pair: Pair) -> str:
    """The queue of the node that executes ``pair``: ``exec.<node>``, else ``execution``."""
    node = pair.node if pair.node_id else None
    return node.queue if node is not None else EXECUTION_QUEUE


def signal_send(signal_id: str, queue: str) -> None:
    """Send signal ``signal_id`` to ``queue`` for execution now."""
    current_app.tasks[EXECUTE_SIGNAL_TASK].apply_async(args=[signal_id], queue=queue)


def signals_send_on_commit(signal_ids: list[str], queue: str) -> None:
    """Send the signals to ``queue`` once the current transaction commits (at once outside
    one); sending one twice is harmless: execution claims a signal with a conditional update."""
    if not signal_ids:
        return

    def send() -> None:
        for signal_id in signal_ids:
            signal_send(signal_id, queue)
            logger.info("event=signal_sent signal_id=%s queue=%s", signal_id, queue)

    transaction.on_commit(send)


def signals_requeue_new(pair: Pair, queue: str) -> int:
    """Send the pair's unexecuted recent signals again, to ``queue`` (its new node's), after the
    commit; returns how many."""
    max_age = int(config_get("signals.max_age_seconds"))
    ids = [
        str(pk)
        for pk in TradingSignal.objects.filter(
            pair=pair,
            status=TradingSignal.Status.NEW,
            created_at__gte=timezone.now() - timedelta(seconds=max_age),
        ).values_list("pk", flat=True)
    ]
    signals_send_on_commit(ids, queue)
    return len(ids)


def signal_forward_if_foreign(signal_id: Any) -> str | None:
    """On a node, send a signal of another node's pair to that node's queue; return the queue.

    None (execute it here) outside a node, for a pair without a node, or for this node's pair.
    """
    name = current_node()
    if name is None:
        return None
    row = (
        TradingSignal.objects.filter(pk=signal_id).values_list("pair__node__name", "status").first()
    )
    if row is None or row[0] is None or row[0] == name or row[1] != TradingSignal.Status.NEW:
        return None
    queue = node_queue(row[0])
    signal_send(str(signal_id), queue)
    logger.info("event=signal_forwarded signal=%s node=%s queue=%s", signal_id, name, queue)
    return queue
