"""Backups are real pg_dump archives that restore into a fresh database with every row."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from backups.services import BackupError, backup_create, backup_restore, backups_list
from tests.conftest import REPO, require

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def pg_bin_dir(timescaledb: None) -> Iterator[None]:
    """Client programs of the server's major version: PG_BIN_DIR, or the test server's own.

    `make test` exports PG_BIN_DIR when it runs the chroot TimescaleDB; a shell with only
    DATABASE_URL gets the same wrappers here.
    """
    from django.conf import settings

    from backups.services import _tool_major_version, pg_tool

    server_major = connection.pg_version // 10000  # type: ignore[attr-defined]
    try:
        if _tool_major_version(pg_tool("pg_dump")) == server_major:
            yield
            return
    except BackupError:
        pass
    wrappers = subprocess.run(
        [str(REPO / "scripts" / "timescaledb.sh"), "bin"], capture_output=True, text=True
    )
    require(wrappers.returncode == 0, f"no pg_dump {server_major} (set PG_BIN_DIR)")
    with override_settings(PG_BIN_DIR=wrappers.stdout.strip()):
        assert settings.PG_BIN_DIR
        yield


@pytest.fixture
def fresh_database_name() -> Iterator[str]:
    name = f"{connection.settings_dict['NAME']}_restored"
    yield name
    with psycopg.connect(**_libpq(), dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _libpq() -> dict[str, Any]:
    server = connection.settings_dict
    return {
        "host": server["HOST"] or None,
        "port": server["PORT"] or None,
        "user": server["USER"] or None,
        "password": server["PASSWORD"] or None,
    }


def _store_candles_and_trades(seed_candles: list[dict[str, Any]]) -> None:
    from marketdata.services import candles_ingest
    from trading.models import Trade

    result = candles_ingest(candles=seed_candles, pair="EUR_USD", timeframe="M1")
    assert result.stored == len(seed_candles)
    opened = datetime(2025, 7, 24, 12, tzinfo=UTC)
    for number in range(1, 6):
        Trade.objects.create(
            account_id="101-001-0000000-001",
            broker_trade_id=str(100 + number),
            pair_id="EUR_USD",
            initial_units=Decimal(1000 * number),
            current_units=Decimal(0),
            open_price=Decimal("1.17123") + Decimal(number) / 100000,
            opened_at=opened + timedelta(minutes=number),
            state=Trade.State.CLOSED,
            close_price=Decimal("1.17200"),
            closed_at=opened + timedelta(hours=number),
            realized_pl=Decimal("-1.2345") * number,
        )


def test_a_backup_restores_into_a_fresh_database_with_every_trade_and_candle(
    pg_bin_dir: None,
    seed_candles: list[dict[str, Any]],
    fresh_database_name: str,
    tmp_path: Path,
) -> None:
    # Given candles in the hypertable and closed trades
    _store_candles_and_trades(seed_candles)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pair, timeframe, time, open, high, low, close, volume, complete "
            "FROM market_candles ORDER BY pair, timeframe, time"
        )
        candles = cursor.fetchall()
        cursor.execute(
            "SELECT broker_trade_id, pair, initial_units, open_price, opened_at, state, "
            "close_price, closed_at, realized_pl FROM trading_trades ORDER BY broker_trade_id"
        )
        trades = cursor.fetchall()
    assert len(candles) == len(seed_candles) and len(trades) == 5

    # When it is backed up and restored into a database that does not exist yet
    backup = backup_create(directory=tmp_path, keep=3)
    restored = backup_restore(archive=backup.path, database=fresh_database_name)

    # Then the new database holds every candle and trade, value for value
    assert backup.path.stat().st_size > 0
    assert restored.tables > 10
    with psycopg.connect(**_libpq(), dbname=fresh_database_name) as copy:
        assert (
            copy.execute(
                "SELECT pair, timeframe, time, open, high, low, close, volume, complete "
                "FROM market_candles ORDER BY pair, timeframe, time"
            ).fetchall()
            == candles
        )
        assert (
            copy.execute(
                "SELECT broker_trade_id, pair, initial_units, open_price, opened_at, state, "
                "close_price, closed_at, realized_pl FROM trading_trades "
                "ORDER BY broker_trade_id"
            ).fetchall()
            == trades
        )
        # The candle table is still a hypertable (new candles go into chunks), and the database
        # has left TimescaleDB's restoring mode.
        assert restored.timescaledb
        hypertables = copy.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall()
        assert ("market_candles",) in hypertables
        assert copy.execute("SHOW timescaledb.restoring").fetchone() == ("off",)


def test_rotation_keeps_only_the_newest_backups(pg_bin_dir: None, tmp_path: Path) -> None:
    made = [backup_create(directory=tmp_path, keep=2).path for _ in range(3)]
    (tmp_path / "unrelated.dump").write_text("not ours")

    kept = backups_list(directory=tmp_path)

    assert kept == made[1:]
    assert not made[0].exists()
    assert (tmp_path / "unrelated.dump").exists()


def test_restore_refuses_a_database_that_holds_tables_unless_forced(
    pg_bin_dir: None, tmp_path: Path, fresh_database_name: str
) -> None:
    archive = backup_create(directory=tmp_path).path
    call_command("restore", str(archive), "--database", fresh_database_name)

    with pytest.raises(CommandError, match=r"already holds \d+ tables; restore refuses"):
        call_command("restore", str(archive), "--database", fresh_database_name)

    call_command("restore", str(archive), "--database", fresh_database_name, "--force")
    with psycopg.connect(**_libpq(), dbname=fresh_database_name) as copy:
        pairs = copy.execute("SELECT count(*) FROM trading_pairs").fetchone()
    assert pairs is not None and pairs[0] > 0


def test_the_backup_command_names_a_pg_dump_of_the_wrong_major_version(
    timescaledb: None, tmp_path: Path
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 15.20'\n")
    (fake / "pg_dump").chmod(0o755)

    with override_settings(PG_BIN_DIR=str(fake)), pytest.raises(CommandError) as error:
        call_command("backup", "--dir", str(tmp_path / "out"))

    assert "is PostgreSQL 15 but the server is PostgreSQL 17" in str(error.value)
    assert "PG_BIN_DIR" in str(error.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
