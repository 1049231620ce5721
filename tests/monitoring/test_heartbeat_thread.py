"""The one heartbeat loop (monitoring.heartbeats.start_heartbeat_thread) and its two users:
the workers' and beat's publisher, and a node's heartbeat."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from monitoring.heartbeats import start_heartbeat_thread, start_publisher
from monitoring.models import Heartbeat
from nodes.services import start_node_heartbeat
from septrader.models import Node


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _thread(name: str) -> threading.Thread | None:
    return next((thread for thread in threading.enumerate() if thread.name == name), None)


def test_the_loop_beats_after_setup_survives_a_failed_beat_and_stops() -> None:
    calls: list[str] = []
    errors: list[Exception] = []

    def beat() -> None:
        calls.append("beat")
        if calls.count("beat") == 2:
            raise RuntimeError("the database is away")

    stop = start_heartbeat_thread(
        beat,
        interval=0.01,
        thread_name="test-heartbeat",
        on_error=errors.append,
        setup=lambda: calls.append("setup"),
    )
    thread = _thread("test-heartbeat")
    assert thread is not None and thread.daemon
    _wait_for(lambda: calls.count("beat") >= 4)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert calls[:2] == ["setup", "beat"] and calls.count("setup") == 1
    assert [str(error) for error in errors] == ["the database is away"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_publisher_records_its_components(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(MONITORING_HEARTBEAT_SECONDS=1):
        stop = start_publisher(["worker:test", "beat"])
    try:
        _wait_for(
            lambda: Heartbeat.objects.filter(component__in=["worker:test", "beat"]).count() == 2
        )
    finally:
        stop.set()
    beat = Heartbeat.objects.get(component="worker:test")
    assert beat.details == {"hostname": socket.gethostname(), "pid": os.getpid()}
    assert "event=heartbeat_started components=worker:test,beat" in caplog.text
    thread = _thread("monitoring-heartbeat")
    if thread is not None:
        thread.join(5)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_node_heartbeat_records_the_node() -> None:
    with override_settings(CLUSTER_HEARTBEAT_SECONDS=1):
        stop = start_node_heartbeat("beattest")
    try:
        _wait_for(
            lambda: Node.objects.filter(name="beattest", last_heartbeat__isnull=False).exists()
        )
    finally:
        stop.set()
    thread = _thread("node-heartbeat")
    if thread is not None:
        thread.join(5)


def test_a_failed_node_heartbeat_is_logged_and_the_next_one_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import nodes.services

    beats: list[Any] = []

    def node_heartbeat(*, name: str) -> None:
        beats.append(name)
        if len(beats) == 1:
            raise RuntimeError("no database")

    monkeypatch.setattr(nodes.services, "node_heartbeat", node_heartbeat)
    with override_settings(CLUSTER_HEARTBEAT_SECONDS=0):
        stop = start_node_heartbeat("ams1")
    try:
        _wait_for(lambda: len(beats) >= 2)
    finally:
        stop.set()
    assert "event=node_heartbeat_failed node=ams1 error=RuntimeError('no database')" in caplog.text
