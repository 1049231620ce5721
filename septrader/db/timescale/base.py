"""django-timescaledb's PostgreSQL backend, made safe where the extension is missing.

The upstream backend (timescale.db.backends.postgresql, 0.2.13) turns every model with a
``TimescaleDateTimeField`` into a hypertable. Two of its behaviours are wrong for us:

* ``prepare_database`` and ``create_model`` fail outright on a PostgreSQL server without the
  timescaledb extension, so the project could not migrate there at all. We create the extension only
  when the server has it available, and skip the hypertable otherwise (the table still works).
* It drops the table's primary key, because a unique index on a hypertable must include the time
  column. Django keeps treating ``id`` as unique, so we put back a primary key of ``(id, time)``:
  the admin and ``get(pk=...)`` keep working and the database still enforces what Django assumes.
"""

from __future__ import annotations

import logging
from typing import Any

from timescale.db.backends.postgresql.base import DatabaseWrapper as TimescaleDatabaseWrapper
from timescale.db.backends.postgresql.schema import TimescaleSchemaEditor

logger = logging.getLogger(__name__)


def timescaledb_installed(connection: Any) -> bool:
    """Whether the timescaledb extension is installed in the connected database."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
        return cursor.fetchone() is not None


class GuardedTimescaleSchemaEditor(TimescaleSchemaEditor):
    def _create_hypertable(self, model: Any, field: Any, should_migrate: bool = False) -> None:
        if not timescaledb_installed(self.connection):
            logger.warning(
                "event=hypertable_skipped table=%s reason=timescaledb_extension_missing",
                model._meta.db_table,
            )
            return
        super()._create_hypertable(model, field, should_migrate)
        table = self.quote_name(model._meta.db_table)
        constraint = self.quote_name(model._meta.db_table + "_pkey")
        columns = f"{self.quote_name(model._meta.pk.column)}, {self.quote_name(field.column)}"
        self.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} PRIMARY KEY ({columns})")


class DatabaseWrapper(TimescaleDatabaseWrapper):
    SchemaEditorClass = GuardedTimescaleSchemaEditor

    def prepare_database(self) -> None:
        # Skip the upstream CREATE EXTENSION, which fails where the extension is not available.
        super(TimescaleDatabaseWrapper, self).prepare_database()
        with self.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
            if cursor.fetchone() is not None:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            else:
                logger.warning("event=timescaledb_unavailable detail=plain PostgreSQL tables")
