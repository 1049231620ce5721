from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from nodes.services import ClusterError, node_set_markets
from septrader.queues import EXECUTION_QUEUE, NODE_ENV, node_queue


class Command(BaseCommand):
    help = (
        "Run this droplet's execution node: a Celery worker on exec.<name> and execution (plus "
        "--queue extras) that heartbeats as node <name>. Replaces this process with the worker; "
        "run it under a supervisor, with `stream_prices --node <name>` beside it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the node's name (a slug, e.g. ams1)")
        parser.add_argument(
            "--queue", action="append", default=[], help="also consume this queue (repeatable)"
        )
        parser.add_argument(
            "--markets",
            default=None,
            help="the markets this node trades, comma-separated instrument types (CURRENCY, "
            "METAL, CFD; e.g. CFD for a crypto droplet); 'any' for every market; left as it is "
            "when not given",
        )
        parser.add_argument("--concurrency", type=int, default=2)
        parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if not name or slugify(name) != name or len(name) > 50:
            raise CommandError(
                f"--name={name!r} is not a node name; expected a slug of at most 50 characters "
                "(lower-case letters, digits, - and _)."
            )
        if options["markets"] is not None:
            markets = [m.strip() for m in options["markets"].split(",") if m.strip()]
            try:
                node_set_markets(
                    name=name, markets=[] if markets == ["any"] else markets, actor="cli"
                )
            except ClusterError as error:
                raise CommandError(f"--markets: {error}") from None
        queues = ",".join(dict.fromkeys([node_queue(name), EXECUTION_QUEUE, *options["queue"]]))
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "septrader",
            "worker",
            "-Q",
            queues,
            "-n",
            f"{name}@%h",
            "--pool",
            options["pool"],
            "--concurrency",
            str(options["concurrency"]),
            "--loglevel",
            options["loglevel"],
            # Nodes share nothing through worker-to-worker messages: they start faster without.
            "--without-gossip",
            "--without-mingle",
        ]
        self.stdout.write(f"run_node: node {name} consuming {queues}")
        self.stdout.flush()
        os.execvpe(argv[0], argv, {**os.environ, NODE_ENV: name})
