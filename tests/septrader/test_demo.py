"""``make demo``: a process of the demo that dies is started again, as in production."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_demo_process_killed_with_sigkill_is_started_again_and_the_demo_keeps_running(
    tmp_path: Path,
) -> None:
    # Given the demo on its embedded database and broker, the way `make demo` runs it.
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DATABASE_", "CELERY_", "REDIS_", "DJANGO_SETTINGS", "OANDA_", "SEPTRADER_")
        )
    }
    env.update(SEPTRADER_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    demo = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--fresh",
            "--port",
            str(port),
            "--history-hours",
            "1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()

    def wait_for(pattern: str, seconds: float) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in list(lines):
                found = re.search(pattern, line)
                if found:
                    return found
            assert demo.poll() is None, "the demo stopped:\n" + "".join(lines[-40:])
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(lines[-40:]))

    try:
        worker = int(wait_for(r"worker +\| started \(pid (\d+)\)", 180).group(1))
        wait_for(r"web +\| started", 60)

        # When the worker is killed outright,
        os.kill(worker, signal.SIGKILL)

        # then the supervisor says so, starts a new worker, and the demo goes on serving.
        wait_for(r"worker +\| exited with status -9: restarting", 30)
        restarted = [
            int(pid)
            for line in list(lines)
            for pid in re.findall(r"worker +\| started \(pid (\d+)\)", line)
        ]
        deadline = time.monotonic() + 30
        while len(restarted) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            restarted = [
                int(pid)
                for line in list(lines)
                for pid in re.findall(r"worker +\| started \(pid (\d+)\)", line)
            ]
        assert len(restarted) >= 2 and restarted[-1] != worker, "".join(lines[-40:])
        os.kill(restarted[-1], 0)  # the new worker is alive
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert answer is not None, "the web server stopped answering"
        assert demo.poll() is None
        assert not any("stopping everything" in line for line in lines)
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)


def test_the_demo_enables_one_crypto_pair_beside_the_fx_pairs_with_its_own_limits(
    tmp_path: Path,
) -> None:
    # Given the demo prepared on its embedded database and broker, as `make demo` prepares it
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("DATABASE_", "CELERY_", "REDIS_", "DJANGO_SETTINGS", "OANDA_", "SEPTRADER_")
        )
    }
    env.update(SEPTRADER_DATA_DIR=str(tmp_path))
    subprocess.run(
        [sys.executable, "manage.py", "demo", "--fresh", "--setup-only", "--history-hours", "1"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=180,
    )

    # When we read what it enabled
    shown = subprocess.run(
        [
            *(sys.executable, "manage.py", "shell", "--no-imports", "-c"),
            "from marketdata.models import Pair\n"
            "for p in Pair.objects.filter(enabled=True).order_by('symbol'):\n"
            "    print(p.symbol, p.instrument_type, p.pip_location, p.risk_overrides)",
        ],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()

    # Then bitcoin trades beside the three FX pairs, in its own pips, with its own limits
    assert [line.split()[:3] for line in shown] == [
        ["BTC_USD", "CFD", "0"],
        ["EUR_USD", "CURRENCY", "-4"],
        ["GBP_USD", "CURRENCY", "-4"],
        ["USD_JPY", "CURRENCY", "-2"],
    ]
    assert "'stop_loss_pips': '1000'" in shown[0]
