from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from marketdata.streaming import Streamer
from septrader.queues import current_node


class Command(BaseCommand):
    help = (
        "Stream prices and transactions from OANDA for this node's enabled pairs (long-lived; "
        "run one per node under a supervisor). SIGTERM or Ctrl-C stops it cleanly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--pair", action="append", help="stream only these pairs (default: the enabled pairs)"
        )
        parser.add_argument(
            "--node",
            default=current_node(),
            help="stream only the pairs assigned to this node (default: $SEPTRADER_NODE)",
        )
        parser.add_argument("--no-transactions", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            self.stderr.write(f"stream_prices: signal {signum}, stopping")
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        streamer = Streamer(
            pairs=options["pair"],
            node=options["node"],
            stream_transactions=not options["no_transactions"],
            stop=stop,
        )
        self.stdout.write("stream_prices: running")
        streamer.run()
        self.stdout.write("stream_prices: stopped")
