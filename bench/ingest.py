"""Candle ingestion and query benchmark against TimescaleDB (prints figures, asserts nothing).

    make bench
    # or: eval "$(scripts/services.sh env)"; .venv/bin/python bench/ingest.py

Each figure of ours is printed beside the database's own limit, measured in the same run on the
same rows, and their ratio:

1. Loads 1,000,000 synthetic M1 candles of one pair through ``candles_ingest_batches``
   (validation, then COPY, or a staging table and INSERT ... ON CONFLICT) in batches; beside it
   the same candles through a bare COPY (psycopg's own adapters, no validation, no upsert) into an
   identical hypertable (same columns, indexes and chunk interval), batch by batch.
2. Re-ingests the first batch (the unchanged path); beside it a bare INSERT ... ON CONFLICT DO
   NOTHING of the same batch (COPY into a staging table, then one INSERT ... SELECT).
3. Fills the table to 10,000,000 rows (20 pairs, generated in SQL) and times the selector for "the
   last 1000 M1 candles of one pair", p50/p99 in ms; beside it the very statement the selector
   sends, run bare through psycopg with no Decimal or datetime decoding, and the server's own time
   (EXPLAIN ANALYZE: planning + execution).
4. The reads the live path makes every minute on that table: the newest complete candle of each
   enabled pair (the streamer, before and after each closed minute) and the last N M1 candles of
   one pair for the analysis (N = the live history with confirmation): client and server times.

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
from typing import Any
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


BARE_TABLE = "bench_bare_candles"
COLUMNS = ("pair", "timeframe", "time", "open", "high", "low", "close", "volume", "complete")


def percentile(timings: list[float], share: float) -> float:
    ordered = sorted(timings)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def ratio(ours: float, bare: float) -> str:
    return f"{ours / bare:.2f}" if bare else "n/a"


def raw_connection(*, decode: bool = True) -> Any:
    """A psycopg connection of its own to the bench database, outside Django. With
    ``decode=False`` numerics and timestamps come back as the server's text, undecoded."""
    import psycopg
    from psycopg.types.string import TextLoader

    url = os.environ["DATABASE_URL"]
    parts = urlsplit(url)
    raw = psycopg.connect(urlunsplit(parts._replace(scheme="postgresql")), autocommit=True)
    raw.execute("SET TIME ZONE 'UTC'")
    if not decode:
        for name in ("numeric", "timestamptz", "timestamp"):
            raw.adapters.register_loader(name, TextLoader)
    return raw


def bare_table_create(raw: Any) -> None:
    """An empty hypertable identical to market_candles: columns, defaults, constraints, indexes
    and chunk interval (and nothing else: no aggregates or policies hang on it)."""
    interval = raw.execute(
        "SELECT time_interval FROM timescaledb_information.dimensions "
        "WHERE hypertable_name = 'market_candles' AND column_name = 'time'"
    ).fetchone()
    raw.execute(f"DROP TABLE IF EXISTS {BARE_TABLE}")
    raw.execute(f"CREATE TABLE {BARE_TABLE} (LIKE market_candles INCLUDING ALL)")
    if interval is not None:
        raw.execute(
            "SELECT create_hypertable(%s, 'time', chunk_time_interval => %s, "
            "create_default_indexes => false)",
            [BARE_TABLE, interval[0]],
        )


def write_rows(copy: Any, candles: list[dict[str, Any]], pair: str) -> None:
    """The candles into a COPY, row by row through psycopg's own adapters."""
    for candle in candles:
        copy.write_row(
            (
                pair,
                "M1",
                candle["time"],
                candle["open"],
                candle["high"],
                candle["low"],
                candle["close"],
                candle["volume"],
                True,
            )
        )


def bare_copy(raw: Any, candles: list[dict[str, Any]], batch: int, pair: str) -> float:
    """The candles through COPY, one transaction a batch as ours; returns the seconds."""
    began = time.perf_counter()
    for offset in range(0, len(candles), batch):
        with (
            raw.transaction(),
            raw.cursor() as cursor,
            cursor.copy(f"COPY {BARE_TABLE} ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            write_rows(copy, candles[offset : offset + batch], pair)
    return time.perf_counter() - began


def bare_insert_nothing(raw: Any, candles: list[dict[str, Any]], pair: str) -> float:
    """The candles (all stored already) through a staging COPY and one INSERT ... ON CONFLICT DO
    NOTHING; returns the seconds."""
    began = time.perf_counter()
    with raw.transaction(), raw.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS bench_staging (pair varchar(7), "
            "timeframe varchar(3), time timestamptz, open numeric(16, 6), high numeric(16, 6), "
            "low numeric(16, 6), close numeric(16, 6), volume integer, complete boolean) "
            "ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY bench_staging ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            write_rows(copy, candles, pair)
        cursor.execute(
            f"INSERT INTO {BARE_TABLE} ({', '.join(COLUMNS)}) "
            f"SELECT {', '.join(COLUMNS)} FROM bench_staging ON CONFLICT DO NOTHING"
        )
        assert cursor.rowcount == 0, cursor.rowcount
    return time.perf_counter() - began


def server_ms(raw: Any, sql: str, params: list[Any], runs: int) -> tuple[float, float]:
    """The median planning and execution times (ms) the server reports for ``sql``."""
    planning, execution = [], []
    for _ in range(runs):
        plan = raw.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).fetchone()[0][0]
        planning.append(plan["Planning Time"])
        execution.append(plan["Execution Time"])
    return statistics.median(planning), statistics.median(execution)


def client_ms(read: Any, runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        read()
        timings.append((time.perf_counter() - began) * 1000)
    return timings


def bench_ingest(args: argparse.Namespace, candles: list[dict[str, Any]]) -> None:
    from marketdata.services import candles_ingest, candles_ingest_batches

    began = time.perf_counter()
    stored = 0
    batches = (
        (offset, candles[offset : offset + args.batch])
        for offset in range(0, len(candles), args.batch)
    )
    for result in candles_ingest_batches(batches=batches, pair="EUR_USD", timeframe="M1"):
        stored += result.stored
        assert not result.rejected, result.rejected[:3]
    ours_seconds = time.perf_counter() - began
    with raw_connection() as raw:
        bare_table_create(raw)
        bare_seconds = bare_copy(raw, candles, args.batch, "EUR_USD")
        bare_rows = raw.execute(f"SELECT count(*) FROM {BARE_TABLE}").fetchone()[0]
    assert bare_rows == stored == len(candles), (bare_rows, stored)
    ours, bare = stored / ours_seconds, stored / bare_seconds
    print(f"ingest_candles={stored} ingest_batch={args.batch} ingest_seconds={ours_seconds:.2f}")
    print(f"ingest_candles_per_second={ours:,.0f}")
    print(f"ingest_bare_copy_seconds={bare_seconds:.2f}")
    print(f"ingest_bare_copy_candles_per_second={bare:,.0f}")
    print(f"ingest_ratio_to_bare_copy={ratio(ours, bare)}")

    first = candles[: args.batch]
    began = time.perf_counter()
    result = candles_ingest(candles=first, pair="EUR_USD", timeframe="M1")
    ours_seconds = time.perf_counter() - began
    assert result.unchanged == len(first), result
    with raw_connection() as raw:
        bare_seconds = bare_insert_nothing(raw, first, "EUR_USD")
        raw.execute(f"DROP TABLE {BARE_TABLE}")
    ours, bare = len(first) / ours_seconds, len(first) / bare_seconds
    print(f"reingest_unchanged_candles_per_second={ours:,.0f}")
    print(f"reingest_bare_insert_do_nothing_candles_per_second={bare:,.0f}")
    print(f"reingest_ratio_to_bare={ratio(ours, bare)}")


def table_fill(args: argparse.Namespace, start: datetime) -> list[str]:
    """Fill market_candles to ``--table-rows`` rows with 19 more pairs, each ending on the same
    minute as EUR_USD (as the enabled pairs of a live system all reach the present); returns
    every pair in it."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM market_candles")
        have = cursor.fetchone()[0]
        missing = args.table_rows - have
        cursor.execute("SELECT symbol FROM trading_pairs WHERE symbol <> 'EUR_USD' ORDER BY symbol")
        others = [row[0] for row in cursor.fetchall()][:19]
        if missing <= 0:
            # Already filled by an earlier run: the pairs that have candles.
            cursor.execute(
                "SELECT symbol FROM unnest(%s::text[]) AS symbol WHERE EXISTS "
                "(SELECT 1 FROM market_candles WHERE pair = symbol AND timeframe = 'M1')",
                [others],
            )
            others = [row[0] for row in cursor.fetchall()]
        else:
            per_pair = missing // len(others) + 1
            first = start + timedelta(minutes=args.candles - per_pair)
            began = time.perf_counter()
            for symbol in others:
                cursor.execute(
                    "INSERT INTO market_candles "
                    "(pair, timeframe, time, open, high, low, close, volume, complete) "
                    "SELECT %s, 'M1', t, 1.1 + (i %% 97) * 0.00001, 1.1012, 1.0990, "
                    "1.1 + (i %% 89) * 0.00001, 10, true "
                    "FROM generate_series(0, %s - 1) AS i, "
                    "LATERAL (SELECT %s::timestamptz + i * INTERVAL '1 minute' AS t) AS times",
                    [symbol, per_pair, first],
                )
            cursor.execute("ANALYZE market_candles")
            print(f"table_fill_seconds={time.perf_counter() - began:.1f}")
        cursor.execute("SELECT count(*) FROM market_candles")
        rows = cursor.fetchone()[0]
    print(f"table_rows={rows:,}")
    return ["EUR_USD", *others]


def bench_last_1000(args: argparse.Namespace) -> None:
    """The last 1000 M1 candles of one pair: ours, the same statement bare, the server."""
    from marketdata.selectors import candles_last, last_m1_statement

    # The first read of a pair in a process searches every chunk; later ones start where the
    # previous read ended (marketdata/selectors.py).
    timings = client_ms(
        lambda: candles_last(pair="EUR_USD", timeframe="M1", count=1000), args.queries
    )
    assert len(candles_last(pair="EUR_USD", timeframe="M1", count=1000)) == 1000
    first = timings[0]
    p50, p99 = statistics.median(timings), percentile(timings, 0.99)
    sql, params = last_m1_statement(pair="EUR_USD", count=1000)
    with raw_connection(decode=False) as raw:
        # Unnamed statements, as the selector sends its bounded read (planned with the bound).
        bare = client_ms(lambda: raw.execute(sql, params, prepare=False).fetchall(), args.queries)
        assert len(raw.execute(sql, params, prepare=False).fetchall()) == 1000
        planning, execution = server_ms(raw, sql, params, 50)
    bare_p50, bare_p99 = statistics.median(bare), percentile(bare, 0.99)
    print(f"last_1000_m1_queries={args.queries}")
    print(f"last_1000_m1_p50_ms={p50:.2f}")
    print(f"last_1000_m1_p99_ms={p99:.2f}")
    print(f"last_1000_m1_first_ms={first:.2f}")
    print(f"last_1000_m1_bare_p50_ms={bare_p50:.2f}")
    print(f"last_1000_m1_bare_p99_ms={bare_p99:.2f}")
    print(f"last_1000_m1_ratio_to_bare_p50={ratio(p50, bare_p50)}")
    print(f"last_1000_m1_ratio_to_bare_p99={ratio(p99, bare_p99)}")
    print(f"last_1000_m1_server_planning_ms={planning:.3f}")
    print(f"last_1000_m1_server_execution_ms={execution:.3f}")


def bench_live_reads(args: argparse.Namespace, pairs: list[str]) -> None:
    """What the live path reads every minute, on the full table: client and server times."""
    from marketdata.selectors import (
        candle_newest_complete_time,
        candles_last,
        last_m1_statement,
        newest_complete_statement,
    )
    from qfh.evaluation.features import history_needed

    newest = {pair: candle_newest_complete_time(pair, "M1") for pair in pairs}
    assert all(newest.values()), newest
    timings = client_ms(
        lambda: [candle_newest_complete_time(pair, "M1") for pair in pairs], args.queries // 5
    )
    per_pair = [timing / len(pairs) for timing in timings]
    sql, params = newest_complete_statement(pair="EUR_USD", timeframe="M1")
    with raw_connection() as raw:
        planning, execution = server_ms(raw, sql, params, 50)
    print(f"live_newest_candle_pairs={len(pairs)}")
    print(f"live_newest_candle_all_pairs_p50_ms={statistics.median(timings):.3f}")
    print(f"live_newest_candle_per_pair_p50_ms={statistics.median(per_pair):.3f}")
    print(f"live_newest_candle_server_planning_ms={planning:.3f}")
    print(f"live_newest_candle_server_execution_ms={execution:.3f}")

    count = history_needed(window=12, volatility_lookback=100, confirm=True)
    newest_eur_usd = newest["EUR_USD"]
    assert newest_eur_usd is not None
    until = newest_eur_usd + timedelta(minutes=1)
    candles_last(pair="EUR_USD", timeframe="M1", count=count, until=until)
    timings = client_ms(
        lambda: candles_last(pair="EUR_USD", timeframe="M1", count=count, until=until),
        args.queries,
    )
    sql, params = last_m1_statement(pair="EUR_USD", count=count, until=until)
    with raw_connection() as raw:
        planning, execution = server_ms(raw, sql, params, 50)
    print(f"live_history_candles={count}")
    print(f"live_history_p50_ms={statistics.median(timings):.3f}")
    print(f"live_history_p99_ms={percentile(timings, 0.99):.3f}")
    print(f"live_history_server_planning_ms={planning:.3f}")
    print(f"live_history_server_execution_ms={execution:.3f}")


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
    start = datetime(2024, 1, 1, tzinfo=UTC)
    candles = synthetic_candles(args.candles, start)
    bench_ingest(args, candles)
    pairs = table_fill(args, start)
    bench_last_1000(args)
    bench_live_reads(args, pairs)


if __name__ == "__main__":
    main()
