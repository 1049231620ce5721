from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata.candle_files import CandleFileError, batches, read_candle_file
from marketdata.services import IngestResult, candles_ingest_batches
from marketdata.timeframes import TIMEFRAME_SECONDS

BATCH_SIZE = 5000
SHOWN_REJECTIONS = 20


class Command(BaseCommand):
    help = (
        "Load candles from a JSON file (the seed's list of candles or an OANDA candles response) "
        "through the validated ingestion service. Re-loading the same file changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--pair", help="e.g. EUR_USD (default: the file's instrument)")
        parser.add_argument(
            "--timeframe", choices=list(TIMEFRAME_SECONDS), help="default: the file's granularity"
        )
        parser.add_argument("--price", choices=["mid", "bid", "ask"], default="mid")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            candles, meta = read_candle_file(options["file"], price=options["price"])
        except CandleFileError as error:
            raise CommandError(str(error)) from None
        pair = options["pair"] or meta.get("instrument")
        timeframe = options["timeframe"] or meta.get("granularity")
        if not pair:
            raise CommandError("--pair is required: the file does not name its instrument")
        if not timeframe:
            raise CommandError("--timeframe is required: the file does not name its granularity")
        total = IngestResult()
        with tqdm(
            total=len(candles),
            unit="candle",
            disable=options["no_progress"],
            file=sys.stderr,
        ) as progress:
            for result in candles_ingest_batches(
                batches=batches(candles, BATCH_SIZE), pair=pair, timeframe=timeframe
            ):
                total.merge(result)
                progress.update(result.received)
        for rejection in total.rejected[:SHOWN_REJECTIONS]:
            self.stderr.write(f"rejected {rejection}")
        if len(total.rejected) > SHOWN_REJECTIONS:
            self.stderr.write(f"... and {len(total.rejected) - SHOWN_REJECTIONS} more rejected")
        self.stdout.write(
            f"{pair} {timeframe}: stored {total.stored}, unchanged {total.unchanged}, "
            f"rejected {len(total.rejected)} (of {total.received})"
        )
        if total.rejected:
            raise CommandError(f"{len(total.rejected)} candle(s) were rejected", returncode=3)
