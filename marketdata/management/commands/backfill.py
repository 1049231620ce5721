from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from tqdm import tqdm

from marketdata.cli import parse_moment
from marketdata.models import Pair
from marketdata.oanda import OandaClient, OandaError
from marketdata.services import BackfillResult, candles_backfill
from marketdata.timeframes import TIMEFRAME_SECONDS

# Pairs fetched at once; the shared rate limiter keeps them all under OANDA's limit.
MAX_CONCURRENT_PAIRS = 4


class Command(BaseCommand):
    help = (
        "Backfill candles from OANDA (or the simulator) through the validated ingestion. "
        "Resumes after the newest stored complete candle; safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pair", action="append", required=True, help="repeatable")
        parser.add_argument("--timeframe", default="M1", choices=list(TIMEFRAME_SECONDS))
        parser.add_argument("--from", dest="start", help="UTC date or time; needed for a new pair")
        parser.add_argument("--to", dest="end", help="UTC date or time (default: now)")
        parser.add_argument("--price", default="M", choices=["M", "B", "A"], help="mid, bid, ask")
        parser.add_argument("--no-resume", action="store_true", help="refetch from --from")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        start = parse_moment("from", options["start"])
        end = parse_moment("to", options["end"])
        if start and end and start >= end:
            raise CommandError("--from must be before --to")
        pairs = list(dict.fromkeys(options["pair"]))
        unknown = sorted(set(pairs) - set(Pair.objects.values_list("symbol", flat=True)))
        if unknown:
            raise CommandError(f"--pair {', '.join(unknown)}: unknown pair(s)")

        def run(position: int, pair: str) -> BackfillResult | str:
            bar = tqdm(
                desc=f"{pair} {options['timeframe']}",
                unit="candle",
                position=position,
                disable=options["no_progress"],
                file=sys.stderr,
            )
            try:
                return candles_backfill(
                    client=OandaClient(),
                    pair=pair,
                    timeframe=options["timeframe"],
                    start=start,
                    end=end,
                    price=options["price"],
                    resume=not options["no_resume"],
                    on_page=lambda result: bar.update(result.ingest.received - bar.n),
                )
            except (OandaError, ValueError) as error:
                return f"{pair} {options['timeframe']}: failed: {error}"
            finally:
                bar.close()
                # Each worker thread has its own database connection.
                connections.close_all()

        workers = min(MAX_CONCURRENT_PAIRS, len(pairs))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(run, range(len(pairs)), pairs))
        failed = False
        for outcome in outcomes:
            if isinstance(outcome, str):
                failed = True
                self.stderr.write(outcome)
                continue
            self.stdout.write(outcome.summary())
            for rejection in outcome.ingest.rejected[:10]:
                self.stderr.write(f"rejected {rejection}")
            failed = failed or bool(outcome.ingest.rejected)
        if failed:
            raise CommandError("backfill incomplete: see the messages above", returncode=3)
