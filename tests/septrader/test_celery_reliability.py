"""A task whose worker dies mid-task is delivered again and takes effect exactly once.

These start real workers over the real Redis broker against the test database and kill them with
SIGKILL, the way the OOM killer or a lost machine would. Each takes 10-20 s (two worker start-ups
and a visibility timeout shortened to 6 s); they are the only proof that the acks_late /
reject_on_worker_lost / visibility-timeout settings do what docs/celery.md promises.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, celery_worker_command, require, worker_database_url

# Short limits for the workers started here only: the visibility timeout must still be longer than
# the longest task limit, which the settings check at start-up.
SHORT_LIMITS = {
    "CELERY_TASK_TIME_LIMIT": "5",
    "CELERY_LONG_TASK_TIME_LIMIT": "5",
    "CELERY_VISIBILITY_TIMEOUT": "6",
}


@pytest.fixture
def start_worker(
    transactional_db: Any, django_db_serialized_rollback: Any
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:

    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    started: list[subprocess.Popen[bytes]] = []

    def start(
        name: str, pool: str = "solo", extra: tuple[str, ...] = (), output: Path | None = None
    ) -> subprocess.Popen[bytes]:
        log = output.open("wb") if output is not None else None
        process = subprocess.Popen(
            celery_worker_command(
                "execution", name=name, pool=pool, extra=("--without-heartbeat", *extra)
            ),
            cwd=REPO,
            env={
                **os.environ,
                **SHORT_LIMITS,
                "DJANGO_SETTINGS_MODULE": "septrader.settings",
                "DATABASE_URL": worker_database_url(),
            },
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT if log is not None else None,
        )
        if log is not None:
            log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def run_of(key: str) -> Any:
    from septrader.models import TaskRun

    return TaskRun.objects.filter(key=key).first()


def unacked_tasks() -> int:
    import redis

    return int(redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).hlen("unacked"))


def test_a_task_whose_worker_is_killed_runs_again_on_another_worker_and_completes_once(
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    from septrader.tasks import run_probe_task

    # Given a worker running a 4-second task
    key = f"redelivery-{uuid.uuid4()}"
    first = start_worker("first")
    run_probe_task.apply_async(args=[key, 4.0], queue="execution")
    wait_for(lambda: (run := run_of(key)) and run.attempts == 1, 90, "the first attempt")
    delivered = time.monotonic()

    # When the worker is killed mid-task, and another starts once the visibility timeout passed
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert run_of(key).completed_at is None
    time.sleep(max(0.0, delivered + 6.5 - time.monotonic()))
    start_worker("second")

    # Then the second worker runs the task to completion, exactly once, and nothing is left over
    run = wait_for(lambda: (run := run_of(key)) and run.completed_at and run, 90, "completion")
    time.sleep(2)
    run.refresh_from_db()
    assert run.attempts == 2
    assert run.completed_at is not None
    wait_for(lambda: unacked_tasks() == 0, 30, "the broker to forget the task")


def test_a_task_whose_pool_process_dies_is_requeued_at_once_and_completes_once(
    start_worker: Callable[..., subprocess.Popen[bytes]],
) -> None:
    from septrader.tasks import run_probe_task

    # Given a prefork worker (as in production) whose pool process runs a 4-second task
    key = f"lost-child-{uuid.uuid4()}"
    worker = start_worker("prefork", pool="prefork")
    run_probe_task.apply_async(args=[key, 4.0], queue="execution")
    wait_for(lambda: (run := run_of(key)) and run.attempts == 1, 90, "the first attempt")

    # When that pool process is killed (the OOM killer's way)
    children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
    assert children, "the prefork worker has no pool process"
    for child in children:
        os.kill(int(child), signal.SIGKILL)

    # Then the worker rejects the task back to the queue and a new pool process completes it
    # once, well before any visibility timeout would have.
    run = wait_for(lambda: (run := run_of(key)) and run.completed_at and run, 60, "completion")
    assert run.attempts == 2

    # And a late duplicate of the same task does nothing.
    assert run_probe_task.apply_async(args=[key, 0.0], queue="execution").get(timeout=30) is False
    run.refresh_from_db()
    assert run.attempts == 2


def test_a_prefork_worker_still_logs_its_tasks_after_its_pool_processes_are_replaced(
    start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    from septrader.tasks import run_probe_task

    # Given a prefork worker whose pool process is replaced after every task, as production's
    # --max-tasks-per-child does every 500 tasks, logging at INFO to a file
    log = tmp_path / "worker.log"
    start_worker(
        "recycled",
        pool="prefork",
        extra=("--max-tasks-per-child", "1", "--loglevel", "INFO"),
        output=log,
    )

    # When three tasks run, each in a new pool process forked after the worker was ready
    ids = []
    for _ in range(3):
        result = run_probe_task.apply_async(args=[f"logs-{uuid.uuid4()}", 0.0], queue="execution")
        assert result.get(timeout=90) is True
        ids.append(result.id)

    # Then every one of them is in the worker's log, not only the first pool process's
    def logged() -> list[str]:
        text = log.read_text()
        return [task_id for task_id in ids if f"run_probe_task[{task_id}] succeeded" in text]

    wait_for(lambda: len(logged()) == len(ids), 10, "a log line for each task")
    assert logged() == ids
