"""Several droplets (DESIGN.md section 9): node heartbeats, failover, drain and rebalance.

Each node is a Celery worker consuming ``exec.<name>`` (and ``execution``) with ``SEPTRADER_NODE``
set, plus ``manage.py stream_prices --node <name>``. The worker's main process heartbeats
(``node_heartbeat``) every CLUSTER_HEARTBEAT_SECONDS; beat runs ``nodes_failover`` every few
seconds, which declares a node silent beyond ``cluster.node_silence_seconds`` down, moves its
pairs to the healthy active node with the fewest pairs and raises ``cluster.node_down.<name>``.

Moving a pair is safe while signals are in flight: a signal already queued on the old node's
queue is sent again to the new node's queue (the signal's claim lets one delivery act, and the
client order id stops a second order at the broker), and an executor that receives a signal of a
pair that is no longer its own forwards it (``trading.routing.signal_forward_if_foreign``).

Rebalancing moves only pairs without an open trade: the trade's exits live at the broker (stop
loss, take profit), but its close and reconciliation are easier to follow when the node that
opened it keeps the pair. Failover and drain move every pair, open trade or not: a down or
draining node must not keep any.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.text import slugify

from marketdata.models import Pair
from monitoring.heartbeats import start_heartbeat_thread
from monitoring.services import alert_raise, alert_resolve
from septrader.models import NODE_MARKETS, Node
from septrader.selectors import config_get
from septrader.services import audit_record
from trading.models import Trade
from trading.routing import signals_requeue_new
from trading.services import pair_assign_node

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:cluster"


class ClusterError(Exception):
    """A cluster action that cannot be done as asked; the message says why."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class ClusterReport:
    down: list[str] = field(default_factory=list)
    # (pair, from node, to node) for every pair moved.
    moved: list[tuple[str, str | None, str]] = field(default_factory=list)
    # Pairs that had to move but found no healthy active node.
    stranded: list[str] = field(default_factory=list)


def _threshold(threshold_seconds: int | None) -> int:
    if threshold_seconds is not None:
        return threshold_seconds
    return int(config_get("cluster.node_silence_seconds"))


def _alert_condition(name: str) -> str:
    return f"cluster.node_down.{name}"


def _healthy(now: datetime, threshold: int) -> Q:
    return Q(state=Node.State.ACTIVE, last_heartbeat__gte=now - timedelta(seconds=threshold))


# ----- heartbeats --------------------------------------------------------------------------------


@transaction.atomic
def node_heartbeat(*, name: str, now: datetime | None = None) -> Node:
    """Record that node ``name`` is alive; a node that was down is active again.

    A draining node stays draining. A node coming back from down gets no pairs by itself: an
    operator (or ``nodes_rebalance``) gives it some.
    """
    if not name or slugify(name) != name or len(name) > 50:
        raise ClusterError(
            f"name={name!r} is not a node name; expected a slug of at most 50 characters.",
            field="name",
        )
    moment = now or timezone.now()
    node, created = Node.objects.select_for_update().get_or_create(
        name=name, defaults={"last_heartbeat": moment}
    )
    if created:
        audit_record(actor=SYSTEM_ACTOR, action="node.join", target=name)
        logger.info("event=node_joined node=%s", name)
        return node
    node.last_heartbeat = moment
    fields = ["last_heartbeat"]
    if node.state == Node.State.DOWN:
        node.state = Node.State.ACTIVE
        fields.append("state")
        audit_record(actor=SYSTEM_ACTOR, action="node.back", target=name)
        alert_resolve(condition=_alert_condition(name), now=moment)
        logger.warning("event=node_back node=%s", name)
    node.save(update_fields=fields)
    return node


def _heartbeat_failed(name: str, error: Exception) -> None:
    logger.warning("event=node_heartbeat_failed node=%s error=%r", name, error)


def start_node_heartbeat(name: str) -> threading.Event:
    """A daemon thread that calls ``node_heartbeat`` every CLUSTER_HEARTBEAT_SECONDS."""
    from django.conf import settings

    stop = start_heartbeat_thread(
        functools.partial(node_heartbeat, name=name),
        interval=float(settings.CLUSTER_HEARTBEAT_SECONDS),
        thread_name="node-heartbeat",
        on_error=functools.partial(_heartbeat_failed, name),
    )
    logger.info("event=node_heartbeat_started node=%s", name)
    return stop


# ----- moving pairs ------------------------------------------------------------------------------


def _move(pair: Pair, target: Node, *, actor: str, address: str | None, reason: str) -> None:
    previous = pair.node.name if pair.node_id and pair.node else None
    pair_assign_node(symbol=pair.symbol, node_name=target.name, actor=actor, address=address)
    pair.node = target
    requeued = signals_requeue_new(pair, target.queue)
    logger.warning(
        "event=pair_moved pair=%s from=%s to=%s reason=%s requeued=%d",
        pair.symbol,
        previous,
        target.name,
        reason,
        requeued,
    )


def _move_pairs_away(
    node: Node,
    *,
    now: datetime,
    threshold: int,
    actor: str,
    address: str | None,
    reason: str,
    report: ClusterReport,
) -> None:
    """Every pair of ``node`` to the healthy active node serving its market with the fewest
    pairs, one at a time."""
    for pair in Pair.objects.filter(node=node).select_related("node").order_by("symbol"):
        candidates = (
            Node.objects.filter(_healthy(now, threshold))
            .exclude(pk=node.pk)
            .annotate(count=Count("pairs"))
            .order_by("count", "name")
        )
        target = next((c for c in candidates if c.serves(pair.instrument_type)), None)
        if target is None:
            report.stranded.append(pair.symbol)
            continue
        _move(pair, target, actor=actor, address=address, reason=reason)
        report.moved.append((pair.symbol, node.name, target.name))


def _lock_nodes() -> list[Node]:
    """Lock every node row, so failover, drain and rebalance never interleave."""
    return list(Node.objects.select_for_update().order_by("name"))


# ----- failover ----------------------------------------------------------------------------------


@transaction.atomic
def nodes_failover(
    *, now: datetime | None = None, threshold_seconds: int | None = None
) -> ClusterReport:
    """Declare nodes silent beyond the threshold down and move their pairs to healthy nodes.

    Also retries the pairs a down or draining node still holds (when no healthy node was left
    the last time). Run by beat every few seconds; safe to run twice.
    """
    moment = now or timezone.now()
    threshold = _threshold(threshold_seconds)
    cutoff = moment - timedelta(seconds=threshold)
    report = ClusterReport()
    for node in _lock_nodes():
        # A node added by hand is given the threshold from its creation to send a heartbeat.
        silent = (node.last_heartbeat or node.created_at) < cutoff
        if node.state != Node.State.DOWN and silent:
            node.state = Node.State.DOWN
            node.save(update_fields=["state"])
            report.down.append(node.name)
            audit_record(
                actor=SYSTEM_ACTOR,
                action="node.down",
                target=node.name,
                details={
                    "last_heartbeat": node.last_heartbeat.isoformat()
                    if node.last_heartbeat
                    else None,
                    "threshold_seconds": threshold,
                },
            )
        if node.state == Node.State.ACTIVE:
            continue
        before = len(report.moved)
        _move_pairs_away(
            node,
            now=moment,
            threshold=threshold,
            actor=SYSTEM_ACTOR,
            address=None,
            reason=f"node {node.state}",
            report=report,
        )
        if node.name in report.down or (
            node.state == Node.State.DOWN and len(report.moved) > before
        ):
            moved = [(pair, to) for pair, source, to in report.moved if source == node.name]
            stranded = list(Pair.objects.filter(node=node).values_list("symbol", flat=True))
            alert_raise(
                condition=_alert_condition(node.name),
                severity="critical",
                message=(
                    f"Node {node.name} has been silent for more than {threshold} s; "
                    + (
                        f"its pairs moved: {', '.join(f'{p} to {t}' for p, t in moved)}"
                        if moved
                        else "it had no pairs"
                    )
                    + (f"; no healthy node for {', '.join(stranded)}" if stranded else "")
                    + "."
                ),
                details={
                    "node": node.name,
                    "last_heartbeat": node.last_heartbeat.isoformat()
                    if node.last_heartbeat
                    else None,
                    "moved": [{"pair": p, "to": t} for p, t in moved],
                    "stranded": stranded,
                },
                now=moment,
            )
    if report.down or report.moved:
        logger.warning(
            "event=nodes_failover down=%s moved=%d stranded=%s",
            ",".join(report.down),
            len(report.moved),
            ",".join(report.stranded),
        )
    return report


# ----- operator actions --------------------------------------------------------------------------


def _node(name: str) -> Node:
    node = Node.objects.select_for_update().filter(name=name).first()
    if node is None:
        known = ", ".join(Node.objects.values_list("name", flat=True)) or "none yet"
        raise ClusterError(f"node={name!r} is not a known node (known: {known}).", field="node")
    return node


@transaction.atomic
def node_drain(*, name: str, actor: str, address: str | None = None) -> ClusterReport:
    """Take a node out for maintenance: it gets no new pairs and its pairs move away now."""
    _lock_nodes()
    node = _node(name)
    node.state = Node.State.DRAINING
    node.save(update_fields=["state"])
    audit_record(actor=actor, action="node.drain", target=name, address=address)
    report = ClusterReport()
    _move_pairs_away(
        node,
        now=timezone.now(),
        threshold=_threshold(None),
        actor=actor,
        address=address,
        reason="drain",
        report=report,
    )
    return report


@transaction.atomic
def node_save(
    *, node: Node, changed: list[str], created: bool, actor: str, address: str | None = None
) -> Node:
    """Store a node as the console's form edited it (``changed``: the names of the fields it
    changed), audited as ``node.add`` or ``node.change``."""
    node.save()
    audit_record(
        actor=actor,
        action="node.add" if created else "node.change",
        target=node.name,
        details={"changed": changed, "state": node.state},
        address=address,
    )
    return node


@transaction.atomic
def node_rejoin(*, name: str, actor: str, address: str | None = None) -> Node:
    """Make a drained (or down) node active again; ``nodes_rebalance`` then gives it pairs.

    A down node that still does not heartbeat is declared down again by the next failover.
    """
    _lock_nodes()
    node = _node(name)
    previous = node.state
    node.state = Node.State.ACTIVE
    node.save(update_fields=["state"])
    audit_record(
        actor=actor, action="node.rejoin", target=name, address=address, details={"from": previous}
    )
    return node


def _rebalance_move(
    pairs: dict[int, list[Pair]], nodes: dict[int, Node], busy: set[str]
) -> tuple[Pair, int, int] | None:
    """The next move that evens the load: from the fullest node that has a pair without an open
    trade which a node with at least two pairs fewer serves, to the emptiest such node; None when
    no move makes the spread more even (each move lowers the sum of squared counts, so it ends)."""
    order = sorted(pairs, key=lambda pk: (-len(pairs[pk]), nodes[pk].name))
    for fullest in order:
        for pair in reversed(pairs[fullest]):
            if pair.symbol in busy:
                continue
            targets = [
                pk
                for pk in pairs
                if len(pairs[fullest]) - len(pairs[pk]) > 1
                and nodes[pk].serves(pair.instrument_type)
            ]
            if targets:
                emptiest = min(targets, key=lambda pk: (len(pairs[pk]), nodes[pk].name))
                return pair, fullest, emptiest
    return None


@transaction.atomic
def node_set_markets(
    *, name: str, markets: list[str], actor: str, address: str | None = None
) -> Node:
    """The markets node ``name`` trades (instrument types; empty = every market), audited.

    Creates the node when it has not heart-beaten yet (``run_node --markets`` calls this at start).
    Its pairs of a market it no longer serves are not moved here: ``nodes_rebalance`` leaves them,
    so the operator sees them in the console and moves them (or a drain does).
    """
    if not isinstance(markets, list) or any(m not in NODE_MARKETS for m in markets):
        raise ClusterError(
            f"markets={markets!r} is not valid; expected instrument types from "
            f"{', '.join(NODE_MARKETS)} (none = every market).",
            field="markets",
        )
    node = Node.objects.select_for_update().filter(name=name).first()
    if node is None:
        node = node_heartbeat(name=name)
    clean = [m for m in NODE_MARKETS if m in markets]
    previous = list(node.markets)
    if previous != clean:
        node.markets = clean
        node.save(update_fields=["markets"])
        audit_record(
            actor=actor,
            action="node.markets",
            target=name,
            details={"from": previous, "to": clean},
            address=address,
        )
    return node


@transaction.atomic
def nodes_rebalance(
    *, actor: str, address: str | None = None, now: datetime | None = None
) -> ClusterReport:
    """Spread the pairs assigned to nodes evenly over the healthy active nodes.

    Pairs of nodes that are not healthy move first (open trade or not); then, while a node has
    two pairs more than another node that serves one of them (``Node.markets``), a pair without
    an open trade moves from the fullest such node to the emptiest. Pairs assigned to no node
    (served by the shared ``execution`` queue) stay so.
    """
    moment = now or timezone.now()
    threshold = _threshold(None)
    report = ClusterReport()
    _lock_nodes()
    healthy = list(Node.objects.filter(_healthy(moment, threshold)).order_by("name"))
    if not healthy:
        raise ClusterError("no active node has a recent heartbeat; nothing to rebalance onto.")
    healthy_ids = {node.pk for node in healthy}
    for node in Node.objects.exclude(pk__in=healthy_ids):
        _move_pairs_away(
            node,
            now=moment,
            threshold=threshold,
            actor=actor,
            address=address,
            reason="rebalance",
            report=report,
        )
    busy = {
        str(symbol)
        for symbol in Trade.objects.filter(state=Trade.State.OPEN)
        .values_list("pair_id", flat=True)
        .distinct()
    }
    pairs: dict[int, list[Pair]] = {node.pk: [] for node in healthy}
    for pair in Pair.objects.filter(node__in=healthy).select_related("node").order_by("symbol"):
        if pair.node_id is not None:
            pairs[pair.node_id].append(pair)
    by_pk = {node.pk: node for node in healthy}
    while (move := _rebalance_move(pairs, by_pk, busy)) is not None:
        pair, fullest, emptiest = move
        _move(pair, by_pk[emptiest], actor=actor, address=address, reason="rebalance")
        report.moved.append((pair.symbol, by_pk[fullest].name, by_pk[emptiest].name))
        pairs[fullest].remove(pair)
        pairs[emptiest].append(pair)
    audit_record(
        actor=actor,
        action="nodes.rebalance",
        address=address,
        details={"moved": [{"pair": p, "from": f, "to": t} for p, f, t in report.moved]},
    )
    return report


def node_summary() -> list[dict[str, Any]]:
    """Every node with its state, last heartbeat and pairs (for the command line and admin)."""
    return [
        {
            "name": node.name,
            "state": node.state,
            "last_heartbeat": node.last_heartbeat,
            "markets": list(node.markets),
            "pairs": sorted(node.pairs.values_list("symbol", flat=True)),
        }
        for node in Node.objects.prefetch_related("pairs")
    ]
