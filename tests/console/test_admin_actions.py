"""The console's actions: each one does what it says, through the services, and is audited with
the operator's name and address."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from marketdata import oanda
from marketdata.models import Pair
from oandasim.client import SimulatorProcess
from septrader.models import AuditLog
from trading.models import Trade, TradingState

PAIRS_URL = "/admin/marketdata/pair/"


def run_action(client: Client, url: str, action: str, pks: list[Any]) -> str:
    response = client.post(
        url, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )
    assert response.status_code == 200
    return response.content.decode()


def pair(symbol: str) -> Pair:
    return Pair.objects.get(symbol=symbol)


@pytest.mark.django_db
def test_disabling_a_pair_in_the_console_stops_its_entries_and_audits_the_operator(
    operator_client: Client,
) -> None:
    # Given EUR/USD trading (forced on without a model)
    from trading.services import pair_enable

    pair_enable(symbol="EUR_USD", actor="setup", force=True)

    # When the operator disables it with the list action
    html = run_action(operator_client, PAIRS_URL, "disable_pairs", [pair("EUR_USD").pk])

    # Then it is disabled, the page says so, and the audit log names the operator and address
    eur_usd = pair("EUR_USD")
    assert (eur_usd.enabled, eur_usd.state) == (False, Pair.State.DISABLED)
    assert "EUR_USD: disabled" in html
    entry = AuditLog.objects.get(action="pair.disable", target="EUR_USD")
    assert (entry.actor, entry.address) == ("ops", "127.0.0.1")


@pytest.mark.django_db
def test_enabling_a_pair_without_a_promoted_model_is_refused_unless_forced(
    operator_client: Client,
) -> None:
    # Given GBP/USD with no pair model
    pk = pair("GBP_USD").pk

    # When the operator enables it plainly, the refusal is shown and nothing changes
    html = run_action(operator_client, PAIRS_URL, "enable_pairs", [pk])
    assert "GBP_USD has no promoted pair model" in html
    assert not pair("GBP_USD").enabled

    # When the operator uses the forced action, it trades, marked and audited as forced
    html = run_action(operator_client, PAIRS_URL, "enable_pairs_without_model", [pk])
    gbp_usd = pair("GBP_USD")
    assert (gbp_usd.enabled, gbp_usd.state, gbp_usd.forced_without_model) == (
        True,
        Pair.State.TRADING,
        True,
    )
    assert "GBP_USD: enabled without a pair model" in html
    entry = AuditLog.objects.get(action="pair.enable", target="GBP_USD")
    assert entry.details["forced"] is True and entry.actor == "ops"


@pytest.mark.django_db
def test_enabling_a_pair_with_a_promoted_model_needs_no_force(operator_client: Client) -> None:
    from tests.qfh.test_training import passing_model

    passing_model(pair_id="USD_JPY", promoted=True)

    run_action(operator_client, PAIRS_URL, "enable_pairs", [pair("USD_JPY").pk])

    usd_jpy = pair("USD_JPY")
    assert usd_jpy.enabled and not usd_jpy.forced_without_model


@pytest.mark.django_db
def test_flattening_a_pair_closes_its_open_trades_at_the_broker(
    operator_client: Client, simulator: SimulatorProcess
) -> None:
    # Given an open EUR/USD trade at the broker, recorded through the ledger
    from trading.execution import broker_client
    from trading.ledger import response_transactions_apply

    client = broker_client()
    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1000"}}
    response_transactions_apply(
        client.account_id, client.request(oanda.OrderCreate(client.account_id, order))
    )
    trade = Trade.objects.get(pair_id="EUR_USD")
    assert trade.state == Trade.State.OPEN

    # When the operator flattens EUR/USD
    html = run_action(operator_client, PAIRS_URL, "flatten_pairs", [pair("EUR_USD").pk])

    # Then the broker has no open trade, ours is closed, and the action is audited
    assert "EUR_USD: 1 trades closed" in html
    assert client.request(oanda.OpenTrades(client.account_id))["trades"] == []
    trade.refresh_from_db()
    assert trade.state == Trade.State.CLOSED and trade.close_price is not None
    entry = AuditLog.objects.get(action="trades.close_all", target="EUR_USD")
    assert (entry.actor, entry.address, entry.details["closed"]) == ("ops", "127.0.0.1", 1)


@pytest.mark.django_db
def test_flattening_without_a_reachable_broker_reports_the_error_instead_of_failing(
    operator_client: Client, settings: Any
) -> None:
    from trading import execution

    settings.OANDA_API_URL = "http://127.0.0.1:9"  # Nothing listens on the discard port.
    settings.OANDA_TOKEN, settings.OANDA_ACCOUNT_ID = "token", "101-001-0000000-009"
    execution._clients.__dict__.clear()
    try:
        html = run_action(operator_client, PAIRS_URL, "flatten_pairs", [pair("EUR_USD").pk])
    finally:
        execution._clients.__dict__.clear()

    assert "EUR_USD: the broker could not be reached" in html


@pytest.mark.django_db
def test_the_trading_mode_actions_switch_the_mode_and_audit_each_change(
    operator_client: Client,
) -> None:
    TradingState.objects.get_or_create(pk=1)
    url = "/admin/trading/tradingstate/"

    run_action(operator_client, url, "reduce_only", [1])
    assert TradingState.objects.get(pk=1).mode == TradingState.Mode.REDUCING

    run_action(operator_client, url, "resume_trading", [1])
    state = TradingState.objects.get(pk=1)
    assert (state.mode, state.changed_by) == (TradingState.Mode.TRADING, "ops")
    modes = list(
        AuditLog.objects.filter(action="trading.mode").order_by("id").values_list("target", "actor")
    )
    assert modes == [("reducing", "ops"), ("trading", "ops")]


@pytest.mark.django_db
def test_the_kill_switch_halts_trading_and_closes_trades_at_the_broker(
    operator_client: Client, simulator: SimulatorProcess
) -> None:
    from trading.execution import broker_client
    from trading.ledger import response_transactions_apply

    client = broker_client()
    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "-2000"}}
    response_transactions_apply(
        client.account_id, client.request(oanda.OrderCreate(client.account_id, order))
    )
    TradingState.objects.get_or_create(pk=1)

    html = run_action(operator_client, "/admin/trading/tradingstate/", "engage_kill_switch", [1])

    # (the admin capitalises the first letter of each message)
    assert "Halted: 0 orders cancelled, 1 trades closed" in html
    assert TradingState.objects.get(pk=1).mode == TradingState.Mode.HALTED
    assert not Trade.objects.filter(state=Trade.State.OPEN).exists()
    entry = AuditLog.objects.get(action="trading.kill_switch")
    assert (entry.actor, entry.address) == ("ops", "127.0.0.1")


@pytest.mark.django_db
def test_promoting_a_pair_model_in_the_console_checks_the_gates_and_audits(
    operator_client: Client, settings: Any
) -> None:
    from tests.qfh.test_training import passing_model

    url = "/admin/qfh/pairmodel/"
    good = passing_model()
    run_action(operator_client, url, "promote", [good.pk])
    good.refresh_from_db()
    assert good.promoted
    assert AuditLog.objects.get(action="pair_model.promote").actor == "ops"

    # A model the current gates refuse stays unpromoted, and the page lists the failed gate
    settings.QFH_PROMOTION_GATES = {"min_trades": 1000}
    weak = passing_model()
    html = run_action(operator_client, url, "promote", [weak.pk])
    weak.refresh_from_db()
    assert not weak.promoted
    assert "500 trades is fewer than 1000" in html
    assert AuditLog.objects.get(action="pair_model.promote_refused").address == "127.0.0.1"


@pytest.mark.django_db
def test_closing_a_trade_in_the_console_closes_it_at_the_broker(
    operator_client: Client, simulator: SimulatorProcess
) -> None:
    from trading.execution import broker_client
    from trading.ledger import response_transactions_apply

    client = broker_client()
    order = {"order": {"type": "MARKET", "instrument": "EUR_USD", "units": "1500"}}
    response_transactions_apply(
        client.account_id, client.request(oanda.OrderCreate(client.account_id, order))
    )
    trade = Trade.objects.get(pair_id="EUR_USD")

    run_action(operator_client, "/admin/trading/trade/", "close_trades", [trade.pk])

    trade.refresh_from_db()
    assert trade.state == Trade.State.CLOSED
    assert trade.current_units == Decimal(0)
    assert AuditLog.objects.get(action="trade.close").actor == "ops"


@pytest.mark.django_db
def test_acknowledging_alerts_in_the_console_keeps_them_unresolved_and_audits(
    operator_client: Client,
) -> None:
    from monitoring.models import Alert
    from monitoring.services import alert_raise

    alert_raise(condition="workers.missing:execution", severity="critical", message="No worker")
    alert = Alert.objects.get()

    html = run_action(operator_client, "/admin/monitoring/alert/", "acknowledge", [alert.pk])
    again = run_action(operator_client, "/admin/monitoring/alert/", "acknowledge", [alert.pk])

    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by, alert.resolved_at) == (
        Alert.State.ACKNOWLEDGED,
        "ops",
        None,
    )
    assert "1 alert(s) acknowledged" in html
    assert "0 alert(s) acknowledged; 1 already acknowledged or resolved" in again
    entry = AuditLog.objects.get(action="alert.acknowledge")
    assert (entry.actor, entry.address, entry.target) == ("ops", "127.0.0.1", alert.condition)


@pytest.mark.django_db
def test_the_pair_page_shows_each_gate_to_live_and_the_advance_action_checks_them(
    operator_client: Client, parity: Any
) -> None:
    from tests.trading.test_paper import PAPER_STARTS, plant_paper_record, promoted_model

    # Given EUR/USD enabled on its promoted model: it is on paper
    model = promoted_model()
    html = run_action(operator_client, PAIRS_URL, "enable_pairs", [pair("EUR_USD").pk])
    assert "EUR_USD: enabled on paper" in html
    Pair.objects.filter(symbol="EUR_USD").update(paper_started_at=PAPER_STARTS)

    # When the operator opens its page, each gate says whether it passes, with its figure
    page = operator_client.get(f"{PAIRS_URL}{pair('EUR_USD').pk}/change/").content.decode()
    assert "Paper stage before live" in page
    assert "No: 1 of 5 gates fail." in page
    assert 'class="gate gate-failed"' in page and "0 paper trades of the model closed" in page
    assert "unexplained signal mismatches in the parity reports since 2025-07-21" in page

    # Then the advance action refuses, naming the gate, until the paper record is in
    html = run_action(operator_client, PAIRS_URL, "advance_pairs", [pair("EUR_USD").pk])
    assert "EUR_USD: EUR_USD cannot advance to live: results: 0 paper trades" in html
    assert pair("EUR_USD").state == Pair.State.PAPER
    plant_paper_record(model, [15, -15] * 6 + [15] * 2)
    page = operator_client.get(f"{PAIRS_URL}{pair('EUR_USD').pk}/change/").content.decode()
    assert "Yes: every gate passes" in page
    html = run_action(operator_client, PAIRS_URL, "advance_pairs", [pair("EUR_USD").pk])
    assert "EUR_USD: advanced from paper to live" in html
    assert pair("EUR_USD").state == Pair.State.TRADING
    entry = AuditLog.objects.get(action="pair.advance", target="EUR_USD")
    assert (entry.actor, entry.address) == ("ops", "127.0.0.1")
