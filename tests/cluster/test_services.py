"""Node heartbeats, failover, drain and rebalance, against the real database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from marketdata.models import Pair
from marketdata.streaming import Streamer
from monitoring.models import Alert
from nodes.services import (
    ClusterError,
    node_drain,
    node_heartbeat,
    node_rejoin,
    node_set_markets,
    nodes_failover,
    nodes_rebalance,
)
from septrader.models import NODE_MARKETS, AuditLog, Node
from septrader.services import config_set
from trading.models import Trade
from trading.services import Conflict, pair_assign_node

pytestmark = pytest.mark.django_db

SYMBOLS = ["AUD_USD", "EUR_USD", "GBP_USD", "NZD_USD", "USD_CAD", "USD_CHF"]


def assign(layout: dict[str, list[str]]) -> None:
    for name, symbols in layout.items():
        Pair.objects.filter(symbol__in=symbols).update(node=Node.objects.get(name=name))


def layout() -> dict[str, list[str]]:
    return {
        node.name: sorted(node.pairs.values_list("symbol", flat=True))
        for node in Node.objects.all()
    }


def three_nodes() -> None:
    for name in "abc":
        node_heartbeat(name=name)
    assign({"a": SYMBOLS[:2], "b": SYMBOLS[2:4], "c": SYMBOLS[4:]})


def test_a_heartbeat_creates_the_node_active_and_keeps_a_draining_node_draining() -> None:
    node = node_heartbeat(name="ams1")
    assert (node.state, node.queue) == (Node.State.ACTIVE, "exec.ams1")
    node_drain(name="ams1", actor="ops")
    assert node_heartbeat(name="ams1").state == Node.State.DRAINING


def test_a_node_name_that_is_not_a_slug_is_refused_with_its_value() -> None:
    with pytest.raises(ClusterError, match="'bad name'"):
        node_heartbeat(name="bad name")


def test_a_silent_node_goes_down_its_pairs_move_to_the_emptiest_healthy_nodes_and_alert() -> None:
    three_nodes()
    Pair.objects.filter(symbol="USD_CHF").update(node=None)  # c now has one pair, a two
    now = timezone.now()
    Node.objects.filter(name="b").update(last_heartbeat=now - timedelta(seconds=31))

    report = nodes_failover(now=now)

    assert report.down == ["b"]
    assert layout() == {
        "a": ["AUD_USD", "EUR_USD", "NZD_USD"],
        "b": [],
        "c": ["GBP_USD", "USD_CAD"],
    }
    assert Node.objects.get(name="b").state == Node.State.DOWN
    moves = AuditLog.objects.filter(action="pair.assign_node", actor="system:cluster")
    assert sorted((entry.target, entry.details["to"]) for entry in moves) == [
        ("GBP_USD", "c"),
        ("NZD_USD", "a"),
    ]
    alert = Alert.objects.get(condition="cluster.node_down.b", resolved_at__isnull=True)
    assert "GBP_USD to c" in alert.message and alert.severity == "critical"
    # Running it again changes nothing and raises nothing new.
    assert nodes_failover(now=now).moved == []

    node_heartbeat(name="b")

    assert Node.objects.get(name="b").state == Node.State.ACTIVE
    assert Alert.objects.get(condition="cluster.node_down.b").resolved_at is not None


def test_the_threshold_comes_from_the_cluster_node_silence_seconds_setting() -> None:
    three_nodes()
    now = timezone.now()
    Node.objects.filter(name="b").update(last_heartbeat=now - timedelta(seconds=20))
    assert nodes_failover(now=now).down == []
    config_set(key="cluster.node_silence_seconds", value=10)
    assert nodes_failover(now=now).down == ["b"]


def test_pairs_wait_on_a_down_node_until_a_healthy_node_exists() -> None:
    three_nodes()
    later = timezone.now() + timedelta(minutes=5)
    report = nodes_failover(now=later)
    assert sorted(report.down) == ["a", "b", "c"]
    assert sorted(report.stranded) == SYMBOLS
    assert "no healthy node" in Alert.objects.get(condition="cluster.node_down.a").message

    node_heartbeat(name="c", now=later)
    report = nodes_failover(now=later)

    assert sorted(pair for pair, _, _ in report.moved) == SYMBOLS[:4]
    assert layout()["c"] == SYMBOLS


def test_draining_a_node_moves_its_pairs_away_audited_under_the_operator() -> None:
    three_nodes()
    report = node_drain(name="a", actor="ops", address="10.0.0.9")
    assert sorted(target for _, _, target in report.moved) == ["b", "c"]
    assert layout()["a"] == []
    assert AuditLog.objects.filter(action="node.drain", actor="ops", target="a").exists()
    assert AuditLog.objects.filter(action="pair.assign_node", actor="ops").count() == 2
    # A draining node gets nothing from a rebalance, until it rejoins.
    assert nodes_rebalance(actor="ops").moved == []
    node_rejoin(name="a", actor="ops")
    report = nodes_rebalance(actor="ops")
    assert [len(symbols) for symbols in layout().values()] == [2, 2, 2]


def test_draining_an_unknown_node_names_it_and_the_known_ones() -> None:
    three_nodes()
    with pytest.raises(ClusterError, match=r"node=.zz. is not a known node \(known: a, b, c\)"):
        node_drain(name="zz", actor="ops")


def test_rebalance_spreads_pairs_but_leaves_pairs_with_an_open_trade_where_they_are() -> None:
    three_nodes()
    assign({"a": SYMBOLS})
    Trade.objects.create(
        pair_id="AUD_USD",
        account_id="acc",
        broker_trade_id="1",
        initial_units=Decimal("1000"),
        current_units=Decimal("1000"),
        open_price=Decimal("0.65"),
        opened_at=timezone.now(),
        state=Trade.State.OPEN,
    )

    report = nodes_rebalance(actor="ops")

    assert len(report.moved) == 4
    assert [len(symbols) for symbols in layout().values()] == [2, 2, 2]
    assert "AUD_USD" in layout()["a"]
    assert AuditLog.objects.filter(action="nodes.rebalance", actor="ops").exists()


def test_a_node_streamer_streams_only_the_enabled_pairs_assigned_to_its_node() -> None:
    three_nodes()
    Pair.objects.filter(symbol__in=SYMBOLS).update(enabled=True)
    streamer = Streamer(node="b")
    streamer._refresh_pairs()
    assert streamer.pairs == SYMBOLS[2:4]

    node_drain(name="b", actor="ops")
    streamer._refresh_pairs()

    assert streamer.pairs == []


def test_the_nodes_admin_drains_a_node_and_says_where_its_pairs_went(admin_client: Any) -> None:
    three_nodes()
    node = Node.objects.get(name="c")
    response = admin_client.post(
        "/admin/septrader/node/",
        {"action": "drain_nodes", "_selected_action": [node.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["c draining; moved: USD_CAD to a, USD_CHF to b."]
    assert layout()["c"] == []
    assert AuditLog.objects.filter(action="node.drain", actor="admin", target="c").exists()


def test_the_cluster_command_lists_nodes_and_drains_by_name() -> None:
    three_nodes()
    out = StringIO()
    call_command("cluster", "drain", "b", stdout=out)
    text = out.getvalue()
    assert "moved GBP_USD from b to a" in text
    assert "b                draining" in text
    with pytest.raises(CommandError, match="node='zz' is not a known node"):
        call_command("cluster", "drain", "zz", stdout=StringIO())


def test_run_node_refuses_a_name_that_is_not_a_slug() -> None:
    with pytest.raises(CommandError, match="--name='Bad Name' is not a node name"):
        call_command("run_node", "--name", "Bad Name")


# ----- a node per market -------------------------------------------------------------------------


def crypto_pairs() -> None:
    """BTC_USD and ETH_USD as ``instruments sync`` creates them (crypto CFDs)."""
    for symbol in ("BTC_USD", "ETH_USD"):
        Pair.objects.create(
            symbol=symbol,
            instrument_type=Pair.InstrumentType.CFD,
            pip_location=0,
            display_precision=1,
            trade_units_precision=2,
            minimum_trade_size=Decimal("0.01"),
        )


def fx_and_crypto_nodes() -> None:
    """Two FX droplets and one crypto droplet, each trading its own market."""
    crypto_pairs()
    for name in ("fx1", "fx2"):
        node_set_markets(name=name, markets=["CURRENCY"], actor="ops")
    node_set_markets(name="crypto", markets=["CFD"], actor="ops")
    assign({"fx1": ["EUR_USD", "GBP_USD"], "fx2": ["USD_JPY"], "crypto": ["BTC_USD", "ETH_USD"]})


def test_the_instrument_types_a_node_may_serve_are_the_pairs_instrument_types() -> None:
    assert set(NODE_MARKETS) == set(Pair.InstrumentType.values)


def test_a_crypto_node_down_strands_its_pairs_rather_than_handing_them_to_an_fx_node() -> None:
    fx_and_crypto_nodes()
    now = timezone.now()
    Node.objects.filter(name="crypto").update(last_heartbeat=now - timedelta(seconds=31))

    report = nodes_failover(now=now)

    assert report.down == ["crypto"]
    assert sorted(report.stranded) == ["BTC_USD", "ETH_USD"]
    assert layout()["crypto"] == ["BTC_USD", "ETH_USD"]
    assert "no healthy node for BTC_USD, ETH_USD" in (
        Alert.objects.get(condition="cluster.node_down.crypto").message
    )

    # A second crypto droplet takes them over
    node_set_markets(name="crypto2", markets=["CFD"], actor="ops")
    report = nodes_failover(now=timezone.now())

    assert sorted(pair for pair, _, _ in report.moved) == ["BTC_USD", "ETH_USD"]
    assert layout()["crypto2"] == ["BTC_USD", "ETH_USD"]


def test_an_fx_node_down_moves_its_pairs_to_the_other_fx_node_never_the_crypto_one() -> None:
    fx_and_crypto_nodes()
    now = timezone.now()
    Node.objects.filter(name="fx1").update(last_heartbeat=now - timedelta(seconds=31))

    nodes_failover(now=now)

    assert layout() == {
        "crypto": ["BTC_USD", "ETH_USD"],
        "fx1": [],
        "fx2": ["EUR_USD", "GBP_USD", "USD_JPY"],
    }


def test_rebalance_evens_each_market_over_its_own_nodes() -> None:
    fx_and_crypto_nodes()
    assign({"fx1": ["EUR_USD", "GBP_USD", "USD_JPY", "AUD_USD"]})
    Pair.objects.filter(symbol="ETH_USD").update(node=None)
    node_set_markets(name="any1", markets=[], actor="ops")

    nodes_rebalance(actor="ops")

    counts = {name: len(symbols) for name, symbols in layout().items()}
    # fx1 gave pairs to fx2 and to the node serving every market, never to the crypto node.
    assert layout()["crypto"] == ["BTC_USD"]
    assert sorted(counts.values()) == [1, 1, 1, 2]
    assert counts["fx1"] == 2


def test_assigning_a_pair_to_a_node_of_another_market_is_refused_naming_the_node() -> None:
    fx_and_crypto_nodes()

    with pytest.raises(Conflict, match="node='crypto' trades CFD only; EUR_USD is a CURRENCY"):
        pair_assign_node(symbol="EUR_USD", node_name="crypto", actor="ops")

    assert str(Pair.objects.get(symbol="EUR_USD").node) == "fx1"


def test_node_markets_are_validated_naming_the_field_and_audited() -> None:
    with pytest.raises(ClusterError, match=r"markets=\['CRYPTO'\] is not valid") as caught:
        node_set_markets(name="x", markets=["CRYPTO"], actor="ops")
    assert caught.value.field == "markets"

    node_set_markets(name="x", markets=["METAL", "CFD"], actor="ops")

    assert Node.objects.get(name="x").markets == ["METAL", "CFD"]
    entry = AuditLog.objects.get(action="node.markets")
    assert (entry.actor, entry.details) == ("ops", {"from": [], "to": ["METAL", "CFD"]})


def test_the_cluster_command_sets_and_shows_a_nodes_markets() -> None:
    node_heartbeat(name="crypto")
    out = StringIO()

    call_command("cluster", "markets", "crypto", "CFD", stdout=out)

    assert Node.objects.get(name="crypto").markets == ["CFD"]
    assert "crypto           active    CFD" in out.getvalue()
    call_command("cluster", "markets", "crypto", "any", stdout=StringIO())
    assert Node.objects.get(name="crypto").markets == []
    with pytest.raises(CommandError, match="markets"):
        call_command("cluster", "markets", "crypto", "FOREX", stdout=StringIO())
