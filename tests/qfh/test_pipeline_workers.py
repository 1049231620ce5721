"""The two roles of a cluster against one database and broker (DESIGN.md section 1): the local
GPU worker consumes ``qfh`` and writes signals; the droplet's worker takes the analysis over on
its CPU when the local one is gone. Real worker processes, real Redis, real TimescaleDB."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.conf import settings

from marketdata.streaming import enqueue_analysis
from qfh import rules
from qfh.routing import analysis_queue, queue_has_consumers
from qfh.services import DEFAULT_LIVE_RULE
from septrader.models import Node
from septrader.services import config_set
from tests.qfh.test_live_signals import load, offline_signals, trade
from trading.models import TradingSignal


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


# Two worker processes start here, about 5 s each on a loaded two-core machine; it is the only
# test that shows the local and droplet roles sharing one database and broker, and the CPU
# fallback taking over when the local worker stops.
def test_the_local_worker_writes_signals_and_the_droplet_takes_over_when_it_stops(
    start_worker: Callable[..., Any], seed_candles: list[dict[str, Any]]
) -> None:
    # Given a pair executed by node-a with signals due in two minutes, and both roles' workers
    times = load(seed_candles[:400])
    trade("EUR_USD", forced_without_model=True, node=Node.objects.create(name="node-a"))
    offline = offline_signals("EUR_USD", DEFAULT_LIVE_RULE)
    first, second = [t for t in times[-120:] if offline[t][0] != rules.HOLD][-2:]
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("exec.node-a")
    local = start_worker(queues="qfh", role="local", name="local")
    start_worker(queues="execution,stream,default", role="droplet", name="droplet")
    wait_for(
        lambda: (
            queue_has_consumers("qfh", refresh=True)
            and queue_has_consumers("default", refresh=True)
        ),
        60,
        "both workers to consume their queues",
    )

    # When a minute closes while the local worker is up (as the last look at the workers saw)
    assert analysis_queue() == "qfh"
    outcome = enqueue_analysis(["EUR_USD"], first).get(timeout=60)

    # Then the local worker stored the signal and sent its execution to node-a's queue
    assert outcome[0]["outcome"] == "signal" and outcome[0]["queue"] == "exec.node-a"
    assert TradingSignal.objects.filter(pair_id="EUR_USD", time=first).exists()
    wait_for(lambda: broker.llen("exec.node-a") == 1, 10, "the execution message")

    # When the local worker stops (the PC is off) and the next minute closes
    local.terminate()
    local.wait(timeout=30)
    wait_for(lambda: not queue_has_consumers("qfh", refresh=True), 30, "qfh to lose its worker")
    assert analysis_queue() == "default"
    outcome = enqueue_analysis(["EUR_USD"], second).get(timeout=60)

    # Then the droplet's worker analysed it on its CPU, with the same result the rule gives
    signal = TradingSignal.objects.get(pair_id="EUR_USD", time=second)
    assert outcome[0]["signal_id"] == str(signal.id)
    assert signal.direction == ("BUY" if offline[second][0] == rules.BUY else "SELL")
    wait_for(lambda: broker.llen("exec.node-a") == 2, 10, "the second execution message")
    broker.delete("exec.node-a")


@pytest.mark.django_db
def test_without_a_qfh_worker_the_analysis_waits_for_it_when_the_cpu_fallback_is_off(
    redis_url: str,
) -> None:
    # Given no worker at all on this broker
    assert not queue_has_consumers("qfh", refresh=True)

    # Then the droplet analyses on its CPU while the fallback is on (the default)
    assert analysis_queue() == "default"
    # And the work waits on qfh for the PC once the operator turns the fallback off
    config_set(key="analysis.cpu_fallback", value=False)
    assert analysis_queue() == "qfh"
