"""Each of the four queues is served by a real Celery worker over the real Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import REPO, require

QUEUES = ("qfh", "execution", "stream", "default")


@pytest.fixture
def worker() -> Iterator[None]:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    require(bool(os.environ.get("CELERY_RESULT_BACKEND")), "CELERY_RESULT_BACKEND must be set")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "septrader",
            "worker",
            "-Q",
            ",".join(QUEUES),
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "septrader.settings"},
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_task_sent_to_each_queue_is_executed_by_a_worker(worker: None) -> None:
    from septrader.tasks import ping_task

    results = [ping_task.apply_async(args=[queue], queue=queue) for queue in QUEUES]
    answers = [result.get(timeout=60) for result in results]
    assert [answer["queue"] for answer in answers] == list(QUEUES)
