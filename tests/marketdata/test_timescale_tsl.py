"""Migrations, aggregates and policies on TimescaleDB with its community (TSL) features.

The rest of the suite runs on Debian's TimescaleDB, the Apache build, where migration 0003 makes
plain views. Production's timescale/timescaledb image has the TSL part: continuous aggregates,
compression and retention policies. These tests run the project against TimescaleDB 2.23 with
that part, in PGlite (PostgreSQL 17 in WebAssembly; scripts/pglite-tsl, installed by
scripts/services.sh), through tests/marketdata/tsl_actions.py in fresh processes. PGlite has no
background workers, so a policy runs when a test runs its job, as the scheduler would on time.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SEED_CANDLES, require
from tests.marketdata.reference import aggregate

ACTIONS = Path(__file__).with_name("tsl_actions.py")
SECONDS = {"M5": 300, "M15": 900, "H1": 3600}
Run = Callable[..., Any]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tsl() -> Iterator[Run]:
    """A fresh TSL database, migrated, with the real EUR/USD minutes and refreshed aggregates."""
    server = os.environ.get("TIMESCALE_TSL_SERVER", "")
    require(
        bool(server) and Path(server).is_file(),
        "TIMESCALE_TSL_SERVER names no server.mjs: run the tests through `make test` "
        "(scripts/services.sh installs it)",
    )
    port = _free_port()
    process = subprocess.Popen(
        ["node", server, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert "listening" in first_line, f"the TSL server did not start: {first_line}"
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres:postgres@127.0.0.1:{port}/postgres",
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
    }

    def run(action: str, **arguments: Any) -> Any:
        done = subprocess.run(
            [sys.executable, str(ACTIONS), action],
            input=json.dumps(arguments),
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        assert done.returncode == 0, (
            f"{action} failed:\n{done.stderr[-3000:]}\nserver: {_drain(process)}"
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    try:
        run("migrate")
        run("load_candles", file=str(SEED_CANDLES), pair="EUR_USD")
        run("run_jobs", proc="policy_refresh_continuous_aggregate")
        yield run
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _drain(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        return "still running"
    assert process.stdout is not None
    return f"exited {process.returncode}: {process.stdout.read()[-3000:]}"


def _expected(candles: list[dict[str, Any]], timeframe: str) -> list[dict[str, Any]]:
    return [
        {
            "time": row["time"].isoformat(),
            "open": f"{row['open']:.6f}",
            "high": f"{row['high']:.6f}",
            "low": f"{row['low']:.6f}",
            "close": f"{row['close']:.6f}",
            "volume": row["volume"],
            "minutes": row["minutes"],
            "complete": True,
        }
        for row in aggregate(candles, SECONDS[timeframe])
    ]


@contextmanager
def _raised_high(
    tsl: Run, candles: list[dict[str, Any]], index: int, by: str
) -> Iterator[list[dict[str, Any]]]:
    """Backfill minute ``index`` with its high raised ``by``; yield the corrected minutes; put the
    original minute and the aggregates back afterwards, for the tests that share the database."""
    corrected = deepcopy(candles)
    corrected[index]["high"] = str(Decimal(str(candles[index]["high"])) + Decimal(by))
    try:
        assert tsl("ingest", pair="EUR_USD", candles=[corrected[index]])["stored"] == 1
        yield corrected
    finally:
        tsl("ingest", pair="EUR_USD", candles=[candles[index]])
        tsl("run_jobs", proc="policy_refresh_continuous_aggregate")


def test_the_migrations_give_aggregates_compression_and_retention_policies(tsl: Run) -> None:
    facts = tsl("facts")

    assert facts["license"] == "timescale"
    assert {name: view["materialized_only"] for name, view in facts["aggregates"].items()} == {
        "market_candles_m5": False,
        "market_candles_m15": False,
        "market_candles_h1": False,
    }
    policies = {(job["proc"], job["table"]): job for job in facts["jobs"]}
    assert policies["policy_compression", "market_candles"]["config"]["compress_after"] == (
        "30 days"
    )
    assert policies["policy_retention", "market_candles"]["config"]["drop_after"] == "1825 days"
    for name, width in (("m5", "00:05:00"), ("m15", "00:15:00"), ("h1", "01:00:00")):
        refresh = policies["policy_refresh_continuous_aggregate", f"market_candles_{name}"]
        assert refresh["schedule"] == "00:01:00"
        assert refresh["config"]["start_offset"] is None
        assert refresh["config"]["end_offset"] == width
    assert facts["compression"] == {
        "pair": {"segmentby": 1, "orderby": None, "orderby_asc": None},
        "timeframe": {"segmentby": 2, "orderby": None, "orderby_asc": None},
        "time": {"segmentby": None, "orderby": 1, "orderby_asc": False},
    }


@pytest.mark.parametrize("timeframe", ["M5", "M15", "H1"])
def test_continuous_aggregates_equal_a_reference_aggregation_of_the_real_minutes(
    tsl: Run, seed_candles: list[dict[str, Any]], timeframe: str
) -> None:
    # Given the real minutes, materialised by the refresh policies (the fixture ran them)
    materialized = tsl("facts")["aggregates"][f"market_candles_{timeframe.lower()}"]
    assert materialized["materialized_rows"] > 0

    # When the selectors read the higher timeframe, then it equals the plain-Python aggregation
    assert tsl("candles", pair="EUR_USD", timeframe=timeframe) == _expected(seed_candles, timeframe)


def test_a_late_correction_reaches_the_aggregates_when_the_refresh_policy_runs(
    tsl: Run, seed_candles: list[dict[str, Any]]
) -> None:
    # Given a minute in an hour that is already materialised, corrected by a later backfill
    with _raised_high(tsl, seed_candles, 800, by="0.00500") as corrected:
        # Then the materialised hour keeps the old high until the policy's next run (each
        # minute in production)...
        assert tsl("candles", pair="EUR_USD", timeframe="H1") == _expected(seed_candles, "H1")

        # ...and after it, every timeframe equals the reference of the corrected minutes
        tsl("run_jobs", proc="policy_refresh_continuous_aggregate")
        for timeframe in ("M5", "M15", "H1"):
            assert tsl("candles", pair="EUR_USD", timeframe=timeframe) == _expected(
                corrected, timeframe
            )


def test_compressed_chunks_take_idempotent_re_ingestion_and_corrections(
    tsl: Run, seed_candles: list[dict[str, Any]]
) -> None:
    # Given the compression policy has compressed the chunks (older than 30 days)
    facts = tsl("run_jobs", proc="policy_compression")
    assert facts["chunks"] > 0
    assert facts["compressed_chunks"] == facts["chunks"]

    # When the same minutes are backfilled again, nothing changes
    again = tsl("ingest", pair="EUR_USD", candles=seed_candles)
    assert (again["stored"], again["unchanged"], again["rejected"]) == (0, len(seed_candles), [])

    # And a corrected minute in a compressed chunk replaces the stored one
    with _raised_high(tsl, seed_candles, len(seed_candles) - 3, by="0.00100") as corrected:
        last = tsl("candles", pair="EUR_USD", timeframe="M1", count=5)
        assert [bar["high"] for bar in last] == [
            f"{Decimal(str(candle['high'])):.6f}" for candle in corrected[-5:]
        ]
        tsl("run_jobs", proc="policy_refresh_continuous_aggregate")
        assert tsl("candles", pair="EUR_USD", timeframe="M5") == _expected(corrected, "M5")


def test_the_retention_policy_drops_candles_older_than_five_years(
    tsl: Run, seed_candles: list[dict[str, Any]]
) -> None:
    # Given an hour of minutes from 2019 next to the real ones of 2025
    start = datetime(2019, 1, 7, 9, 0, tzinfo=UTC)
    old = [
        {
            "time": (start + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z"),
            "open": "1.14000",
            "high": "1.14010",
            "low": "1.13990",
            "close": "1.14005",
            "volume": 5,
        }
        for minute in range(60)
    ]
    assert tsl("ingest", pair="EUR_USD", candles=old)["stored"] == 60
    assert tsl("count", pair="EUR_USD", before="2020-01-01T00:00:00Z") == 60

    # When the retention policy runs
    tsl("run_jobs", proc="policy_retention")

    # Then the 2019 minutes are gone and the 2025 ones all remain
    assert tsl("count", pair="EUR_USD", before="2020-01-01T00:00:00Z") == 0
    assert tsl("count", pair="EUR_USD", before="2026-01-01T00:00:00Z") == len(seed_candles)
