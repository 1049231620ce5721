from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from septrader.sync import SyncError, sync_export, sync_import, sync_import_newest


class Command(BaseCommand):
    help = (
        "Air-gapped sync: `sync export` writes a signed bundle of signals, pair models and config; "
        "`sync import` verifies and imports the newest bundle of the inbox (or --file)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write a signed bundle.")
        export.add_argument("--dir", type=Path, help="Where to write it (SYNC_OUTBOX_DIR).")
        export.add_argument(
            "--since", help="Only signals created since this ISO 8601 time (default: all)."
        )
        imported = actions.add_parser("import", help="Import the newest bundle of the inbox.")
        imported.add_argument("--inbox", type=Path, help="The inbox folder (SYNC_INBOX_DIR).")
        imported.add_argument("--file", type=Path, help="Import this bundle instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "export":
                since = None
                if options["since"]:
                    since = parse_datetime(options["since"])
                    if since is None or since.tzinfo is None:
                        raise CommandError(
                            f"--since={options['since']!r} is not valid; expected an ISO 8601 "
                            "time with a UTC offset, e.g. 2025-07-24T10:00:00Z"
                        )
                path = sync_export(directory=options["dir"], since=since)
                self.stdout.write(f"Wrote {path}")
                return
            if options["file"]:
                result = sync_import(path=options["file"])
            else:
                result = sync_import_newest(inbox=options["inbox"])
        except SyncError as error:
            raise CommandError(str(error)) from error
        if result.already_imported:
            self.stdout.write(f"{result.path.name} was imported before; nothing changed.")
            return
        counts = ", ".join(f"{name}={value}" for name, value in result.counts.items())
        self.stdout.write(f"Imported {result.path.name}: {counts}")
