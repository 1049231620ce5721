"""Candle close in the database → order accepted by the simulator, through the real Celery path.

For each of N signals, one after another: the closed M1 candle is upserted into TimescaleDB, the
signal for it is stored, ``trading.execute_signal_task`` goes through Redis to a real Celery
worker (``-Q execution``, prefetch 1, acks late), which claims the signal, checks the schedule and
every risk rule on live broker figures (account summary and price: two broker calls), sends the
market order with its stops, and records the fill. The latency is from the moment the candle
upsert has committed to the moment the filled order is recorded (both clocks are this machine's);
the upsert itself is printed apart (``ingest_p50_ms``). The QFH analysis between the candle and
the signal is measured on its own by ``bench/qfh.py`` (one batched engine call for all pairs).

Every signal is for the minute that has just closed on the simulator's clock: before each one the
bench moves the clock a minute on (``/__sim/clock``, outside the timed span), so the executor's
age check (``signals.max_age_seconds`` on the broker's clock) passes as it does live. A bench
whose candles are older measures the refusal, not the execution, so any signal not executed makes
it exit with status 1 after printing the counts.

    python bench/latency.py [--signals 1000]    # at most 1400: one a minute between two rolls

Prints ``name=value`` lines (README.md, "Benchmarks"). Needs DATABASE_URL (TimescaleDB) and
CELERY_BROKER_URL/CELERY_RESULT_BACKEND (Redis): ``make bench-latency`` provides them.
``make test`` runs it with ``--signals 20`` (tests/bench/test_benches_run.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.ingest import setup_bench_database  # noqa: E402
from oandasim.client import SimulatorProcess  # noqa: E402

TOKEN = "latency-bench-token"
ACCOUNT = "101-001-0000000-042"
SEED = REPO / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"
# Wednesday 21:20 UTC in the bundled EUR/USD minutes, just after the simulator's spreads narrow
# again past the 17:00 New York roll (16:50 to 17:15 there): a signal a minute from here trades on
# normal spreads until the next roll, 1,410 minutes later. Across a roll the risk rules rightly
# refuse the wide spread, which is not what this bench measures.
START = datetime(2025, 7, 23, 21, 20, tzinfo=UTC)
MAX_SIGNALS = 1400


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=1000, help=f"at most {MAX_SIGNALS}")
    args = parser.parse_args()
    if not 1 <= args.signals <= MAX_SIGNALS:
        parser.error(f"--signals is {args.signals}; expected 1 to {MAX_SIGNALS} (one a minute)")

    simulator = SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--data", f"EUR_USD={SEED}", "--start", START.isoformat(), "--speed", "1"),
            *("--rate-limit", "0"),
        ],
    ).start()
    os.environ.update(
        OANDA_API_URL=simulator.base_url,
        OANDA_STREAM_URL=simulator.base_url,
        OANDA_TOKEN=TOKEN,
        OANDA_ACCOUNT_ID=ACCOUNT,
    )
    setup_bench_database()
    from celery import current_app
    from django.db import connection

    from marketdata.models import Pair
    from marketdata.services import candles_ingest
    from septrader.models import SystemConfig
    from septrader.services import config_set
    from trading.models import AccountSnapshot, Order, Trade, TradingSignal, TradingState
    from trading.tasks import execute_signal_task

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE trading_orders, trading_trades, trading_signals, trading_account_snapshots,"
            " trading_broker_transactions CASCADE"
        )
    SystemConfig.objects.all().delete()
    TradingState.objects.update_or_create(pk=1, defaults={"mode": "trading", "reason": ""})
    # Alternate BUY and SELL on one pair: each SELL closes the BUY before it at the broker, so
    # the account stays flat and the risk rules pass on every signal without being switched off.
    for key, value in (
        ("risk.per_trade_percent", "0.01"),
        ("risk.one_position_per_pair", False),
        ("risk.max_orders_per_minute", 1000),
        ("risk.loss_streak_length", 0),
        ("risk.stale_price_seconds", 60),
    ):
        config_set(key=key, value=value)
    Pair.objects.filter(symbol="EUR_USD").update(
        enabled=True, state=Pair.State.TRADING, forced_without_model=True
    )

    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "septrader.settings"}
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "septrader", "worker"),
            *("-Q", "execution", "--pool", "solo", "--loglevel", "WARNING"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ],
        cwd=REPO,
        env=environment,
        # Its banner would mix with the figures on stdout; warnings and errors go to stderr.
        stdout=subprocess.DEVNULL,
    )
    try:
        current_app.control.purge()
        execute_signal_task.delay("00000000-0000-0000-0000-000000000000").get(timeout=60)
        latencies = []
        ingests: list[float] = []
        refused: Counter[str] = Counter()  # by the status the executor gave
        first_reason = ""
        started = time.perf_counter()
        for number in range(args.signals):
            minute = next_closed_minute(simulator)
            candle = {
                "time": minute,
                "open": Decimal("1.17000"),
                "high": Decimal("1.17020"),
                "low": Decimal("1.16990"),
                "close": Decimal("1.17010"),
                "volume": 50,
            }
            ingest_started = time.perf_counter()
            candles_ingest(candles=[candle], pair="EUR_USD", timeframe="M1")
            ingests.append((time.perf_counter() - ingest_started) * 1000)
            # The clock starts once the closed candle is in the database.
            before = datetime.now(UTC)
            signal = TradingSignal.objects.create(
                pair_id="EUR_USD",
                time=minute,
                direction="BUY" if number % 2 == 0 else "SELL",
                confidence=0.9,
                price=Decimal("1.17010"),
            )
            result = execute_signal_task.delay(str(signal.pk)).get(timeout=60)
            order = Order.objects.filter(signal=signal).first()
            if result["status"] != "executed" or order is None:
                reason = f"{result['status']}: {result.get('reason', '')}"
                refused[str(result["status"])] += 1
                first_reason = first_reason or reason
                print(f"refused signal={signal.pk} {reason}", file=sys.stderr)
                continue
            latencies.append((order.updated_at - before).total_seconds() * 1000)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        simulator.stop()
    print(f"signals={args.signals} executed={len(latencies)} refused={refused.total()}")
    print(f"orders_at_broker={Order.objects.filter(status='filled').count()}")
    print(f"trades_recorded={Trade.objects.count()} snapshots={AccountSnapshot.objects.count()}")
    print(f"ingest_p50_ms={statistics.median(ingests):.1f}")
    if latencies:
        print(f"latency_p50_ms={statistics.median(latencies):.1f}")
        print(f"latency_p99_ms={percentile(latencies, 0.99):.1f}")
        print(f"latency_max_ms={max(latencies):.1f}")
    print(f"signals_per_second={len(latencies) / elapsed:.1f}")
    if refused:
        # The figures above would describe refusals, not executions: fail instead of reporting them.
        counts = ", ".join(f"{count} {status}" for status, count in refused.most_common())
        sys.exit(
            f"bench-latency: {refused.total()} of {args.signals} signals were not executed "
            f"({counts}; the first: {first_reason}), so the figures above do not measure execution"
        )


def next_closed_minute(simulator: SimulatorProcess) -> datetime:
    """Move the simulator's clock a minute on and return the minute that has just closed there."""
    from marketdata.broker_time import parse_broker_time

    response = requests.post(
        f"{simulator.base_url}/__sim/clock",
        json={"advance": 60},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    response.raise_for_status()
    now = parse_broker_time(response.json()["time"])
    return now.replace(second=0, microsecond=0) - timedelta(minutes=1)


if __name__ == "__main__":
    main()
