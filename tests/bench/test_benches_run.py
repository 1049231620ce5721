"""Every benchmark in bench/ runs at small scale in every ``make test``, as its own process against
the real servers, and ran what it says it ran: a bench that breaks fails here. No timing is
asserted; the speed is read from the full runs (``make bench``, README.md "Benchmarks").

The small arguments are bench/run.py's ``SMALL`` (``bench/run.py --small`` runs the same by hand).
The benches work in ``<DATABASE_URL's name>_bench``, never in the test database.
"""

from __future__ import annotations

import math
import os

import pytest
from django.urls import Resolver404, resolve

from bench.run import BENCHES, SMALL, run
from tests.conftest import require

NAMED = {bench.name: bench for bench in BENCHES}


def run_small(name: str, timeout: float = 180) -> dict[str, str]:
    """Run one bench with its small arguments; fail with its output unless it exits 0, and
    unless every number it printed is finite."""
    outcome = run(NAMED[name], SMALL[name], echo=False, timeout=timeout)
    assert outcome.status == 0, (
        f"{outcome.command} exited with {outcome.status}:\n{outcome.output[-3000:]}\n"
        f"stderr:\n{outcome.errors[-5000:]}"
    )
    figures = outcome.figures
    for figure, value in figures.items():
        try:
            number = float(value.replace(",", ""))
        except ValueError:
            continue  # a name, a list or a time, not one number
        assert math.isfinite(number), f"{outcome.command} printed {figure}={value}"
    return figures


def number(figures: dict[str, str], name: str) -> float:
    assert name in figures, f"{name} was not printed; printed: {', '.join(figures)}"
    value = float(figures[name].replace(",", ""))
    assert math.isfinite(value), f"{name}={figures[name]}"
    return value


def numbers(figures: dict[str, str], *names: str) -> list[float]:
    return [number(figures, name) for name in names]


@pytest.fixture
def servers() -> None:
    """The benches that store and queue need TimescaleDB and Redis, as `make test` provides."""
    require(
        os.environ.get("DATABASE_URL", "").startswith(("postgres", "timescale")),
        "the benchmarks need DATABASE_URL to PostgreSQL with TimescaleDB",
    )
    require(
        os.environ.get("CELERY_BROKER_URL", "").startswith("redis://")
        and bool(os.environ.get("CELERY_RESULT_BACKEND")),
        "the benchmarks need CELERY_BROKER_URL and CELERY_RESULT_BACKEND (Redis)",
    )


def test_the_latency_bench_executes_every_signal_it_sends(servers: None) -> None:
    figures = run_small("latency")
    sent, executed, refused = numbers(figures, "signals", "executed", "refused")
    assert (sent, executed, refused) == (20, 20, 0)
    assert number(figures, "orders_at_broker") == 20
    numbers(figures, "ingest_p50_ms", "latency_p50_ms", "latency_p99_ms", "latency_max_ms")
    assert number(figures, "signals_per_second") > 0


def test_the_api_bench_measures_pairs_status_beside_the_bare_view_and_health(
    servers: None,
) -> None:
    figures = run_small("api")
    for endpoint in ("pairs_status", "pairs_status_bare", "health"):
        assert number(figures, f"{endpoint}_requests") == 50
        assert number(figures, f"{endpoint}_errors") == 0
        assert number(figures, f"{endpoint}_throttled") == 0
        numbers(figures, *(f"{endpoint}_{key}" for key in ("achieved_rps", "p50_ms", "p99_ms")))
        assert figures[f"inprocess_{endpoint}_statuses"] in {"200:20", "503:20"}
        numbers(figures, f"inprocess_{endpoint}_ms", f"inprocess_{endpoint}_sql_per_request")
    # Only the health check may say "down" (nothing else of the system runs), and it is counted.
    assert number(figures, "pairs_status_unavailable") == 0
    assert number(figures, "pairs_status_bare_unavailable") == 0
    assert figures["inprocess_pairs_status_statuses"] == "200:20"
    numbers(figures, "pairs_status_vs_bare_p50_ratio", "pairs_status_vs_bare_p99_ratio")


def test_the_bare_view_of_the_api_bench_is_not_among_the_projects_urls() -> None:
    with pytest.raises(Resolver404):
        resolve("/bench/pairs/status-bare", urlconf="septrader.urls")
    assert resolve("/bench/pairs/status-bare", urlconf="bench.api_urls").func.__name__ == (
        "pairs_status_bare"
    )


def test_the_ingest_bench_stores_and_reads_its_candles(servers: None) -> None:
    figures = run_small("ingest")
    assert number(figures, "ingest_candles") == 20000
    assert number(figures, "table_rows") >= 40000
    assert number(figures, "last_1000_m1_queries") == 20
    numbers(
        figures,
        "ingest_candles_per_second",
        "reingest_unchanged_candles_per_second",
        "last_1000_m1_p50_ms",
        "last_1000_m1_p99_ms",
        "last_1000_m1_first_ms",
    )


def test_the_backfill_bench_backfills_and_times_a_streamed_close(servers: None) -> None:
    figures = run_small("backfill")
    # Two days of one pair (weekend minutes excluded) in one request of up to 5000 candles.
    assert number(figures, "backfill_candles") > 1000
    assert number(figures, "stream_prices_per_second") > 0
    assert number(figures, "candle_closes_measured") >= 1
    numbers(
        figures,
        "backfill_candles_per_second",
        "candle_close_to_stored_p50_ms",
        "candle_close_to_stored_p99_ms",
    )


def test_the_console_bench_loads_every_page(servers: None) -> None:
    figures = run_small("console")
    assert number(figures, "table_rows") == 4 * 2 * 1440
    pages = ("dashboard", "chart_m1_6h", "chart_m1_33h", "chart_h1_14d", "candle_list")
    for page in (*pages, "candle_list_eur_usd"):
        numbers(figures, f"{page}_p50_ms", f"{page}_max_ms")


def test_the_simulator_bench_drives_orders_prices_and_the_stream() -> None:
    figures = run_small("oandasim")
    rates = numbers(
        figures,
        "pricing_requests_per_s",
        "order_round_trips_per_s",
        "oandapyV20_pricing_requests_per_s",
        "oandapyV20_order_round_trips_per_s",
        "stream_prices_per_s",
    )
    assert min(rates) > 0
    number(figures, "order_round_trip_latency_ms_one_connection")


def test_the_qfh_bench_times_every_case() -> None:
    figures = run_small("qfh", timeout=120)
    rates = [
        number(figures, f"qfh_numpy_w{window}_{dtype}_pairs{pairs}_windows_per_second")
        for window in (11, 64)
        for dtype in ("float64", "float32")
        for pairs in (1, 7)
    ]
    assert min(rates) > 0


def test_the_training_bench_evaluates_its_parameter_sets() -> None:
    figures = run_small("train", timeout=120)
    assert number(figures, "train_sets") == 10
    assert number(figures, "train_candle_sets_per_second") > 0
    number(figures, "train_full_case_projected_seconds")


def test_the_load_bench_runs_the_whole_system_and_loses_nothing(servers: None) -> None:
    figures = run_small("load", timeout=240)
    sent, received = numbers(figures, "prices_sent", "prices_received")
    # The simulator's count and the streamer's published one are read a moment apart while
    # prices still flow (a run saw 72 sent and 74 received): equal within a batch or two.
    assert sent > 0 and abs(sent - received) <= max(6, 0.05 * sent), (sent, received)
    broker, stored = numbers(figures, "candles_broker", "candles_stored")
    assert broker == stored > 0
    assert numbers(figures, "candles_missing", "candles_differing") == [0, 0]
    assert figures["drained"] == "True"
    assert figures["signals"].startswith("executed:")
    numbers(figures, "analysis_lag_ms_p50", "analysis_lag_ms_p99", "order_latency_ms_p50")
    ours, at_broker = numbers(figures, "orders_ours", "orders_at_broker")
    assert ours == at_broker > 0
    assert numbers(
        figures,
        "duplicated_at_broker",
        "lost(ours_not_at_broker)",
        "unknown(broker_not_ours)",
        "trades_missing",
        "trades_closed_mismatch",
    ) == [0, 0, 0, 0, 0]
