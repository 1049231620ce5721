from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from nodes.services import (
    ClusterError,
    ClusterReport,
    node_drain,
    node_rejoin,
    node_set_markets,
    node_summary,
    nodes_failover,
    nodes_rebalance,
)

ACTOR = "cli"


class Command(BaseCommand):
    help = (
        "The nodes of a multi-droplet install: `status`; `drain NAME` (its pairs move away, for "
        "maintenance); `rejoin NAME`; `rebalance` (spread pairs over the active nodes); "
        "`failover` (move the pairs of silent nodes now instead of waiting for beat); "
        "`markets NAME CFD,METAL` (the markets a node trades; `any` for all)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "action", choices=["status", "drain", "rejoin", "rebalance", "failover", "markets"]
        )
        parser.add_argument("name", nargs="?")
        parser.add_argument("markets", nargs="?")

    def handle(self, *args: Any, **options: Any) -> None:
        action, name = options["action"], options["name"]
        if action in ("drain", "rejoin", "markets") and not name:
            raise CommandError(f"`cluster {action}` needs the node's name.")
        try:
            if action == "drain":
                self._report(node_drain(name=name, actor=ACTOR))
            elif action == "rejoin":
                node_rejoin(name=name, actor=ACTOR)
            elif action == "rebalance":
                self._report(nodes_rebalance(actor=ACTOR))
            elif action == "failover":
                self._report(nodes_failover())
            elif action == "markets":
                wanted = [m.strip() for m in (options["markets"] or "").split(",") if m.strip()]
                node_set_markets(
                    name=name, markets=[] if wanted == ["any"] else wanted, actor=ACTOR
                )
        except ClusterError as error:
            raise CommandError(str(error)) from None
        for node in node_summary():
            seen = node["last_heartbeat"].isoformat() if node["last_heartbeat"] else "never"
            pairs = ", ".join(node["pairs"]) or "-"
            markets = ",".join(node["markets"]) or "any"
            self.stdout.write(
                f"{node['name']:<16} {node['state']:<9} {markets:<20} {seen:<34} {pairs}"
            )

    def _report(self, report: ClusterReport) -> None:
        for pair, source, target in report.moved:
            self.stdout.write(f"moved {pair} from {source} to {target}")
        for node in report.down:
            self.stdout.write(f"node {node} is down")
        if report.stranded:
            self.stdout.write(f"no healthy node for {', '.join(report.stranded)}")
