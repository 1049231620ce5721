"""Three node processes sharing the database and Redis: kill one, trading goes on; one beat only.

These start real Celery workers (``manage.py run_node``) and beats; about 30 s together on the
two-core test machine, worth it because failover is only believable with real processes killed.
"""

from __future__ import annotations

import os
import signal as signals
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.utils import timezone

from marketdata.models import Pair
from marketdata.services import instruments_sync
from monitoring.models import Alert
from nodes.services import nodes_failover, nodes_rebalance
from septrader.beat import LOCK_KEY
from septrader.models import AuditLog, Node
from septrader.services import config_set
from tests.conftest import REPO, require, worker_database_url
from tests.trading.conftest import Broker, make_signal, pointed_broker, trading_pair
from trading.execution import client_order_id
from trading.models import Order, TradingSignal
from trading.routing import execution_queue_for
from trading.services import (
    pair_assign_node,
    pair_enable,
    pair_set_risk_overrides,
    trades_close_all,
)
from trading.tasks import execute_signal_task

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LAYOUT = {"a": ["AUD_USD", "EUR_USD"], "b": ["GBP_USD", "NZD_USD"], "c": ["USD_CAD", "USD_CHF"]}
SILENCE = 3  # cluster.node_silence_seconds for the test (the smallest allowed)


def process_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "DATABASE_URL": worker_database_url(),
        **extra,
    }


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Nodes:
    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *extra: str) -> None:
        self.processes[name] = subprocess.Popen(
            [
                *(sys.executable, "manage.py", "run_node", "--name", name, *extra),
                *("--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING"),
            ],
            cwd=REPO,
            env=process_env(CLUSTER_HEARTBEAT_SECONDS="1"),
        )

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signals.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def nodes(broker: Broker) -> Iterator[Nodes]:
    require(
        os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
        "CELERY_BROKER_URL must point at Redis",
    )
    running = Nodes()
    try:
        yield running
    finally:
        running.stop_all()


def beating(name: str, since: Any) -> bool:
    return Node.objects.filter(
        name=name, state=Node.State.ACTIVE, last_heartbeat__gt=since
    ).exists()


def send(symbol: str, minute: int) -> TradingSignal:
    """A signal for ``symbol``, sent where the analysis would send it: its node's queue."""
    signal = make_signal(pair=symbol, minute=f"2025-07-24T08:{minute:02d}:00Z")
    pair = Pair.objects.select_related("node").get(symbol=symbol)
    execute_signal_task.apply_async(args=[str(signal.pk)], queue=execution_queue_for(pair))
    return signal


def executed(signals: list[TradingSignal]) -> bool:
    rows = TradingSignal.objects.filter(pk__in=[s.pk for s in signals]).values_list(
        "pair_id", "time", "status", "status_reason"
    )
    waiting = [row for row in rows if row[2] != TradingSignal.Status.EXECUTED]
    assert not any(row[2] in ("rejected", "expired", "failed") for row in waiting), waiting
    return not waiting


def test_killing_a_node_moves_its_pairs_within_the_threshold_and_no_order_is_lost_or_doubled(
    nodes: Nodes, broker: Broker
) -> None:
    for key, value in (
        ("risk.max_orders_per_minute", 1000),
        ("risk.max_open_trades", 200),
        ("risk.one_position_per_pair", False),
        ("risk.loss_streak_length", 0),
        # The signals are for 08:01-08:04 and the paused broker says 09:00: an hour is fresh here.
        ("signals.max_age_seconds", 3600),
        # Thirteen small trades at once, well inside the margin.
        ("risk.per_trade_percent", "0.05"),
        ("cluster.node_silence_seconds", SILENCE),
    ):
        config_set(key=key, value=value)
    for symbols in LAYOUT.values():
        for symbol in symbols:
            trading_pair(symbol)
    started = timezone.now()
    for name in LAYOUT:
        nodes.start(name)
    wait_for(lambda: all(beating(name, started) for name in LAYOUT), 60, "three node heartbeats")
    for name, symbols in LAYOUT.items():
        Pair.objects.filter(symbol__in=symbols).update(node=Node.objects.get(name=name))
    sent = [send(symbol, 1) for symbols in LAYOUT.values() for symbol in symbols]
    wait_for(lambda: executed(sent), 60, "every node to execute its pairs' signals")

    nodes.kill("b")
    killed_at = time.monotonic()
    # A signal that reaches b's queue after b died: the failover sends it on to the new node.
    sent.append(send("GBP_USD", 2))
    # What beat does every 10 s (here every half second, so the move is measured closely).
    wait_for(lambda: nodes_failover().down == ["b"], 30, "node b to be declared down")
    moved_after = time.monotonic() - killed_at

    # b beat at most 1 s (CLUSTER_HEARTBEAT_SECONDS) before it died.
    assert SILENCE - 1 <= moved_after <= SILENCE + 2.5, moved_after
    layout = {
        node.name: sorted(node.pairs.values_list("symbol", flat=True))
        for node in Node.objects.all()
    }
    assert layout["b"] == []
    assert sorted(layout["a"] + layout["c"]) == sorted(
        s for symbols in LAYOUT.values() for s in symbols
    )
    assert AuditLog.objects.filter(action="pair.assign_node", actor="system:cluster").count() == 2
    assert Alert.objects.filter(condition="cluster.node_down.b", resolved_at__isnull=True).exists()

    sent += [send(symbol, 3) for symbols in LAYOUT.values() for symbol in symbols]
    wait_for(lambda: executed(sent), 60, "a and c to execute every pair's signals")

    restarted = timezone.now()
    nodes.start("b")
    wait_for(lambda: beating("b", restarted), 60, "node b to heartbeat again")
    assert Alert.objects.get(condition="cluster.node_down.b").resolved_at is not None
    # Pairs with open trades stay where they are; once flat, they spread over the three again.
    assert nodes_rebalance(actor="ops").moved == []
    trades_close_all(actor="test")
    nodes_rebalance(actor="ops")
    counts = sorted(node.pairs.count() for node in Node.objects.all())
    assert counts == [2, 2, 2]
    sent += [
        send(symbol, 4)
        for symbol in Node.objects.get(name="b").pairs.values_list("symbol", flat=True)
    ]
    wait_for(lambda: executed(sent), 60, "b to execute the pairs it got back")

    # b came back to the stale message left in its queue: claimed already, so no second order.
    time.sleep(1)
    for signal in sent:
        assert broker.orders_with_client_id(client_order_id(signal.pk)) == 1, signal.pair_id
    assert Order.objects.count() == len(sent)


# ----- a node per market -------------------------------------------------------------------------

SATURDAY = "2026-01-10T12:00:00Z"


@pytest.fixture
def weekend_broker(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """The simulator paused on a Saturday: FX closed for the weekend, crypto trading."""
    with pointed_broker(settings, monkeypatch, "--start", SATURDAY) as started:
        yield started


def send_at(symbol: str, minute: str) -> TradingSignal:
    signal = make_signal(pair=symbol, minute=minute)
    pair = Pair.objects.select_related("node").get(symbol=symbol)
    execute_signal_task.apply_async(args=[str(signal.pk)], queue=execution_queue_for(pair))
    return signal


def settled(signals: list[TradingSignal]) -> dict[str, tuple[str, str]] | None:
    rows = {
        f"{pair} {time:%a}": (status, reason)
        for pair, time, status, reason in TradingSignal.objects.filter(
            pk__in=[s.pk for s in signals]
        ).values_list("pair_id", "time", "status", "status_reason")
    }
    waiting = {"new", "claimed"}
    return rows if not any(status in waiting for status, _ in rows.values()) else None


def test_a_crypto_node_trades_crypto_through_the_weekend_while_the_fx_node_is_closed(
    weekend_broker: Broker,
) -> None:
    require(
        os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
        "CELERY_BROKER_URL must point at Redis",
    )
    for key, value in (
        ("risk.max_orders_per_minute", 1000),
        ("risk.one_position_per_pair", False),
        ("signals.max_age_seconds", 3600),
        ("risk.per_trade_percent", "0.05"),
        ("cluster.node_silence_seconds", SILENCE),
    ):
        config_set(key=key, value=value)
    # The crypto pairs as an operator adds them: from the broker's list, with their own limits.
    instruments_sync(client=weekend_broker.client(), actor="ops")
    for symbol in ("BTC_USD", "ETH_USD"):
        pair_set_risk_overrides(
            symbol=symbol,
            overrides={"max_spread_pips": "100", "stop_loss_pips": "1000", "take_profit_pips": "0"},
            actor="ops",
        )
    layout = {"fx": ["EUR_USD", "GBP_USD"], "crypto": ["BTC_USD", "ETH_USD"]}
    running = Nodes()
    try:
        started = timezone.now()
        for name, markets in (("fx", "CURRENCY"), ("crypto", "CFD")):
            running.start(name, "--markets", markets)
        wait_for(lambda: all(beating(n, started) for n in layout), 60, "both nodes' heartbeats")
        for name, symbols in layout.items():
            for symbol in symbols:
                pair_enable(symbol=symbol, actor="ops", force=True)
                pair_assign_node(symbol=symbol, node_name=name, actor="ops")
        assert Node.objects.get(name="crypto").markets == ["CFD"]

        # Saturday noon: a signal for every pair, each on its node's queue
        sent = [send_at(s, "2026-01-10T11:59:00Z") for symbols in layout.values() for s in symbols]
        saturday = wait_for(lambda: settled(sent), 60, "both nodes to settle Saturday's signals")
        # Sunday noon, still before FX opens at 17:00 New York
        weekend_broker.advance(24 * 3600)
        sunday = [send_at(s, "2026-01-11T11:59:00Z") for s in layout["crypto"]]
        sunday_rows = wait_for(lambda: settled(sunday), 60, "the crypto node on Sunday")
    finally:
        running.stop_all()

    # The crypto node traded both days; the FX node refused: its market is closed
    for key in ("BTC_USD Sat", "ETH_USD Sat"):
        assert saturday[key][0] == "executed", saturday[key]
    for key in ("EUR_USD Sat", "GBP_USD Sat"):
        status, reason = saturday[key]
        assert status == "rejected" and reason.startswith("market closed"), saturday[key]
    assert {key: status for key, (status, _) in sunday_rows.items()} == {
        "BTC_USD Sun": "executed",
        "ETH_USD Sun": "executed",
    }
    held = sorted(t["instrument"] for t in weekend_broker.open_trades())
    assert held == ["BTC_USD", "BTC_USD", "ETH_USD", "ETH_USD"]


# ----- one beat for the cluster ------------------------------------------------------------------


def test_of_two_beats_only_one_schedules_and_the_other_takes_over_when_it_dies(
    transactional_db: Any, tmp_path: Path
) -> None:
    from tests.cluster.beat_app import PROBE_QUEUE

    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    require(broker_url.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    queue = redis.Redis.from_url(broker_url)
    lock = redis.Redis.from_url(os.environ["REDIS_URL"])
    lock.delete(LOCK_KEY)
    queue.delete(PROBE_QUEUE)
    beats = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "tests.cluster.beat_app", "beat"),
                *("--schedule", str(tmp_path / f"schedule-{number}"), "--loglevel", "WARNING"),
            ],
            cwd=REPO,
            env=process_env(CLUSTER_BEAT_LOCK_SECONDS="3"),
        )
        for number in (1, 2)
    ]
    try:
        wait_for(lambda: queue.llen(PROBE_QUEUE) > 0, 60, "a beat to send its first probe")
        time.sleep(3)  # both beats are up by now
        queue.delete(PROBE_QUEUE)
        time.sleep(5)
        sent = queue.llen(PROBE_QUEUE)
        assert [beat.poll() for beat in beats] == [None, None]  # both beats are running
        # One probe a second from one beat; two beats would have sent about ten.
        assert 3 <= sent <= 7, sent

        holder = lock.get(LOCK_KEY)
        assert holder is not None
        leader = next(b for b in beats if f":{b.pid}:".encode() in holder)
        leader.send_signal(signals.SIGKILL)
        leader.wait(timeout=30)
        time.sleep(4.5)  # the lock expires within 3 s; the standby looks every second
        queue.delete(PROBE_QUEUE)
        time.sleep(3)

        assert queue.llen(PROBE_QUEUE) >= 2
        new_holder = lock.get(LOCK_KEY)
        assert new_holder is not None and new_holder != holder
    finally:
        for beat in beats:
            if beat.poll() is None:
                beat.terminate()
                beat.wait(timeout=30)
        queue.delete(PROBE_QUEUE)
        lock.delete(LOCK_KEY)
