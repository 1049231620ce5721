"""Candle ingestion and query benchmark against TimescaleDB (prints figures, asserts nothing).

    make bench
    # or: eval "$(scripts/services.sh env)"; .venv/bin/python bench/ingest.py

1. Loads 1,000,000 synthetic M1 candles of one pair through ``candles_ingest`` (validation, COPY
   into a staging table, INSERT ... ON CONFLICT) in batches, and prints candles/s.
2. Re-ingests the first batch to time the unchanged path.
3. Fills the table to 10,000,000 rows (20 pairs, generated in SQL) and times the selector for "the
   last 1000 M1 candles of one pair", printing p50/p99 in ms.

It uses its own database, ``<DATABASE_URL's name>_bench``, created and migrated on first use.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def bench_database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit('DATABASE_URL is not set: run `make bench`, or eval "$(scripts/services.sh env)"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_bench"))


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def setup_bench_database() -> None:
    """Point Django at the bench database, migrate it, empty the candles, print the machine."""
    url = bench_database_url()
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "septrader.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        version = cursor.fetchone()
        cursor.execute("TRUNCATE market_candles")
    print(f"machine={platform.node()} cpus={os.cpu_count()} python={platform.python_version()}")
    print(f"timescaledb={version[0] if version else 'absent'}")


def synthetic_candles(count: int, start: datetime) -> list[dict[str, object]]:
    rows = []
    price = 110000  # in units of 0.00001
    for minute in range(count):
        step = (minute * 7919) % 21 - 10
        close = price + step
        high = max(price, close) + 3
        low = min(price, close) - 3
        rows.append(
            {
                "time": start + timedelta(minutes=minute),
                "open": Decimal(price).scaleb(-5),
                "high": Decimal(high).scaleb(-5),
                "low": Decimal(low).scaleb(-5),
                "close": Decimal(close).scaleb(-5),
                "volume": 10 + minute % 90,
            }
        )
        price = close
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--table-rows", type=int, default=10_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()

    setup_bench_database()
    from django.db import connection

    from marketdata.selectors import candles_last
    from marketdata.services import candles_ingest, candles_ingest_batches

    # 1. Ingestion through the service.
    start = datetime(2024, 1, 1, tzinfo=UTC)
    candles = synthetic_candles(args.candles, start)
    began = time.perf_counter()
    stored = 0
    batches = (
        (offset, candles[offset : offset + args.batch])
        for offset in range(0, len(candles), args.batch)
    )
    for result in candles_ingest_batches(batches=batches, pair="EUR_USD", timeframe="M1"):
        stored += result.stored
        assert not result.rejected, result.rejected[:3]
    elapsed = time.perf_counter() - began
    print(f"ingest_candles={stored} ingest_batch={args.batch} ingest_seconds={elapsed:.2f}")
    print(f"ingest_candles_per_second={stored / elapsed:,.0f}")

    began = time.perf_counter()
    result = candles_ingest(candles=candles[: args.batch], pair="EUR_USD", timeframe="M1")
    elapsed = time.perf_counter() - began
    print(f"reingest_unchanged_candles_per_second={result.unchanged / elapsed:,.0f}")

    # 2. A 10-million-row table for the query benchmark, generated in SQL.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM market_candles")
        have = cursor.fetchone()[0]
        missing = args.table_rows - have
        if missing > 0:
            cursor.execute(
                "SELECT symbol FROM trading_pairs WHERE symbol <> 'EUR_USD' ORDER BY symbol"
            )
            others = [row[0] for row in cursor.fetchall()][:19]
            per_pair = missing // len(others) + 1
            began = time.perf_counter()
            for symbol in others:
                cursor.execute(
                    "INSERT INTO market_candles "
                    "(pair, timeframe, time, open, high, low, close, volume, complete) "
                    "SELECT %s, 'M1', t, 1.1 + (i %% 97) * 0.00001, 1.1012, 1.0990, "
                    "1.1 + (i %% 89) * 0.00001, 10, true "
                    "FROM generate_series(0, %s - 1) AS i, "
                    "LATERAL (SELECT %s::timestamptz + i * INTERVAL '1 minute' AS t) AS times",
                    [symbol, per_pair, start],
                )
            cursor.execute("ANALYZE market_candles")
            print(f"table_fill_seconds={time.perf_counter() - began:.1f}")
        cursor.execute("SELECT count(*) FROM market_candles")
        rows = cursor.fetchone()[0]
    print(f"table_rows={rows:,}")

    # 3. The last 1000 M1 candles of one pair, through the selector. The first read of a pair in
    # a process searches every chunk; later ones start where the previous read ended.
    timings = []
    for _ in range(args.queries):
        began = time.perf_counter()
        last = candles_last(pair="EUR_USD", timeframe="M1", count=1000)
        timings.append((time.perf_counter() - began) * 1000)
        assert len(last) == 1000
    first = timings[0]
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(f"last_1000_m1_queries={args.queries}")
    print(f"last_1000_m1_p50_ms={p50:.2f}")
    print(f"last_1000_m1_p99_ms={p99:.2f}")
    print(f"last_1000_m1_first_ms={first:.2f}")


if __name__ == "__main__":
    main()
