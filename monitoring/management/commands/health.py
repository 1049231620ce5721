"""``manage.py health``: every component's health, with an exit code for healthchecks.

Exit 0 when healthy, 1 when degraded, 2 when down (cron, systemd and Docker HEALTHCHECK read it).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from monitoring.health import component_names
from monitoring.selectors import health_report

EXIT_CODES = {"ok": 0, "degraded": 1, "down": 2}


class Command(BaseCommand):
    help = "Check every component; exit 0 healthy, 1 degraded, 2 down."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        parser.add_argument(
            "--component",
            action="append",
            metavar="NAME",
            help=f"check only this component (repeatable): {', '.join(component_names())}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = health_report(components=options["component"])
        except KeyError as error:
            raise CommandError(
                f"--component {error.args[0]!r} is unknown; expected one of "
                f"{', '.join(component_names())}"
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            for item in report["components"]:
                latency = f" {item['latency_ms']:.0f} ms" if item["latency_ms"] is not None else ""
                success = item["last_success"] or "never"
                self.stdout.write(
                    f"{item['status']:<8} {item['name']:<22} {item['reason']} "
                    f"(last success {success}{latency})"
                )
            self.stdout.write(f"overall: {report['status']}")
        raise SystemExit(EXIT_CODES[report["status"]])
