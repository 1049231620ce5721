"""The whole system as real processes, for the fault-injection run (test_system_faults.py).

* ``RedisServer``: a redis-server of the run's own on a free port, configured as production's
  (AOF, fsync every second), that can really be stopped and started again;
* ``system_programs``: the droplet's processes (streamer, a Celery worker per queue group, beat,
  the alert monitor) as ``septrader.supervisor`` programs restarted when they exit, as compose's
  ``restart: unless-stopped`` or systemd's ``Restart=always`` would;
* ``weekend_around_dst``: the simulated Friday whose weekend holds the latest US daylight-saving
  change, so the run crosses both.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import redis

from septrader.supervisor import Program, Supervisor
from tests.conftest import REPO, celery_worker_command

NEW_YORK = ZoneInfo("America/New_York")


def free_port(first: int = 6390) -> int:
    """The first port from ``first`` on that nothing listens on and that can be bound."""
    for port in range(first, first + 500):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port from {first}")


class RedisServer:
    """A redis-server on ``port`` with an append-only file in ``folder`` (production's settings:
    docker/compose.droplet.yml), so queued tasks survive a restart as they would there."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
                *("--maxmemory-policy", "noeviction", "--dir", str(self.folder)),
                *("--logfile", str(self.folder / "redis.log")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        """SIGTERM, as ``docker restart`` sends: Redis writes its AOF and exits."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1


def worker(queues: str, name: str) -> list[str]:
    """A solo-pool worker (one process, so a SIGKILL stops the task it runs) logging its tasks."""
    return [
        "INFO" if part == "WARNING" else part for part in celery_worker_command(queues, name=name)
    ]


def system_programs(env: dict[str, str], data_dir: Path) -> list[Program]:
    """The droplet's processes (DESIGN.md section 1) plus the GPU node's qfh worker, each with
    its own Celery worker so each can be killed alone."""
    python = sys.executable
    manage = str(REPO / "manage.py")
    celery = [python, "-m", "celery", "-A", "septrader"]
    return [
        Program("stream", [python, manage, "stream_prices"], env, restart=True),
        Program("qfh", worker("qfh", "qfh"), env, restart=True),
        Program("execution", worker("execution", "execution"), env, restart=True),
        Program("default", worker("stream,default", "default"), env, restart=True),
        Program(
            "beat",
            [
                *celery,
                *("beat", "--loglevel", "WARNING"),
                *("--schedule", str(data_dir / "celerybeat-schedule")),
            ],
            env,
            restart=True,
        ),
        Program("monitor", [python, manage, "monitor", "--interval", "3"], env, restart=True),
    ]


class BackgroundSupervisor:
    """``Supervisor.poll`` in a thread, its programs' output in a log file."""

    def __init__(self, programs: list[Program], log: Path, restart_delay: float = 1.0) -> None:
        self.log_path = log
        self.log: TextIO = log.open("w", buffering=1)
        self.supervisor = Supervisor(
            programs, cwd=str(REPO), output=self.log, restart_delay=restart_delay
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self.failed: str | None = None

    def start(self) -> BackgroundSupervisor:
        self.supervisor.start()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            failed = self.supervisor.poll()
            if failed is not None:
                self.failed = failed
            self._stop.wait(0.2)

    def kill(self, name: str) -> int:
        """SIGKILL the program's current process (the supervisor starts it again)."""
        pid = self.supervisor.pid(name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.supervisor.stop(grace=20)
        self.log.close()


def last_dst_change(before: date) -> date:
    """The latest Sunday on or before ``before`` on which New York changed its clocks."""
    day = before - timedelta(days=(before.weekday() + 1) % 7)
    while True:
        morning = datetime(day.year, day.month, day.day, 0, 30, tzinfo=NEW_YORK).utcoffset()
        noon = datetime(day.year, day.month, day.day, 12, 0, tzinfo=NEW_YORK).utcoffset()
        if morning != noon:
            return day
        day -= timedelta(days=7)


def weekend_around_dst(today: date) -> tuple[datetime, datetime]:
    """Friday 17:00 and Sunday 17:00 New York (UTC) around the latest DST change at least three
    days ago (the simulated clock must stay behind the real one: candles from the future are
    refused)."""
    sunday = last_dst_change(today - timedelta(days=3))
    friday = sunday - timedelta(days=2)
    close = datetime(friday.year, friday.month, friday.day, 17, tzinfo=NEW_YORK)
    reopen = datetime(sunday.year, sunday.month, sunday.day, 17, tzinfo=NEW_YORK)
    return close.astimezone(UTC), reopen.astimezone(UTC)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
