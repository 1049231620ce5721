"""Run one project action against the TimescaleDB TSL test server and print what the database says.

    echo '{"argument": ...}' | DATABASE_URL=... python tests/marketdata/tsl_actions.py ACTION

Used by test_timescale_tsl.py, which starts the server (scripts/pglite-tsl) and asserts on the
JSON this prints as its last line. Each action is a fresh process, as the project's own commands
and workers are, so every Django connection is a fresh session of the one PGlite backend.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "septrader.settings")


def _facts() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('timescaledb.license', true)")
        license_ = cursor.fetchone()[0]
        cursor.execute(
            "SELECT view_name, materialized_only, materialization_hypertable_schema, "
            "materialization_hypertable_name FROM timescaledb_information.continuous_aggregates "
            "ORDER BY view_name"
        )
        aggregates = {}
        for view, materialized_only, schema, table in cursor.fetchall():
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            aggregates[view] = {
                "materialized_only": materialized_only,
                "materialized_rows": cursor.fetchone()[0],
            }
        cursor.execute(
            "SELECT job_id, proc_name, coalesce(hypertable_name, ''), schedule_interval::text, "
            "coalesce(config::text, '{}') FROM timescaledb_information.jobs "
            "WHERE proc_name <> 'policy_job_stat_history_retention' ORDER BY job_id"
        )
        jobs = [
            {
                "id": job_id,
                "proc": proc,
                "table": table,
                "schedule": schedule,
                "config": json.loads(config),
            }
            for job_id, proc, table, schedule, config in cursor.fetchall()
        ]
        cursor.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc "
            "FROM timescaledb_information.compression_settings "
            "WHERE hypertable_name = 'market_candles' ORDER BY attname"
        )
        compression = {
            name: {"segmentby": segment, "orderby": order, "orderby_asc": ascending}
            for name, segment, order, ascending in cursor.fetchall()
        }
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_compressed), "
            "coalesce(min(range_start)::text, '') FROM timescaledb_information.chunks "
            "WHERE hypertable_name = 'market_candles'"
        )
        chunks, compressed, oldest = cursor.fetchone()
    return {
        "license": license_,
        "aggregates": aggregates,
        "jobs": jobs,
        "compression": compression,
        "chunks": chunks,
        "compressed_chunks": compressed,
        "oldest_chunk_start": oldest,
    }


def _bar(bar: Any) -> dict[str, Any]:
    return {
        "time": bar.time.isoformat(),
        "open": str(bar.open),
        "high": str(bar.high),
        "low": str(bar.low),
        "close": str(bar.close),
        "volume": bar.volume,
        "minutes": bar.minutes,
        "complete": bar.complete,
    }


def main(action: str, arguments: dict[str, Any]) -> Any:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from marketdata import services
    from marketdata.selectors import candles_between, candles_last

    # PGlite's wire protocol has no COPY FROM STDIN, so large batches take the multi-row INSERT
    # path here; the COPY path runs against native TimescaleDB in the rest of the suite.
    services.COPY_THRESHOLD = sys.maxsize

    if action == "migrate":
        call_command("migrate", verbosity=0)
        return _facts()
    if action == "facts":
        return _facts()
    if action == "load_candles":
        call_command(
            "load_candles",
            arguments["file"],
            pair=arguments["pair"],
            timeframe="M1",
            no_progress=True,
        )
        return _facts()
    if action == "ingest":
        result = services.candles_ingest(
            candles=arguments["candles"], pair=arguments["pair"], timeframe="M1"
        )
        return {
            "stored": result.stored,
            "unchanged": result.unchanged,
            "rejected": [str(error) for error in result.rejected],
        }
    if action == "candles":
        if arguments["timeframe"] == "M1":
            bars = candles_last(pair=arguments["pair"], timeframe="M1", count=arguments["count"])
        else:
            bars = candles_between(pair=arguments["pair"], timeframe=arguments["timeframe"])
        return [_bar(bar) for bar in bars]
    if action == "run_jobs":
        # What TimescaleDB's scheduler would do on time; PGlite has no background workers.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s "
                "ORDER BY job_id",
                [arguments["proc"]],
            )
            ran = [row[0] for row in cursor.fetchall()]
            for job_id in ran:
                cursor.execute("CALL run_job(%s)", [job_id])
        return {"ran": ran, **_facts()}
    if action == "count":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM market_candles WHERE pair = %s AND time < %s",
                [arguments["pair"], arguments["before"]],
            )
            return cursor.fetchone()[0]
    raise SystemExit(f"action={action!r} is not one of this script's actions")


if __name__ == "__main__":
    outcome = main(sys.argv[1], json.loads(sys.stdin.read() or "{}"))
    print(json.dumps(outcome))
