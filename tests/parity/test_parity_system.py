"""The parity report of a stretch of a trading day the whole system ran against the simulator
(issue #20, "Done when"): the qfh worker is down for some minutes, a risk rule refuses signals and
the broker answers slowly; the report gives every difference a cause, none is unexplained, and
its parts add up to the P&L difference to the cent.

Real parts: the simulator replaying the bundled real EUR/USD minutes at 120x, the streamer, a
Celery worker on the qfh queue and another on execution/stream/default over Redis, TimescaleDB.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from marketdata.models import Candle, Pair
from marketdata.services import candles_backfill
from marketdata.streaming import Streamer
from monitoring.models import Alert
from parity import replay
from parity.services import parity_run
from qfh import tasks as qfh_tasks
from qfh.models import LiveAnalysis
from septrader.services import config_set
from tests.conftest import REPO, celery_worker_command, require, worker_database_url
from tests.qfh.test_live_signals import make_pair_model
from tests.test_end_to_end import SPEED, TOKEN, client, simulator, wait_until
from trading.models import Trade, TradingSignal
from trading.reconciliation import account_reconcile

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
__all__ = ["simulator"]

DAY = date(2025, 7, 24)
# The model's rule: the testbed rule with a looser confidence gate fires about every five minutes
# on these minutes (the published one only a few times an hour).
PARAMS = {"min_confidence": 0.55}
# The simulated minutes of the run (the stream starts a few minutes after 09:00).
OUTAGE = (datetime(2025, 7, 24, 9, 14, tzinfo=UTC), datetime(2025, 7, 24, 9, 30, tzinfo=UTC))
UNTIL = datetime(2025, 7, 24, 9, 52, tzinfo=UTC)
# Production drops an analysis still queued after 120 s (qfh.tasks); the simulated clock runs
# 120 times faster, so the run drops it after 3 s (six simulated minutes).
EXPIRES_SECONDS = 3
# Seconds the broker holds every REST answer (about half a simulated minute at 120x).
LATENCY = 0.25


class Workers:
    """A qfh worker that can be stopped and started again, and one for everything else."""

    def __init__(self) -> None:
        require(
            os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"),
            "CELERY_BROKER_URL must point at Redis",
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": worker_database_url(),
        }
        self.rest = self._start("execution,stream,default", "rest")
        self.qfh: subprocess.Popen[bytes] | None = self._start("qfh", "qfh")

    def _start(self, queues: str, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(celery_worker_command(queues, name=name), cwd=REPO, env=self.env)

    def stop_qfh(self) -> None:
        assert self.qfh is not None
        self.qfh.terminate()
        self.qfh.wait(timeout=30)
        self.qfh = None

    def start_qfh(self) -> None:
        self.qfh = self._start("qfh", "qfh")

    def stop(self) -> None:
        for process in (self.qfh, self.rest):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)


@pytest.fixture
def workers(transactional_db: Any, django_db_serialized_rollback: Any) -> Iterator[Workers]:
    running = Workers()
    yield running
    running.stop()


def newest_candle() -> datetime | None:
    row = Candle.objects.filter(pair_id="EUR_USD", complete=True).order_by("-time").first()
    return row.time if row else None


def reached(moment: datetime) -> Callable[[], bool]:
    return lambda: (newest_candle() or datetime.min.replace(tzinfo=UTC)) >= moment


def test_a_day_with_the_worker_down_refusals_and_a_slow_broker_is_explained_to_the_cent(
    timescaledb: None, simulator: Any, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given five hours of history, EUR_USD live on a promoted model with 4-pip stops (trades
    # close within minutes, and a signal while one is open is refused: one position per pair),
    # no CPU fallback (analysis waits for the qfh worker), and a broker that answers slowly
    broker = client(simulator)
    candles_backfill(
        client=broker, pair="EUR_USD", timeframe="M1", start=datetime(2025, 7, 24, 4, tzinfo=UTC)
    )
    model = make_pair_model("EUR_USD", "testbed", PARAMS)
    Pair.objects.filter(symbol="EUR_USD").update(enabled=True, state=Pair.State.TRADING)
    for key, value in (
        ("execution.stop_loss_pips", "4"),
        ("execution.take_profit_pips", "4"),
        ("risk.stale_price_seconds", 300),
        ("risk.loss_streak_length", 0),
        ("signals.max_age_seconds", 300),
        ("analysis.cpu_fallback", False),
    ):
        config_set(key=key, value=value)
    monkeypatch.setattr(qfh_tasks, "ANALYSIS_EXPIRES_SECONDS", EXPIRES_SECONDS)
    requests.post(
        f"{simulator.base_url}/__sim/fault",
        json={"latency": LATENCY},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()

    # When the streamer runs through the stretch, the qfh worker stopped for some minutes of it
    streamer = Streamer(
        client_factory=lambda: client(simulator),
        pairs=["EUR_USD"],
        bootstrap=timedelta(minutes=30),
        price_silence=3.0,
        transaction_silence=4.0,
    )
    thread = threading.Thread(target=streamer.run, daemon=True)
    thread.start()
    wall = (UNTIL - OUTAGE[0]).total_seconds() / SPEED + 90
    try:
        wait_until(reached(OUTAGE[0]), wall, "the outage's first minute")
        workers.stop_qfh()
        wait_until(reached(OUTAGE[1]), wall, "the outage's last minute")
        workers.start_qfh()
        wait_until(reached(UNTIL), wall, "the end of the stretch")
    finally:
        streamer.stop.set()
        thread.join(timeout=30)
    # and the workers have finished what the stretch started, the open trades' stops have played
    # out at the broker, and the candles after the stretch are stored (the replay's path)
    wait_until(
        lambda: not TradingSignal.objects.filter(status__in=["new", "claimed"]).exists(),
        60,
        "every signal to be settled",
    )
    requests.post(
        f"{simulator.base_url}/__sim/fault",
        json={"clear": True},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()
    started = time.monotonic()
    while Trade.objects.filter(state=Trade.State.OPEN).exists():
        requests.post(
            f"{simulator.base_url}/__sim/clock",
            json={"advance": 600},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
        account_reconcile(client=broker)
        assert time.monotonic() - started < 60, "stops never filled"
    account_reconcile(client=broker)
    candles_backfill(client=broker, pair="EUR_USD", timeframe="M1", start=None)

    # When the day is replayed after its close
    (report,) = parity_run(day=DAY, now=datetime(2025, 7, 24, 21, 5, tzinfo=UTC))

    # Then the replay ran the model's rule and every difference has a cause: none is unexplained
    assert report.pair_model == model
    assert report.mismatches > 0 and report.unexplained == 0, list(
        report.mismatch_rows.values_list("time", "kind", "cause", "detail")
    )
    assert report.live_signals >= 5 and report.replay_signals >= 5
    assert not Alert.objects.filter(condition="parity.unexplained:EUR_USD").exists()
    # And each minute the worker never analysed, where the replay signalled, is "worker_down"
    mismatches = {row.time: row for row in report.mismatch_rows.all()}
    never = set(LiveAnalysis.objects.filter(outcome="requested").values_list("time", flat=True)) & {
        time for time, row in mismatches.items() if row.replay_direction
    }
    assert never, "the outage should have cost the live system a signal"
    assert {mismatches[time].cause for time in never} == {replay.WORKER_DOWN}
    # And the refusals name their rule, the fills their slippage against the replay
    rows = list(report.execution_rows.all())
    refused = [row for row in rows if row.outcome == replay.RISK_REFUSED]
    assert refused and all(row.risk_rules for row in refused)
    assert any("one_position" in row.risk_rules for row in refused)
    filled = [row for row in rows if row.outcome == replay.FILLED]
    assert filled and all(row.entry_slippage_pips is not None for row in filled)
    assert report.slippage_max_pips is not None

    # And the live P&L is the broker's, and the parts add up to live minus replay to the cent
    trades = Trade.objects.filter(order__signal__time__gte=report.live_from)
    assert report.live_pl == sum((t.realized_pl + t.financing for t in trades), Decimal(0))
    assert report.live_trades == trades.count() == len(filled)
    parts = {name: Decimal(value) for name, value in report.attribution.items()}
    assert report.pl_difference == report.live_pl - report.replay_pl
    cent = Decimal("0.01")
    assert sum(parts.values(), Decimal(0)).quantize(cent) == report.pl_difference.quantize(cent)
    assert sum(parts.values()) == report.pl_difference
    assert parts["unexplained"] == 0
    assert sum(Decimal(r.pl_difference) for r in rows) == report.pl_difference
