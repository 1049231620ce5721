from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata.cli import parse_moment
from marketdata.models import Candle, Pair
from marketdata.selectors import SERVED_TIMEFRAMES
from qfh.arrays import command_array_module
from qfh.services import DEFAULT_WINDOW_BITS, candle_metrics_compute

# Ranges are processed a week at a time so the progress bar moves and memory stays flat.
STEP = timedelta(days=7)


class Command(BaseCommand):
    help = "Compute and store per-candle QFH metrics from stored candles (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pair", action="append", required=True, help="repeatable")
        parser.add_argument("--timeframe", action="append", choices=list(SERVED_TIMEFRAMES))
        parser.add_argument("--from", dest="start", help="UTC date or time, e.g. 2025-07-24")
        parser.add_argument("--to", dest="end", help="UTC date or time (exclusive)")
        parser.add_argument("--window", type=int, default=DEFAULT_WINDOW_BITS)
        parser.add_argument(
            "--backend",
            choices=["auto", "numpy", "cupy"],
            help="array module of this run (default: the QFH_BACKEND setting)",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        xp = command_array_module(options["backend"])
        start = parse_moment("from", options["start"])
        end = parse_moment("to", options["end"])
        if start and end and start >= end:
            raise CommandError(
                f"--from {start:%Y-%m-%dT%H:%MZ} is not before --to {end:%Y-%m-%dT%H:%MZ}"
            )
        unknown = sorted(set(options["pair"]) - set(Pair.objects.values_list("symbol", flat=True)))
        if unknown:
            raise CommandError(f"--pair {', '.join(unknown)}: unknown pair(s)")
        timeframes = options["timeframe"] or ["M1"]
        total = 0
        for pair in options["pair"]:
            stored = Candle.objects.filter(pair_id=pair, timeframe="M1")
            first_time = start or stored.order_by("time").values_list("time", flat=True).first()
            last_time = end or (
                (
                    stored.order_by("-time").values_list("time", flat=True).first()
                    or datetime.now(UTC)
                )
                + timedelta(minutes=1)
            )
            if first_time is None:
                self.stdout.write(f"{pair}: no candles stored")
                continue
            steps = []
            cursor = first_time
            while cursor < last_time:
                steps.append((cursor, min(cursor + STEP, last_time)))
                cursor += STEP
            for timeframe in timeframes:
                written = 0
                for step_start, step_end in tqdm(
                    steps,
                    desc=f"{pair} {timeframe}",
                    unit="week",
                    disable=options["no_progress"],
                    file=sys.stderr,
                ):
                    run = candle_metrics_compute(
                        pair=pair,
                        timeframe=timeframe,
                        start=step_start,
                        end=step_end,
                        window_bits=options["window"],
                        xp=xp,
                    )
                    written += run.written
                total += written
                self.stdout.write(f"{pair} {timeframe}: metrics stored for {written} candles")
        self.stdout.write(f"total: {total}")
