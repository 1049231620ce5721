"""Database backups: pg_dump archives with rotation, and restores into a named database.

A backup is one ``pg_dump --format=custom`` archive of the whole database, written under a
temporary name and renamed when complete, so a crash never leaves a truncated file that looks like
a backup. Rotation keeps the newest ``keep`` archives of the same database and deletes older ones.

A restore loads an archive into a named database with ``pg_restore``. TimescaleDB needs its
``timescaledb_pre_restore()`` / ``timescaledb_post_restore()`` calls around it (they stop and
restart its background workers and tell it that catalog rows are being loaded:
https://docs.timescale.com/self-hosted/latest/backup-and-restore/logical-backup/). A database
that already holds tables is never overwritten unless the caller says ``force``.

pg_dump refuses to dump a server of a newer major version, and an older server may not read a
newer archive, so the client programs are checked against the server's major version first.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

# Where Debian's and Ubuntu's postgresql-client-17 (PGDG) put the programs.
DEFAULT_PG_BIN_DIR = Path("/usr/lib/postgresql/17/bin")
DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# Schemas that exist in an empty database once the timescaledb extension is installed.
SYSTEM_SCHEMAS = (
    "pg_catalog",
    "information_schema",
    "timescaledb_information",
    "timescaledb_experimental",
)


class BackupError(Exception):
    """A backup or restore that cannot go ahead, with the reason an operator can act on."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    removed: list[Path]


@dataclass(frozen=True)
class RestoreResult:
    database: str
    tables: int
    timescaledb: bool


def backup_create(*, directory: Path | None = None, keep: int | None = None) -> BackupResult:
    """Dump the default database into ``directory`` and keep only its newest ``keep`` backups."""
    directory = Path(directory or settings.BACKUP_DIR)
    keep = settings.BACKUP_KEEP if keep is None else keep
    if keep < 1:
        raise BackupError(f"keep={keep} would delete every backup; expected at least 1.")
    server = _server_settings()
    pg_dump = pg_tool("pg_dump")
    _check_major_version(pg_dump, server)
    directory.mkdir(parents=True, exist_ok=True)

    name = f"{server['NAME']}-{datetime.now(tz=UTC):%Y%m%dT%H%M%S.%f}Z.dump"
    final = directory / name
    partial = directory / f".{name}.partial"
    command = [
        str(pg_dump),
        "--format=custom",
        "--lock-wait-timeout=2min",
        "--no-password",
        f"--file={partial}",
    ]
    try:
        _run(command, server)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    removed = backup_rotate(directory=directory, database=str(server["NAME"]), keep=keep)
    size = final.stat().st_size
    logger.info("backup written path=%s size_bytes=%d removed=%d", final, size, len(removed))
    return BackupResult(path=final, size_bytes=size, removed=removed)


def backups_list(*, directory: Path | None = None, database: str | None = None) -> list[Path]:
    """The backups of ``database`` (default: the configured one) in ``directory``, oldest first."""
    directory = Path(directory or settings.BACKUP_DIR)
    database = database or str(_server_settings()["NAME"])
    pattern = re.compile(rf"^{re.escape(database)}-\d{{8}}T\d{{6}}\.\d{{6}}Z\.dump$")
    if not directory.is_dir():
        return []
    # The names hold the UTC time to the microsecond, so sorting by name sorts by age.
    return sorted(path for path in directory.iterdir() if pattern.match(path.name))


def backup_rotate(*, directory: Path, database: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups of ``database``; return the deleted paths."""
    backups = backups_list(directory=directory, database=database)
    expired = backups[:-keep] if len(backups) > keep else []
    for path in expired:
        path.unlink()
    return expired


def backup_restore(*, archive: Path, database: str, force: bool = False) -> RestoreResult:
    """Restore ``archive`` into ``database`` on the configured server, creating it if missing.

    An existing database that holds tables is refused unless ``force``, which drops it first
    (closing its connections): stop every process using it before restoring over it.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(f"archive {str(archive)!r} does not exist or is not a file.")
    if not DATABASE_NAME.match(database):
        raise BackupError(
            f"database {database!r} is not a plain PostgreSQL name; expected letters, digits "
            "and underscores, starting with a letter."
        )
    server = _server_settings()
    pg_restore = pg_tool("pg_restore")
    _check_major_version(pg_restore, server)
    timescaledb = _archive_has_timescaledb(pg_restore, archive, server)

    with _connect(server, "postgres") as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database]
        ).fetchone()
        if exists:
            tables = _table_count(server, database)
            if tables and not force:
                raise BackupError(
                    f"database {database!r} already holds {tables} tables; restore refuses to "
                    "overwrite it. Pass --force to drop and replace it, or name a new database."
                )
            if tables:
                logger.warning("restore dropping database=%s tables=%d", database, tables)
                admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
                exists = None
        if not exists:
            admin.execute(f'CREATE DATABASE "{database}"')

    if timescaledb:
        with _connect(server, database) as target:
            target.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            target.execute("SELECT timescaledb_pre_restore()")
    try:
        _run(
            [
                str(pg_restore),
                "--no-owner",
                "--exit-on-error",
                "--no-password",
                f"--dbname={database}",
                str(archive),
            ],
            server,
        )
    finally:
        if timescaledb:
            with _connect(server, database) as target:
                target.execute("SELECT timescaledb_post_restore()")
    tables = _table_count(server, database)
    logger.info(
        "restore done archive=%s database=%s tables=%d timescaledb=%s",
        archive,
        database,
        tables,
        timescaledb,
    )
    return RestoreResult(database=database, tables=tables, timescaledb=timescaledb)


def pg_tool(name: str) -> Path:
    """The PostgreSQL client program ``name``: from PG_BIN_DIR, the version-17 folder, or PATH."""
    if settings.PG_BIN_DIR:
        path = Path(settings.PG_BIN_DIR) / name
        if not os.access(path, os.X_OK):
            raise BackupError(
                f"PG_BIN_DIR={settings.PG_BIN_DIR!r} holds no executable {name}; expected the "
                "folder of PostgreSQL's client programs (e.g. /usr/lib/postgresql/17/bin)."
            )
        return path
    if os.access(DEFAULT_PG_BIN_DIR / name, os.X_OK):
        return DEFAULT_PG_BIN_DIR / name
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"{name} was not found in {DEFAULT_PG_BIN_DIR} or on PATH; install "
            "postgresql-client-17 or set PG_BIN_DIR."
        )
    return Path(found)


def _server_settings() -> dict[str, Any]:
    server = connections["default"].settings_dict
    if connections["default"].vendor != "postgresql":
        raise BackupError(
            "backups need DATABASE_URL to point at PostgreSQL; the embedded SQLite database is "
            f"one file ({server['NAME']}): copy it while the processes are stopped."
        )
    return dict(server)


def _libpq_environment(server: dict[str, Any]) -> dict[str, str]:
    environment = dict(os.environ)
    for variable, key in (
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ):
        if server.get(key):
            environment[variable] = str(server[key])
    return environment


def _connect(server: dict[str, Any], database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=server.get("HOST") or None,
        port=server.get("PORT") or None,
        user=server.get("USER") or None,
        password=server.get("PASSWORD") or None,
        dbname=database,
        autocommit=True,
    )


def _run(command: list[str], server: dict[str, Any]) -> str:
    result = subprocess.run(
        command, env=_libpq_environment(server), capture_output=True, text=True, check=False
    )
    if result.stderr.strip():
        # pg_dump warns about TimescaleDB's circular foreign keys between its catalog tables;
        # harmless, kept in the log for the record.
        logger.info("%s said: %s", Path(command[0]).name, result.stderr.strip())
    if result.returncode != 0:
        raise BackupError(
            f"{Path(command[0]).name} failed with exit status {result.returncode}: "
            f"{result.stderr.strip()[-2000:]}"
        )
    return result.stdout


def _tool_major_version(tool: Path) -> int:
    output = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", output)
    if not match:
        raise BackupError(
            f"{tool} --version printed {output.strip()!r}; expected a PostgreSQL tool."
        )
    return int(match.group(1))


def _check_major_version(tool: Path, server: dict[str, Any]) -> None:
    with _connect(server, str(server["NAME"])) as conn:
        server_major = conn.info.server_version // 10000
    tool_major = _tool_major_version(tool)
    if tool_major != server_major:
        raise BackupError(
            f"{tool} is PostgreSQL {tool_major} but the server is PostgreSQL {server_major}; "
            f"set PG_BIN_DIR to the folder of PostgreSQL {server_major}'s client programs."
        )


def _archive_has_timescaledb(pg_restore: Path, archive: Path, server: dict[str, Any]) -> bool:
    listing = _run([str(pg_restore), "--list", str(archive)], server)
    return any(
        " EXTENSION " in line and line.rstrip().endswith("timescaledb")
        for line in listing.splitlines()
        if not line.startswith(";")
    )


def _table_count(server: dict[str, Any], database: str) -> int:
    with _connect(server, database) as conn:
        row = conn.execute(
            """
            SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p')
              AND n.nspname <> ALL(%s)
              AND n.nspname NOT LIKE 'pg\\_%%'
              AND n.nspname NOT LIKE '\\_timescaledb\\_%%'
            """,
            [list(SYSTEM_SCHEMAS)],
        ).fetchone()
    return int(row[0]) if row else 0
