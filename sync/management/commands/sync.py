from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from sync.services import ImportResult, SyncError, sync_export, sync_import, sync_pull

# The command runs with this node's database credentials, which can change anything, so it
# imports settings as an admin would; the audit log names it as the actor.
ACTOR = "system:manage.py"


class Command(BaseCommand):
    help = (
        "Air-gapped sync: `sync export` writes a signed bundle of signals, pair models and config; "
        "`sync import` verifies and imports every bundle of the inbox not imported yet, oldest "
        "first (or only --file); a bad file is reported and skipped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        export = actions.add_parser("export", help="Write a signed bundle.")
        export.add_argument("--dir", type=Path, help="Where to write it (SYNC_OUTBOX_DIR).")
        export.add_argument(
            "--since", help="Only signals created since this ISO 8601 time (default: all)."
        )
        imported = actions.add_parser(
            "import", help="Import the bundles of the inbox not imported yet, oldest first."
        )
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
                self._report(sync_import(path=options["file"], actor=ACTOR, config_allowed=True))
                return
            pulled = sync_pull(inbox=options["inbox"], actor=ACTOR, config_allowed=True)
        except SyncError as error:
            raise CommandError(str(error)) from error
        for result in pulled.imported:
            self._report(result)
        if pulled.already_imported:
            self.stdout.write(
                f"{len(pulled.already_imported)} bundle(s) were imported before; nothing changed."
            )
        if pulled.rejected:
            for item in pulled.rejected:
                self.stderr.write(f"Skipped {item['file']}: {item['reason']}")
            # The good bundles are in; the exit status still tells a cron job about the bad.
            raise CommandError(
                f"{len(pulled.rejected)} file(s) of the inbox were rejected and skipped; "
                f"{len(pulled.imported)} bundle(s) were imported."
            )

    def _report(self, result: ImportResult) -> None:
        if result.already_imported:
            self.stdout.write(f"{result.path.name} was imported before; nothing changed.")
            return
        counts = ", ".join(f"{name}={value}" for name, value in result.counts.items())
        self.stdout.write(
            f"Imported {result.path.name} (from {result.source_node}, created "
            f"{result.created_at}): {counts}"
        )
        for conflict in result.config_conflicts:
            self.stdout.write(
                f"Kept {conflict['key']}={conflict['here']['value']!r}: changed here at "
                f"{conflict['here']['changed_at']}, later than the bundle's "
                f"{conflict['bundle']['value']!r} of {conflict['bundle']['changed_at']} on "
                f"{conflict['bundle']['origin_node']}."
            )
