from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups.services import BackupError, backup_restore, backups_list


class Command(BaseCommand):
    help = (
        "Restore a pg_dump archive (or `latest` in BACKUP_DIR) into a named database on the "
        "configured server, creating it when missing. A database that already holds tables is "
        "refused unless --force, which drops and replaces it: stop every process using it first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="path to a .dump file, or `latest`")
        parser.add_argument("--database", required=True, help="the database to restore into")
        parser.add_argument(
            "--force", action="store_true", help="drop and replace a database that holds tables"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            archive = self._archive(options["archive"])
            result = backup_restore(
                archive=archive, database=options["database"], force=options["force"]
            )
        except BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"restored {archive} into database {result.database}: {result.tables} tables"
            + (" (TimescaleDB pre/post restore done)" if result.timescaledb else "")
        )

    def _archive(self, name: str) -> Path:
        if name != "latest":
            return Path(name)
        backups = backups_list()
        if not backups:
            raise BackupError("`latest` found no backup of this database in BACKUP_DIR.")
        return backups[-1]
