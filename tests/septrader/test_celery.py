"""Each of the four queues is served by a real Celery worker over the real Redis broker."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import REPO, celery_worker_command, require, worker_database_url

QUEUES = ("qfh", "execution", "stream", "default")


def test_a_task_sent_to_each_queue_is_executed_by_a_worker(celery_worker: Any) -> None:
    from septrader.tasks import ping_task

    results = [ping_task.apply_async(args=[queue], queue=queue) for queue in QUEUES]
    answers = [result.get(timeout=60) for result in results]
    assert [answer["queue"] for answer in answers] == list(QUEUES)


@pytest.fixture
def celery_worker_output(
    transactional_db: Any, django_db_serialized_rollback: Any
) -> Iterator[tuple[subprocess.Popen[str], Callable[[], str]]]:
    """A real worker on its own queue logging at INFO, and a way to read what it printed."""
    require(
        os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
        "CELERY_BROKER_URL must point at Redis",
    )
    command = [
        "INFO" if part == "WARNING" else part
        for part in celery_worker_command("output-test", name="output-test")
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": worker_database_url(),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def output() -> str:
        return process.communicate(timeout=60)[0]

    try:
        yield process, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_workers_task_lines_and_the_applications_log_lines_reach_its_output(
    celery_worker_output: Any,
) -> None:
    """Operators read a worker's output (docker logs, journald): what its tasks log must be
    there, as must its failures."""
    from celery import current_app

    from septrader.tasks import ping_task

    worker, output = celery_worker_output
    answer = ping_task.apply_async(args=["output-test"], queue="output-test").get(timeout=60)
    # (A call without its argument fails inside the worker.)
    failed = current_app.send_task(ping_task.name, args=[], queue="output-test")
    failed.get(timeout=60, propagate=False)

    worker.terminate()
    text = output()
    assert answer["queue"] == "output-test"
    assert "event=heartbeat_started" in text
    assert f"Task septrader.ping_task[{failed.id}] raised unexpected" in text
    assert "succeeded" in text
