"""``manage.py parity --day 2025-07-24 [--pair EUR_USD ...]``: replay a finished New York trading
day and store its parity report per pair (README, "Parity report"); a rerun replaces it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from parity.models import ParityReport
from parity.services import ParityError, parity_run


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--day={text!r} is not valid; expected a trading day as YYYY-MM-DD, such as "
            "2025-07-24 (the day ending at 17:00 New York)."
        ) from None


class Command(BaseCommand):
    help = (
        "Replay a finished New York trading day (17:00 to 17:00) through the evaluation code with "
        "the rule that was live, compare it with the live signals and trades, and store the "
        "parity report of each pair; a rerun replaces the day's reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--day", required=True, help="the trading day, YYYY-MM-DD (ends 17:00 New York)"
        )
        parser.add_argument(
            "--pair",
            action="append",
            default=[],
            help="a pair to report (repeat for more; default: every pair live that day)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        day = _day(options["day"])
        try:
            reports = parity_run(day=day, pairs=options["pair"] or None)
        except ParityError as error:
            raise CommandError(f"--{error.message}") from None
        if not reports:
            self.stdout.write(f"Parity {day.isoformat()}: no pair was live that day.")
        for report in reports:
            self.stdout.write(_line(report))


def _line(report: ParityReport) -> str:
    causes = ", ".join(f"{count} {cause}" for cause, count in report.causes.items() if count)
    parts = ", ".join(
        f"{name} {amount}" for name, amount in report.attribution.items() if Decimal(amount)
    )
    return (
        f"Parity {report.pair_id} {report.day.isoformat()}: {report.replay_signals} replayed, "
        f"{report.live_signals} live signals, {report.mismatches} mismatch(es)"
        f"{f' ({causes})' if causes else ''}, {report.unexplained} unexplained; "
        f"P&L live {report.live_pl} - replay {report.replay_pl} = {report.pl_difference} "
        f"{report.currency}{f' ({parts})' if parts else ''}"
        f"{f'; {report.note}' if report.note else ''}"
    )
