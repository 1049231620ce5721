"""Each seed alert condition caused for real: a Redis server stopped, a worker and beat killed,
the simulator's price stream silenced on an open market, the streamer stopped, the simulator
(OANDA) gone. Each alert must reach the local webhook once and clear when the fault is fixed.

These tests start real processes (redis-server, Celery worker and beat, the OANDA simulator), so
they take tens of seconds; they are the issue's definition of done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from django.test import override_settings

from marketdata.models import Pair
from marketdata.oanda import OandaClient, OandaConfig
from marketdata.streaming import Streamer
from monitoring.models import Heartbeat
from oandasim.client import SimulatorProcess
from septrader.services import config_set
from tests.conftest import REPO, SEED_CANDLES, require
from tests.monitoring.conftest import Receiver, evaluate_until
from trading.models import TradingState

real_processes = pytest.mark.django_db(transaction=True, serialized_rollback=True)
SPARE_REDIS_PORT = 6391
TOKEN = "monitoring-test-token"
ACCOUNT = "101-001-0000000-009"


def firing(condition: str) -> Any:
    return lambda evaluation: condition in evaluation.firing


def cleared(condition: str) -> Any:
    return lambda evaluation: (
        condition not in evaluation.firing and (condition.split(":")[0] not in evaluation.unknown)
    )


@pytest.fixture
def fast_thresholds(channels_on: None) -> None:
    config_set(key="monitoring.heartbeat_stale_seconds", value=3)
    config_set(key="monitoring.stream_stale_seconds", value=2)
    config_set(key="monitoring.stale_price_seconds", value=2)
    # Every raise is announced, even a condition that was raised by an earlier test.
    config_set(key="alerts.cooldown_seconds", value=0)


# ----- Redis -------------------------------------------------------------------------------------


def start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    import redis

    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port).ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"redis-server did not start on port {port}")


@real_processes
def test_a_stopped_cache_server_raises_a_cache_alert_that_clears_when_it_is_back(
    fast_thresholds: None, webhook: Receiver
) -> None:
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = start_redis(SPARE_REDIS_PORT)
    cache_on_spare = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{SPARE_REDIS_PORT}/0",
            "KEY_PREFIX": "septrader",
        }
    }
    try:
        with override_settings(CACHES=cache_on_spare):
            evaluate_until(cleared("cache.unreachable"), 10, "a healthy cache")

            # When the cache server stops
            server.terminate()
            server.wait(10)
            started = time.monotonic()
            evaluation = evaluate_until(firing("cache.unreachable"), 30, "the cache alert")
            evaluate_until(firing("cache.unreachable"), 5, "the cache alert again")

            # Then it is reported within a minute, once
            assert time.monotonic() - started < 60
            assert "cache.unreachable" in evaluation.raised
            assert webhook.events("cache.unreachable") == ["raised"]
            [body] = [b for b in webhook.bodies if b["alert"]["condition"] == "cache.unreachable"]
            assert (
                "Cache database errors" in body["text"] and body["alert"]["severity"] == "critical"
            )

            # When it is back, the alert resolves
            server = start_redis(SPARE_REDIS_PORT)
            evaluate_until(cleared("cache.unreachable"), 30, "the cache alert to clear")
            assert webhook.events("cache.unreachable") == ["raised", "resolved"]
    finally:
        server.kill()
        server.wait(10)


# ----- Celery worker and beat --------------------------------------------------------------------


def celery_process(*arguments: str, workdir: Path) -> subprocess.Popen[bytes]:
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    test_database = urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "septrader", *arguments, "--loglevel", "WARNING"],
        cwd=REPO,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": test_database,
            "MONITORING_HEARTBEAT_SECONDS": "1",
            "SEPTRADER_DATA_DIR": str(workdir),
        },
    )


def wait_for_heartbeat(component: str, after: datetime, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Heartbeat.objects.filter(component=component, last_seen__gt=after).exists():
            return
        time.sleep(0.25)
    raise AssertionError(f"no heartbeat from {component} within {seconds} s")


@pytest.fixture
def broker_flushed() -> Iterator[None]:
    import redis

    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    yield
    # Beat queued its periodic tasks for workers that are gone: leave no backlog for later tests.
    redis.Redis.from_url(broker).flushdb()


@real_processes
def test_a_killed_worker_and_a_killed_beat_are_reported_missing_and_a_restart_clears_it(
    fast_thresholds: None, webhook: Receiver, broker_flushed: None, tmp_path: Path
) -> None:
    # Given a worker on the execution queue and beat, both sending heartbeats
    begin = datetime.now(UTC)
    worker_args = (
        "worker",
        "-Q",
        "execution",
        "--pool",
        "solo",
        "--without-gossip",
        "--without-mingle",
    )
    worker = celery_process(*worker_args, workdir=tmp_path)
    beat = celery_process("beat", "-s", str(tmp_path / "beat-schedule"), workdir=tmp_path)
    processes = [worker, beat]
    try:
        wait_for_heartbeat("worker:execution", begin, 60)
        wait_for_heartbeat("beat", begin, 60)
        evaluation = evaluate_until(cleared("worker.missing:execution"), 10, "a live worker")
        assert "beat.missing" not in evaluation.firing
        assert "worker.missing:qfh" in evaluation.firing  # no worker serves that queue here

        # When both processes are killed
        worker.kill()
        beat.kill()
        worker.wait(10)
        beat.wait(10)
        started = time.monotonic()
        evaluate_until(
            lambda e: {"worker.missing:execution", "beat.missing"} <= set(e.firing),
            30,
            "the worker and beat alerts",
        )

        # Then each is reported once, well within a minute
        assert time.monotonic() - started < 60
        alerts_evaluated_again = evaluate_until(firing("beat.missing"), 5, "beat still missing")
        assert "beat.missing" in alerts_evaluated_again.firing
        assert webhook.events("worker.missing:execution") == ["raised"]
        assert webhook.events("beat.missing") == ["raised"]
        texts = [t for t in webhook.texts() if "worker.missing:execution" in t]
        assert "no worker consumes the execution queue" in texts[0]

        # When the worker is started again, its alert resolves (beat's stays)
        restarted = datetime.now(UTC)
        worker = celery_process(*worker_args, workdir=tmp_path)
        processes.append(worker)
        wait_for_heartbeat("worker:execution", restarted, 60)
        evaluation = evaluate_until(
            cleared("worker.missing:execution"), 10, "the worker alert to clear"
        )
        assert "beat.missing" in evaluation.firing
        assert webhook.events("worker.missing:execution") == ["raised", "resolved"]
    finally:
        for process in processes:
            process.kill()
            process.wait(10)


# ----- the streamer and OANDA --------------------------------------------------------------------


def start_simulator(port: int = 0) -> SimulatorProcess:
    return SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        port=port,
        extra_args=[
            *("--data", f"EUR_USD={SEED_CANDLES}", "--start", "2025-07-24T09:00:00Z"),
            *("--heartbeat", "0.5", "--stream-interval", "0.1", "--rate-limit", "0"),
        ],
    ).start()


class RunningStreamer:
    def __init__(self, simulator: SimulatorProcess) -> None:
        config = OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)
        self.streamer = Streamer(
            client_factory=lambda: OandaClient(config),
            pairs=["EUR_USD"],
            bootstrap=timedelta(minutes=5),
            price_silence=1.5,
            transaction_silence=3.0,
            on_candles_closed=lambda pair, start, end: None,
        )
        self.thread = threading.Thread(target=self.streamer.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.streamer.stop.set()
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the streamer did not stop"


def fault(simulator: SimulatorProcess, payload: dict[str, Any]) -> None:
    response = requests.post(
        f"{simulator.base_url}/__sim/fault",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    response.raise_for_status()


def market_open() -> None:
    """The trading schedule's verdict: open (the simulator's clock is a Thursday morning)."""
    TradingState.objects.update_or_create(
        pk=1, defaults={"market_open": True, "market_checked_at": datetime.now(UTC)}
    )


@real_processes
def test_a_silent_price_stream_a_stopped_streamer_and_an_unreachable_oanda_are_reported_and_clear(
    timescaledb: None, fast_thresholds: None, webhook: Receiver, redis_url: str
) -> None:
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True)
    market_open()
    simulator = start_simulator()
    port = simulator.port
    streamer: RunningStreamer | None = None
    try:
        with override_settings(
            OANDA_API_URL=simulator.base_url, OANDA_TOKEN=TOKEN, OANDA_ACCOUNT_ID=ACCOUNT
        ):
            streamer = RunningStreamer(simulator)
            healthy = (
                "stream.down",
                "oanda.unreachable",
                "oanda.price_stream_silent",
                "prices.stale:EUR_USD",
            )
            evaluate_until(
                lambda e: not set(healthy) & set(e.firing) and "prices.stale" not in e.unknown,
                30,
                "a healthy stream",
            )
            # What the start-up (before the first prices) raised and resolved is not the point.
            webhook.bodies.clear()

            # When the simulator's price stream goes silent on an open market
            fault(simulator, {"stream": "pricing", "action": "silence"})
            market_open()
            evaluate_until(
                lambda e: {"oanda.price_stream_silent", "prices.stale:EUR_USD"} <= set(e.firing),
                30,
                "the silent stream alerts",
            )
            assert webhook.events("oanda.price_stream_silent") == ["raised"]
            assert webhook.events("prices.stale:EUR_USD") == ["raised"]

            # When it speaks again, both clear
            fault(simulator, {"stream": "pricing", "action": "resume"})
            evaluate_until(
                lambda e: (
                    not {"oanda.price_stream_silent", "prices.stale:EUR_USD"} & set(e.firing)
                    and "prices.stale" not in e.unknown
                ),
                30,
                "the stream alerts to clear",
            )
            assert webhook.events("oanda.price_stream_silent") == ["raised", "resolved"]

            # When the streamer stops
            streamer.stop()
            streamer = None
            evaluate_until(firing("stream.down"), 30, "the streamer alert")
            assert webhook.events("stream.down") == ["raised"]
            streamer = RunningStreamer(simulator)
            evaluate_until(cleared("stream.down"), 30, "the streamer alert to clear")
            assert webhook.events("stream.down") == ["raised", "resolved"]

            # When OANDA (the simulator) is gone
            simulator.stop()
            evaluate_until(firing("oanda.unreachable"), 30, "the OANDA alert")
            [body] = [b for b in webhook.bodies if b["alert"]["condition"] == "oanda.unreachable"]
            assert "Connection to OANDA lost" in body["text"]
            simulator = start_simulator(port)
            evaluate_until(cleared("oanda.unreachable"), 30, "the OANDA alert to clear")
            assert webhook.events("oanda.unreachable") == ["raised", "resolved"]
    finally:
        if streamer is not None:
            streamer.stop()
        simulator.stop()
