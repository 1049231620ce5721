"""Market-data benchmark against the simulator and TimescaleDB (prints figures, asserts nothing).

    make bench-backfill
    # or: eval "$(scripts/services.sh env)"; .venv/bin/python bench/backfill.py [--minutes 3]

1. Backfill: one year of M1 candles of one pair (a synthetic walk, about 370,000 candles) from the
   simulator through the real oandapyV20 client, paged by 5000, into TimescaleDB through the
   validated ingestion; prints candles/s end to end (the simulator runs on the same 2 cores).
2. Streamer: 20 pairs streaming at 4 prices/s each (the simulator's clock at real speed); for every
   closed minute of every pair, the delay from the minute boundary to the broker's complete candle
   being stored; prints p50/p99/max.

It uses the database ``<DATABASE_URL's name>_bench`` (created and migrated if needed), like
bench/ingest.py. ``make test`` runs it with ``--days 2 --pairs 2 --minutes 0.25 --warmup 6``
(tests/bench/test_benches_run.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]

from bench.ingest import setup_bench_database  # noqa: E402

TOKEN = "bench-token"
ACCOUNT = "101-001-0000000-009"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="backfill span")
    parser.add_argument("--minutes", type=float, default=3.0, help="streamer run, real minutes")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="streamer run before the first minute closes, s"
    )
    args = parser.parse_args()

    setup_bench_database()
    from marketdata.models import Pair
    from marketdata.oanda import OandaClient, OandaConfig
    from marketdata.services import candles_backfill
    from marketdata.streaming import Streamer
    from oandasim.client import SimulatorProcess
    from oandasim.instruments import FX_INSTRUMENTS

    # 1. A year of one pair.
    end = datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    start = end - timedelta(days=args.days)
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--start", end.strftime("%Y-%m-%dT%H:%M:%SZ"), "--paused", "--rate-limit", "0"),
            *("--history-days", str(args.days + 2)),
        ],
        ready_timeout=120,
    ) as simulator:
        client = OandaClient(
            OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)
        )
        began = time.perf_counter()
        result = candles_backfill(
            client=client, pair="GBP_USD", timeframe="M1", start=start, end=end
        )
        elapsed = time.perf_counter() - began
    stored = result.ingest.stored
    print(
        f"backfill_days={args.days} backfill_requests={result.requests} backfill_candles={stored}"
    )
    print(f"backfill_seconds={elapsed:.1f}")
    print(f"backfill_candles_per_second={stored / elapsed:,.0f}")

    # 2. The streamer on 20 pairs at real speed.
    pairs = [name for name in FX_INSTRUMENTS][: args.pairs]
    Pair.objects.update(enabled=False)
    Pair.objects.filter(symbol__in=pairs).update(enabled=True)
    # A Wednesday morning, --warmup seconds before 10:01 (the streamer's bootstrap is not measured).
    sim_start = datetime(2025, 12, 10, 10, 1, tzinfo=UTC) - timedelta(seconds=args.warmup)
    delays: list[float] = []
    prices = [0]
    with SimulatorProcess(
        token=TOKEN,
        account=ACCOUNT,
        extra_args=[
            *("--start", sim_start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--speed", "1"),
            *("--stream-interval", "0.25", "--stream-unchanged", "--rate-limit", "0"),
            *("--history-days", "2", "--heartbeat", "1"),
        ],
        ready_timeout=120,
    ) as simulator:
        wall_start = time.time()
        config = OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)

        def closed(pair: str, first: datetime, end: datetime) -> None:
            boundary_wall = wall_start + (end - sim_start).total_seconds()
            # Only minutes that closed while we watched: the bootstrap backfill is not latency.
            if boundary_wall > wall_start + 1:
                delays.append(time.time() - boundary_wall)

        streamer = Streamer(
            client_factory=lambda: OandaClient(config),
            bootstrap=timedelta(minutes=5),
            stream_transactions=False,
            on_candles_closed=closed,
        )
        original = streamer._on_price_message

        def counting(message: object) -> bool:
            if isinstance(message, dict) and message.get("type") == "PRICE":
                prices[0] += 1
            return original(message)  # type: ignore[arg-type]

        streamer._on_price_message = counting  # type: ignore[method-assign]
        thread = threading.Thread(target=streamer.run, daemon=True)
        thread.start()
        time.sleep(args.minutes * 60)
        streamer.stop.set()
        thread.join(timeout=30)
    print(f"stream_pairs={len(pairs)} stream_seconds={args.minutes * 60:.0f}")
    print(f"stream_prices_per_second={prices[0] / (args.minutes * 60):.1f}")
    if delays:
        print(f"candle_closes_measured={len(delays)}")
        print(f"candle_close_to_stored_p50_ms={statistics.median(delays) * 1000:.0f}")
        print(f"candle_close_to_stored_p99_ms={percentile(delays, 0.99) * 1000:.0f}")
        print(f"candle_close_to_stored_max_ms={max(delays) * 1000:.0f}")


if __name__ == "__main__":
    main()
