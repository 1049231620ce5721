from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata.oanda import OandaClient, OandaError
from marketdata.services import instruments_sync

# The audit log names the command as the actor, as `sync import` does.
ACTOR = "system:manage.py"


class Command(BaseCommand):
    help = (
        "Instruments as the broker describes them: `instruments sync` creates a disabled pair for "
        "each new instrument of the account and refreshes the broker's figures of the others; it "
        "never disables or deletes a pair."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser(
            "sync", help="Create and update the pairs from the account's instruments."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = instruments_sync(client=OandaClient(), actor=ACTOR)
        except OandaError as error:
            raise CommandError(f"The broker's instruments could not be read: {error}") from error
        self.stdout.write(f"Instruments sync: {result.summary()}")
        for symbol, changes in result.updated.items():
            described = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changes.items())
            self.stdout.write(f"Updated {symbol}: {described}")
        for name, reason in result.skipped.items():
            self.stderr.write(f"Skipped {name}: {reason}")
