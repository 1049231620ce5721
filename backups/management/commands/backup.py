from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups.services import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "Dump the database with pg_dump (custom format) into the backup folder and delete all "
        "but the newest backups. Defaults: BACKUP_DIR and BACKUP_KEEP."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", type=Path, help="folder for the archives (BACKUP_DIR)")
        parser.add_argument(
            "--keep", type=int, help="how many newest backups to keep (BACKUP_KEEP)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_create(directory=options["dir"], keep=options["keep"])
        except BackupError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"backup written: {result.path} ({result.size_bytes / 1e6:.1f} MB); "
            f"removed {len(result.removed)} older backup(s)"
        )
