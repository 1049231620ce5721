"""The embedded default (SQLite + filesystem broker) migrates and serves the same candles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.conftest import REPO, SEED_CANDLES
from tests.marketdata.reference import aggregate

DUMP = """
import json, django
django.setup()
from marketdata.selectors import candles_between
out = {}
for tf in ("M1", "M5", "M15", "H1"):
    out[tf] = [
        [c.time.isoformat(), str(c.open), str(c.high), str(c.low), str(c.close), c.volume,
         getattr(c, "minutes", 1)]
        for c in candles_between(pair="EUR_USD", timeframe=tf)
    ]
print(json.dumps(out))
"""


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )


def test_the_embedded_sqlite_mode_migrates_loads_the_file_and_aggregates_like_timescaledb(
    tmp_path: Path, seed_candles: list[dict[str, Any]]
) -> None:
    # Given no server settings at all
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "septrader.settings",
        "SEPTRADER_DATA_DIR": str(tmp_path),
    }

    # When the database is migrated and the bundled file loaded twice
    migrate = manage(env, "migrate", "--verbosity", "0")
    assert migrate.returncode == 0, migrate.stderr
    first = manage(env, "load_candles", str(SEED_CANDLES), "--pair", "EUR_USD", "--timeframe", "M1")
    second = manage(
        env, "load_candles", str(SEED_CANDLES), "--pair", "EUR_USD", "--timeframe", "M1"
    )

    # Then the SQLite file is in WAL mode, every candle is stored once, and the higher timeframes
    # equal the same reference aggregation the TimescaleDB test uses
    assert (tmp_path / "septrader.sqlite3").exists()
    assert (tmp_path / "septrader.sqlite3-wal").exists() or "wal" in _journal_mode(tmp_path)
    assert f"stored {len(seed_candles)}, unchanged 0, rejected 0" in first.stdout, first.stderr
    assert f"stored 0, unchanged {len(seed_candles)}, rejected 0" in second.stdout
    dump = subprocess.run(
        [sys.executable, "-c", DUMP], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert dump.returncode == 0, dump.stderr
    served = json.loads(dump.stdout)
    assert len(served["M1"]) == len(seed_candles)
    for timeframe, seconds in (("M5", 300), ("M15", 900), ("H1", 3600)):
        expected = [
            [
                row["time"].isoformat(),
                *(
                    str(row[k].quantize(Decimal("0.000001")))
                    for k in ("open", "high", "low", "close")
                ),
                row["volume"],
                row["minutes"],
            ]
            for row in aggregate(seed_candles, seconds)
        ]
        assert served[timeframe] == expected, timeframe
    assert datetime.fromisoformat(served["H1"][0][0]).utcoffset() is not None


def _journal_mode(tmp_path: Path) -> str:
    import sqlite3

    with sqlite3.connect(tmp_path / "septrader.sqlite3") as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])
