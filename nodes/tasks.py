"""Failover of silent nodes (its name keeps the ``septrader.`` prefix it was scheduled under, so
messages and beat entries written before the move still find it)."""

from __future__ import annotations

from celery import shared_task

from nodes.services import nodes_failover


@shared_task(name="septrader.failover_nodes_task")
def failover_nodes_task() -> dict[str, object]:
    """Move the pairs of nodes silent beyond ``cluster.node_silence_seconds`` (beat, every 10 s)."""
    report = nodes_failover()
    return {"down": report.down, "moved": report.moved, "stranded": report.stranded}
