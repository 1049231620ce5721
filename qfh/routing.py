"""Where analysis messages go (DESIGN.md sections 1 and 4); execution's are in trading/routing.py.

Analysis goes to the ``qfh`` queue, which the local GPU worker consumes. When no worker consumes
it (the PC is off) and ``analysis.cpu_fallback`` is on, it goes to ``default`` instead, so the
droplet's own worker analyses on its CPU and the system keeps trading.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import current_app

from septrader.queues import ANALYSIS_QUEUE, DEFAULT_QUEUE
from septrader.selectors import config_get

logger = logging.getLogger(__name__)

FALLBACK_QUEUE = DEFAULT_QUEUE
# Asking the workers which queues they consume takes a broadcast and a wait for the replies, so
# the answer is reused for this long: a PC that drops off is noticed within half a minute.
CONSUMERS_CACHE_SECONDS = 30.0
# How long the broadcast waits for replies; the wait is paid at most once per
# CONSUMERS_CACHE_SECONDS by the streamer. A busy worker can answer late (0.5 s proved too short
# on a loaded two-core test machine); a missed reply only sends the analysis of the next half
# minute to the CPU fallback, which is harmless because the analysis is idempotent.
INSPECT_TIMEOUT_SECONDS = 1.0

_lock = threading.Lock()
# Per queue: when it was last asked, and whether some worker consumed it then.
_cached: dict[str, tuple[float, bool]] = {}


def _ask_workers(queue: str) -> bool:
    try:
        replies: dict[str, list[dict[str, Any]]] | None = current_app.control.inspect(
            timeout=INSPECT_TIMEOUT_SECONDS
        ).active_queues()
    except Exception as error:  # A broker without broadcast (filesystem://) cannot be asked.
        logger.info("event=queue_consumers_unknown queue=%s error=%r", queue, error)
        return True
    return any(
        entry.get("name") == queue for queues in (replies or {}).values() for entry in queues
    )


def queue_has_consumers(queue: str = ANALYSIS_QUEUE, *, refresh: bool = False) -> bool:
    """Whether some worker consumes ``queue`` (cached for ``CONSUMERS_CACHE_SECONDS``).

    A broker that cannot broadcast (the embedded demo's ``filesystem://``) counts as served: there
    a single worker consumes every queue.
    """
    now = time.monotonic()
    with _lock:
        cached = _cached.get(queue)
    if not refresh and cached is not None and now - cached[0] < CONSUMERS_CACHE_SECONDS:
        return cached[1]
    served = _ask_workers(queue)
    with _lock:
        _cached[queue] = (now, served)
    return served


def analysis_queue(*, refresh: bool = False) -> str:
    """``qfh`` while a worker consumes it; ``default`` (the droplet's worker, on its CPU) when
    none does and ``analysis.cpu_fallback`` is on; ``qfh`` otherwise, where the work waits for
    the PC (and expires, see ``enqueue_analysis``)."""
    if queue_has_consumers(ANALYSIS_QUEUE, refresh=refresh):
        return ANALYSIS_QUEUE
    if config_get("analysis.cpu_fallback"):
        logger.warning("event=analysis_cpu_fallback queue=%s", FALLBACK_QUEUE)
        return FALLBACK_QUEUE
    return ANALYSIS_QUEUE
