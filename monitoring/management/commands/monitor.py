"""``manage.py monitor``: evaluate the alerts in a loop, outside Celery.

The beat task cannot report what stops Celery itself (Redis as the broker down, beat stopped,
every worker gone); this loop, supervised like the streamer, can. Both may run: evaluations are
single-flight and alerts deduplicated.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from monitoring.services import alerts_evaluate

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Evaluate the alert rules every --interval seconds until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=15.0)
        parser.add_argument("--once", action="store_true", help="evaluate once and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"]
        if interval < 1:
            raise SystemExit(f"--interval={interval} is too short; expected at least 1 second.")
        while True:
            started = time.monotonic()
            close_old_connections()
            try:
                evaluation = alerts_evaluate()
                logger.info(
                    "event=alerts_evaluated raised=%s resolved=%s skipped=%s",
                    ",".join(evaluation.raised),
                    ",".join(evaluation.resolved),
                    evaluation.skipped,
                )
            except Exception:
                logger.exception("event=alerts_evaluation_failed")
            if options["once"]:
                return
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
