"""The Django side of QFH: per-candle metrics from stored candles, causal and idempotent."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketdata.services import candles_ingest
from qfh.models import CandleMetrics
from qfh.services import candle_metrics_compute
from tests.qfh import reference

FIELDS = (
    "entropy",
    "coherence",
    "rupture_ratio",
    "flip_ratio",
    "damped_value",
    "trajectory_confidence",
)


def load_seed(candles: list[dict[str, Any]]) -> None:
    result = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1")
    assert not result.rejected


def stored_metrics() -> dict[datetime, tuple[Any, ...]]:
    rows = CandleMetrics.objects.filter(pair_id="EUR_USD", timeframe="M1").values_list(
        "time", "window_bits", "null_count", "flip_count", "rupture_count", *FIELDS
    )
    return {row[0]: row[1:] for row in rows}


@pytest.mark.django_db
def test_each_candle_gets_the_metrics_of_the_eleven_bits_ending_with_its_own_close(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    # Given the real EUR/USD minutes
    load_seed(seed_candles)

    # When the analysis runs over all of them
    run = candle_metrics_compute(pair="EUR_USD", timeframe="M1", xp=np)

    # Then every candle but the first two has metrics equal to the scalar reference computed on
    # the close-to-close bits up to and including that candle's close
    closes = [Decimal(repr(c["close"])) for c in seed_candles]
    bits = [1 if later > earlier else 0 for earlier, later in itertools.pairwise(closes)]
    metrics = stored_metrics()
    assert run.written == len(seed_candles) - 2 == len(metrics)
    for index in (2, 5, 11, 12, 500, 1441, len(seed_candles) - 1):
        window = bits[max(0, index - 11) : index]
        expected = reference.analyze(window)
        time = datetime.strptime(seed_candles[index]["time"][:19], "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=UTC
        )
        got = metrics[time]
        assert got[:4] == (
            len(window),
            expected.null_count,
            expected.flip_count,
            expected.rupture_count,
        )
        for name, value in zip(FIELDS, got[4:], strict=True):
            assert value == pytest.approx(getattr(expected, name), abs=1e-9), (index, name)


@pytest.mark.django_db
def test_a_candles_metrics_do_not_change_when_later_candles_arrive_or_the_run_is_split(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    # Given the metrics of the first day, computed before the second day existed
    load_seed(seed_candles[:1440])
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", xp=np)
    before = stored_metrics()

    # When the second day arrives and everything is recomputed in two separate runs
    load_seed(seed_candles)
    middle = datetime(2025, 7, 24, 12, 0, tzinfo=UTC)
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", end=middle, xp=np)
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", start=middle, xp=np)
    after = stored_metrics()

    # Then nothing about the first day changed, bit for bit
    assert len(before) == 1438
    assert {time: after[time] for time in before} == before
    assert len(after) == len(seed_candles) - 2


@pytest.mark.django_db
def test_running_the_same_analysis_twice_changes_nothing(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    load_seed(seed_candles[:300])
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", xp=np)
    first = stored_metrics()
    candle_metrics_compute(pair="EUR_USD", timeframe="M1", xp=np)
    assert stored_metrics() == first
    assert CandleMetrics.objects.count() == 298


@pytest.mark.django_db
def test_the_qfh_analyze_command_reports_what_it_stored_and_refuses_bad_arguments(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    load_seed(seed_candles)
    out = StringIO()

    call_command(
        "qfh_analyze", pair=["EUR_USD"], timeframe=["M1", "M5"], no_progress=True, stdout=out
    )

    assert f"EUR_USD M1: metrics stored for {len(seed_candles) - 2} candles" in out.getvalue()
    assert CandleMetrics.objects.filter(timeframe="M5").count() > 500
    with pytest.raises(CommandError, match="--from='yesterday'"):
        call_command("qfh_analyze", pair=["EUR_USD"], start="yesterday", stdout=StringIO())
    with pytest.raises(CommandError, match="XXX_YYY: unknown pair"):
        call_command("qfh_analyze", pair=["XXX_YYY"], stdout=StringIO())


def test_the_analysis_task_runs_on_the_qfh_queue_in_a_real_worker(
    celery_worker: Any, timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    from qfh.tasks import analyze_candles_task

    load_seed(seed_candles[:200])

    result = analyze_candles_task.apply_async(args=[["EUR_USD"], ["M1"]])

    route = analyze_candles_task.app.amqp.router.route({}, analyze_candles_task.name)
    assert route["queue"].name == "qfh"
    assert result.get(timeout=120) == [{"pair": "EUR_USD", "timeframe": "M1", "written": 198}]
    assert CandleMetrics.objects.filter(pair_id="EUR_USD").count() == 198
