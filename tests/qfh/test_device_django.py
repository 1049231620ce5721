"""The entry points on the device: the live analysis task (in a real Celery worker too), the
commands, and QFH_BACKEND=auto resolving to the strict device double as it resolves to CuPy on the
GPU PC. Results equal NumPy's to 1e-9; a GPU asked for where none answers stops the worker or the
command at start, naming the setting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from io import StringIO
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qfh import rules
from qfh.models import CandleMetrics, PairModel, RuleEvaluation
from qfh.tasks import analyze_closed_candles_task
from tests.qfh.conftest import device_env
from tests.qfh.parity import max_difference
from tests.qfh.test_live_signals import CONFIRMED, load, make_pair_model, offline_signals, trade
from trading.models import TradingSignal

TOLERANCE = 1e-9


def stored_metrics() -> list[tuple[Any, ...]]:
    fields = [f.name for f in CandleMetrics._meta.get_fields() if f.name not in ("id", "pair")]
    return list(CandleMetrics.objects.order_by("timeframe", "time").values_list(*fields))


def stored_signals() -> dict[datetime, tuple[str, float, dict[str, Any]]]:
    return {
        signal.time: (signal.direction, signal.confidence, signal.qfh_metrics)
        for signal in TradingSignal.objects.all()
    }


@pytest.mark.django_db
def test_the_live_analysis_task_runs_on_the_device_and_signals_what_numpy_signals(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    strict_cupy: ModuleType,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given a pair trading a confirmed rule, and QFH_BACKEND=auto where cupy is the double
    times = load(seed_candles[:400])
    trade("EUR_USD")
    make_pair_model("EUR_USD", "testbed", CONFIRMED)
    offline = offline_signals("EUR_USD", rules.validate_rule("testbed", CONFIRMED))

    # When the task analyses the last 30 minutes, as the qfh worker does
    for time_ in times[-30:]:
        with django_capture_on_commit_callbacks(execute=False):
            analyze_closed_candles_task(["EUR_USD"], time_.isoformat())
    on_device = stored_signals()
    device_metrics = stored_metrics()

    # Then the work ran on the device, and the signals are those of the NumPy evaluation
    assert strict_cupy.counts["to_device"] > 0
    assert on_device
    for time_, (direction, confidence, _) in on_device.items():
        assert direction == ("BUY" if offline[time_][0] == rules.BUY else "SELL")
        assert confidence == pytest.approx(offline[time_][1], abs=TOLERANCE)
    # And the stored signals and metrics equal a NumPy run of the same minutes
    TradingSignal.objects.all().delete()
    CandleMetrics.objects.all().delete()
    from qfh.services import signals_analyze_closed

    for time_ in times[-30:]:
        with django_capture_on_commit_callbacks(execute=False):
            signals_analyze_closed(pairs=["EUR_USD"], time=time_, xp=np)
    assert max_difference(stored_signals(), on_device) <= TOLERANCE
    assert max_difference(stored_metrics(), device_metrics) <= TOLERANCE


def test_a_qfh_worker_analyses_on_the_device_when_auto_finds_one(
    start_worker: Callable[..., Any], seed_candles: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Given a pair forced to trade, and a qfh worker whose cupy is the strict double
    times = load(seed_candles[:400])
    trade("EUR_USD", forced_without_model=True)
    offline = offline_signals("EUR_USD", rules.validate_rule("testbed"))
    wanted = [t for t in times[-120:] if offline[t][0] != rules.HOLD][-1]
    log = tmp_path / "worker.log"
    start_worker(queues="qfh", role="local", name="device", env=device_env(), log=log)

    # When the minute's analysis goes through the broker to it
    result = analyze_closed_candles_task.apply_async(
        args=[["EUR_USD"], wanted.isoformat()], queue="qfh"
    )
    outcome = result.get(timeout=120)

    # Then it analysed on the device and stored the signal the NumPy evaluation gives
    assert outcome[0]["outcome"] == "signal", outcome
    signal = TradingSignal.objects.get(pair_id="EUR_USD", time=wanted)
    assert signal.confidence == pytest.approx(offline[wanted][1], abs=TOLERANCE)
    text = log.read_text()
    assert "event=qfh_worker_array_module setting=QFH_BACKEND module=tests.qfh.strict_device" in (
        text
    )


def test_a_qfh_worker_asked_for_a_gpu_that_does_not_answer_stops_at_start(
    start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    # Given QFH_BACKEND=cupy on a machine whose CuPy counts no device
    log = tmp_path / "worker.log"
    worker = start_worker(
        queues="qfh",
        role="local",
        name="nogpu",
        env=device_env(QFH_BACKEND="cupy", STRICT_DEVICE_COUNT="0"),
        log=log,
    )

    # When it starts
    deadline = time.monotonic() + 60
    while worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)

    # Then it stops with a message naming the setting
    assert worker.returncode not in (None, 0)
    text = log.read_text()
    assert "qfh worker not started: QFH_BACKEND=cupy" in text, text
    assert "no CUDA device answers" in text


@pytest.mark.django_db
def test_qfh_analyze_runs_on_the_device_by_default_and_on_numpy_when_told(
    timescaledb: None, seed_candles: list[dict[str, Any]], strict_cupy: ModuleType
) -> None:
    # Given stored minutes and QFH_BACKEND=auto where cupy is the double
    load(seed_candles[:300])

    # When the command runs with --backend numpy
    call_command(
        "qfh_analyze", pair=["EUR_USD"], backend="numpy", no_progress=True, stdout=StringIO()
    )
    on_host = stored_metrics()

    # Then the device was never touched
    assert strict_cupy.counts == {"to_device": 0, "to_host": 0, "scalar_reads": 0}

    # And without the flag it runs on the device and stores the same rows
    CandleMetrics.objects.all().delete()
    call_command("qfh_analyze", pair=["EUR_USD"], no_progress=True, stdout=StringIO())
    assert strict_cupy.counts["to_device"] > 0 and strict_cupy.counts["to_host"] > 0
    assert max_difference(stored_metrics(), on_host) <= TOLERANCE


@pytest.mark.django_db
def test_evaluate_and_train_store_the_same_figures_on_the_device_as_on_numpy(
    timescaledb: None, seed_candles: list[dict[str, Any]], strict_cupy: ModuleType
) -> None:
    load(seed_candles)
    figures = {}
    for backend in (None, "numpy"):
        call_command(
            "evaluate",
            pair="EUR_USD",
            leaky=True,
            backend=backend,
            no_progress=True,
            stdout=StringIO(),
        )
        call_command(
            *("train",),
            pair="EUR_USD",
            folds=2,
            sets=12,
            seed=3,
            backend=backend,
            no_progress=True,
            stdout=StringIO(),
        )
        evaluations = RuleEvaluation.objects.order_by("id")
        model = PairModel.objects.order_by("-id").first()
        assert model is not None
        figures[backend] = (
            [(e.performance, e.baselines, e.original, e.equity) for e in evaluations],
            (model.params, model.folds, model.out_of_sample),
        )
        RuleEvaluation.objects.all().delete()
        if backend is None:
            assert strict_cupy.counts["to_device"] > 0

    assert max_difference(figures[None], figures["numpy"]) <= TOLERANCE


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["qfh_analyze", "evaluate", "train"])
def test_a_command_asked_for_a_gpu_that_does_not_answer_stops_naming_the_setting(
    strict_cupy: ModuleType, monkeypatch: pytest.MonkeyPatch, settings: Any, command: str
) -> None:
    # Given CuPy installed but no device answering
    monkeypatch.setenv("STRICT_DEVICE_COUNT", "0")
    arguments = {"pair": ["EUR_USD"] if command == "qfh_analyze" else "EUR_USD"}

    # When QFH_BACKEND=cupy, or --backend cupy, asks for it
    settings.QFH_BACKEND = "cupy"
    with pytest.raises(CommandError, match=r"QFH_BACKEND=cupy, but no CUDA device answers"):
        call_command(command, **arguments, stdout=StringIO())
    settings.QFH_BACKEND = "auto"
    with pytest.raises(CommandError, match=r"--backend=cupy, but no CUDA device answers"):
        call_command(command, **arguments, backend="cupy", stdout=StringIO())
