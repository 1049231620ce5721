"""Financing and margin closeout reach our records the way the broker posts them.

The simulator charges DAILY_FINANCING at the 17:00 New York rollover and closes the account out
when margin is exhausted (tests/oandasim/test_sim_financing_and_closeout.py holds it to the worked
examples); here the project's ledger and reconciliation take those transactions: the trade's
``financing``, the account snapshot's balance and financing, and a closeout recorded as a close
with its reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from marketdata import oanda
from monitoring.models import Alert
from monitoring.services import alerts_evaluate
from oandasim.client import SimulatorProcess
from septrader.models import AuditLog
from trading.ledger import response_transactions_apply
from trading.models import AccountSnapshot, Trade
from trading.reconciliation import account_reconcile

TOKEN = "trading-costs-token"
ACCOUNT = "101-001-0000000-011"


def _minutes(tmp_path: Path, steps: list[tuple[str, str]]) -> str:
    """A seed-format file of flat M1 candles, one (time, price) each."""
    rows = [{"time": t, "open": p, "high": p, "low": p, "close": p, "volume": 10} for t, p in steps]
    path = tmp_path / "EUR_USD.json"
    path.write_text(json.dumps(rows))
    return f"EUR_USD={path}"


SimulatorFactory = Callable[..., tuple[SimulatorProcess, oanda.OandaClient]]


@pytest.fixture
def costly_broker(settings: Any) -> Iterator[SimulatorFactory]:
    """Start a paused simulator with the given arguments and point the project at it."""
    started: list[SimulatorProcess] = []

    def start(*extra: str) -> tuple[SimulatorProcess, oanda.OandaClient]:
        simulator = SimulatorProcess(
            token=TOKEN,
            account=ACCOUNT,
            extra_args=[
                *("--start", "2025-07-24T09:00:00Z", "--paused", "--rate-limit", "0"),
                *("--spread-pips", "EUR_USD=0", *extra),
            ],
        )
        simulator.start()
        started.append(simulator)
        settings.OANDA_API_URL = simulator.base_url
        settings.OANDA_TOKEN = TOKEN
        settings.OANDA_ACCOUNT_ID = ACCOUNT
        config = oanda.OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)
        return simulator, oanda.OandaClient(config)

    yield start
    for simulator in started:
        simulator.stop()


def _buy(client: oanda.OandaClient, units: int) -> str:
    """A market buy sent as the executor sends one, its answer kept by the ledger."""
    order = {"type": "MARKET", "instrument": "EUR_USD", "units": str(units)}
    response = client.request(oanda.OrderCreate(ACCOUNT, data={"order": order}))
    response_transactions_apply(ACCOUNT, response)
    trade_id: str = response["orderFillTransaction"]["tradeOpened"]["tradeID"]
    return trade_id


def _clock(simulator: SimulatorProcess, payload: dict[str, Any]) -> None:
    requests.post(
        f"{simulator.base_url}/__sim/clock",
        json=payload,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()


def test_a_nights_financing_lands_on_the_trade_and_the_account(
    db: None, tmp_path: Path, costly_broker: SimulatorFactory
) -> None:
    # Given a long 10,000 EUR_USD at a flat 1.10000 with longRate -3% a year
    steps = [(f"2025-07-24T09:{m:02d}:00Z", "1.10000") for m in range(10)]
    simulator, client = costly_broker(
        "--data", _minutes(tmp_path, steps), "--financing", "EUR_USD=-0.0300:0.0100"
    )
    trade_id = _buy(client, 10_000)

    # When the night's rollover passes and we reconcile
    _clock(simulator, {"time": "2025-07-24T21:30:00Z"})
    report = account_reconcile(client=client)

    # Then the trade carries the broker's charge, 10,000 x 1.1 x -0.03 / 365 = -0.9041, applied
    # from the DAILY_FINANCING transaction (no correction was needed) and the balance holds it
    assert report is not None and report.differences == []
    trade = Trade.objects.get(broker_trade_id=trade_id)
    assert trade.financing == Decimal("-0.9041")
    snapshot = AccountSnapshot.objects.latest("id")
    assert snapshot.financing == Decimal("-0.9041")
    assert snapshot.balance == Decimal("99999.0959")


def test_a_margin_closeout_is_recorded_as_a_close_audited_once_and_alerted_for_a_day(
    db: None, tmp_path: Path, costly_broker: SimulatorFactory
) -> None:
    # Given 2,500 USD on a 2% margin account long 100,000 EUR_USD, and a 160 pip fall at 09:05
    steps = [(f"2025-07-24T09:{m:02d}:00Z", "1.10000" if m < 5 else "1.08400") for m in range(10)]
    simulator, client = costly_broker("--data", _minutes(tmp_path, steps), "--balance", "2500")
    trade_id = _buy(client, 100_000)

    # When the price falls below the closeout level and we reconcile, twice (the second pass
    # finds the closeout's fill already applied)
    _clock(simulator, {"advance": 360})
    report = account_reconcile(client=client)
    account_reconcile(client=client)

    # Then the trade is closed with the broker's loss and the closeout's reason
    assert report is not None
    trade = Trade.objects.get(broker_trade_id=trade_id)
    assert trade.state == Trade.State.CLOSED
    assert trade.close_reason == "MARKET_ORDER_MARGIN_CLOSEOUT"
    assert trade.realized_pl == Decimal("-1600.0000")
    assert trade.close_price == Decimal("1.08400")
    snapshot = AccountSnapshot.objects.latest("id")
    assert (snapshot.balance, snapshot.open_trade_count) == (Decimal("900.0000"), 0)

    # And the close is audited once, as the broker's, with its loss
    entries = list(AuditLog.objects.filter(action="trade.margin_closeout"))
    assert [(entry.actor, entry.target) for entry in entries] == [
        ("system:broker", f"EUR_USD trade {trade_id}")
    ]
    assert entries[0].details["realized_pl"] == "-1600.0000"
    assert entries[0].details["state"] == Trade.State.CLOSED

    # And the alert evaluation raises a critical alert naming the trade and the loss
    assert "trades.margin_closeout" in alerts_evaluate().raised
    alert = Alert.objects.get(condition="trades.margin_closeout", resolved_at__isnull=True)
    assert alert.severity == "critical"
    assert f"EUR_USD trade {trade_id}" in alert.message
    assert "realised -1600.0000" in alert.message

    # When the window (a day by default) has passed, the alert resolves
    AuditLog.objects.filter(action="trade.margin_closeout").update(
        time=entries[0].time - timedelta(minutes=1441)
    )
    assert "trades.margin_closeout" in alerts_evaluate().resolved
