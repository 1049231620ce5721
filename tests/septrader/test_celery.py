"""Each of the four queues is served by a real Celery worker over the real Redis broker."""

from __future__ import annotations

from typing import Any

QUEUES = ("qfh", "execution", "stream", "default")


def test_a_task_sent_to_each_queue_is_executed_by_a_worker(celery_worker: Any) -> None:
    from septrader.tasks import ping_task

    results = [ping_task.apply_async(args=[queue], queue=queue) for queue in QUEUES]
    answers = [result.get(timeout=60) for result in results]
    assert [answer["queue"] for answer in answers] == list(QUEUES)
