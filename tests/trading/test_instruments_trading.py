"""Gold and bitcoin traded end to end against the simulator: sized from the instrument's own pip,
price and margin, stopped at their own distances, settled in the account currency.

The pairs are created the way an operator creates them (``instruments sync`` from the broker's
account instruments), given their own spread limit and stops (a pair's FX defaults would put a
15-cent stop on gold), enabled, and their signals run through the real executor; the broker's
stop-loss fill reaches our records through reconciliation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from marketdata import oanda
from marketdata.models import Pair
from marketdata.services import instruments_sync
from oandasim.client import SimulatorProcess
from septrader.services import config_set
from tests.conftest import SEED_CANDLES
from tests.trading.conftest import make_signal
from trading import execution
from trading.execution import signal_execute
from trading.models import Order, Trade
from trading.reconciliation import account_reconcile
from trading.services import pair_enable, pair_set_risk_overrides

pytestmark = pytest.mark.django_db

TOKEN = "instruments-test-token"
ACCOUNT = "101-001-0000000-022"
THURSDAY = "2025-07-24T09:00:00Z"
# A Saturday: FX is closed for the weekend, crypto trades (synthetic prices).
SATURDAY = "2026-01-10T12:00:00Z"

Started = tuple[SimulatorProcess, oanda.OandaClient]


def flat_minutes(tmp_path: Path, pair: str, steps: list[tuple[str, str]]) -> str:
    rows = [{"time": t, "open": p, "high": p, "low": p, "close": p, "volume": 10} for t, p in steps]
    path = tmp_path / f"{pair}.json"
    path.write_text(json.dumps(rows))
    return f"{pair}={path}"


@pytest.fixture
def start_broker(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Started]]:
    """A paused simulator with the given arguments; the project (and its executor) pointed at it."""
    started: list[SimulatorProcess] = []

    def start(*extra: str, at: str = THURSDAY) -> Started:
        simulator = SimulatorProcess(
            token=TOKEN,
            account=ACCOUNT,
            extra_args=[
                *("--data", f"EUR_USD={SEED_CANDLES}", "--start", at, "--paused"),
                *("--rate-limit", "0", *extra),
            ],
        )
        simulator.start()
        started.append(simulator)
        for name, value in (
            ("OANDA_API_URL", simulator.base_url),
            ("OANDA_STREAM_URL", simulator.base_url),
            ("OANDA_TOKEN", TOKEN),
            ("OANDA_ACCOUNT_ID", ACCOUNT),
        ):
            setattr(settings, name, value)
            monkeypatch.setenv(name, value)
        execution._clients.__dict__.clear()
        config = oanda.OandaConfig(token=TOKEN, account_id=ACCOUNT, api_url=simulator.base_url)
        return simulator, oanda.OandaClient(config)

    yield start
    execution._clients.__dict__.clear()
    for simulator in started:
        simulator.stop()


def advance(simulator: SimulatorProcess, seconds: float) -> None:
    requests.post(
        f"{simulator.base_url}/__sim/clock",
        json={"advance": seconds},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).raise_for_status()


def listed(client: oanda.OandaClient, symbol: str) -> dict[str, Any]:
    (instrument,) = [i for i in client.account_instruments() if i["name"] == symbol]
    return instrument


def ready_to_trade(client: oanda.OandaClient, symbol: str, **overrides: str) -> Pair:
    """The pair as ``instruments sync`` creates it, with its own limits, enabled (no model)."""
    instruments_sync(client=client, actor="test")
    pair_set_risk_overrides(symbol=symbol, overrides=overrides, actor="test")
    pair_enable(symbol=symbol, actor="test", force=True)
    return Pair.objects.get(symbol=symbol)


def nav(client: oanda.OandaClient) -> Decimal:
    return Decimal(client.request(oanda.AccountSummary(ACCOUNT))["account"]["NAV"])


def test_gold_is_sized_from_its_own_pip_stopped_at_its_own_distance_and_settled_in_usd(
    tmp_path: Path, start_broker: Callable[..., Started]
) -> None:
    # Given gold flat at 2,400.000 with a 30-pip (30-cent) spread, falling to 2,394.000 at 09:06
    steps = [(f"2025-07-24T08:{m:02d}:00Z", "2400.000") for m in range(40, 60)]
    steps += [(f"2025-07-24T09:{m:02d}:00Z", "2400.000") for m in range(6)]
    steps += [(f"2025-07-24T09:{m:02d}:00Z", "2394.000") for m in range(6, 20)]
    simulator, client = start_broker(
        "--data", flat_minutes(tmp_path, "XAU_USD", steps), "--spread-pips", "XAU_USD=30"
    )
    broker_figures = listed(client, "XAU_USD")
    pair = ready_to_trade(
        client, "XAU_USD", max_spread_pips="50", stop_loss_pips="500", take_profit_pips="0"
    )
    assert (pair.instrument_type, pair.pip_location) == ("METAL", -2)
    assert pair.margin_rate == Decimal(broker_figures["marginRate"])
    balance = nav(client)

    # When its BUY signal is executed
    outcome = signal_execute(signal_id=make_signal(pair="XAU_USD", price=Decimal("2400")).pk)

    # Then 0.5% of NAV is risked on a 500-pip stop of 0.01 dollars: 500 / 5.00 = 100 ounces,
    # bought at the ask with the stop 5 dollars below it, on the broker's 5% margin
    assert outcome.status == "executed", outcome.reason
    order = Order.objects.get(pair_id="XAU_USD")
    expected_units = (balance * Decimal("0.005") / Decimal("5.00")).quantize(
        Decimal(1), rounding=ROUND_DOWN
    )
    assert order.units == expected_units == 100
    assert order.fill_price == Decimal("2400.150")
    assert order.stop_loss_price == Decimal("2395.150")
    (held,) = client.request(oanda.OpenTrades(ACCOUNT))["trades"]
    assert held["stopLossOrder"]["price"] == "2395.150"
    assert Decimal(held["marginUsed"]) == Decimal("100") * Decimal("2400.000") * Decimal("0.05")

    # When gold falls through the stop and the account is reconciled
    advance(simulator, 7 * 60)
    account_reconcile(client=client)

    # Then the trade closed at the broker's stop fill (the bid, 2,393.850: the price gapped
    # through the stop) and its P&L is 100 x (2,393.850 - 2,400.150) dollars
    trade = Trade.objects.get(pair_id="XAU_USD")
    assert trade.state == Trade.State.CLOSED
    assert trade.close_reason == "STOP_LOSS_ORDER"
    assert trade.close_price == Decimal("2393.850")
    assert trade.realized_pl == Decimal("-630.0000")
    assert nav(client) == balance - Decimal("630.0000")


def test_bitcoin_is_sized_in_fractions_of_a_coin_and_settled_in_usd(
    tmp_path: Path, start_broker: Callable[..., Started]
) -> None:
    # Given bitcoin flat at 60,000.0 with a 40-pip (40-dollar) spread, rising to 60,950.0 at 09:06
    steps = [(f"2025-07-24T08:{m:02d}:00Z", "60000.0") for m in range(40, 60)]
    steps += [(f"2025-07-24T09:{m:02d}:00Z", "60000.0") for m in range(6)]
    steps += [(f"2025-07-24T09:{m:02d}:00Z", "60950.0") for m in range(6, 20)]
    simulator, client = start_broker(
        "--data", flat_minutes(tmp_path, "BTC_USD", steps), "--spread-pips", "BTC_USD=40"
    )
    ready_to_trade(
        client, "BTC_USD", max_spread_pips="60", stop_loss_pips="300", take_profit_pips="900"
    )
    balance = nav(client)

    # When its BUY signal is executed
    outcome = signal_execute(signal_id=make_signal(pair="BTC_USD", price=Decimal("60000")).pk)

    # Then 0.5% of NAV on a 300-dollar stop is 1.66 coins (two decimals, rounded down), with the
    # stop 300 and the target 900 dollars from the ask
    assert outcome.status == "executed", outcome.reason
    order = Order.objects.get(pair_id="BTC_USD")
    expected_units = (balance * Decimal("0.005") / Decimal(300)).quantize(
        Decimal("0.01"), rounding=ROUND_DOWN
    )
    assert order.units == expected_units == Decimal("1.66")
    assert order.fill_price == Decimal("60020.0")
    assert (order.stop_loss_price, order.take_profit_price) == (
        Decimal("59720.0"),
        Decimal("60920.0"),
    )

    # When the price jumps through the target and the account is reconciled
    advance(simulator, 7 * 60)
    account_reconcile(client=client)

    # Then it closed at the take-profit's fill (the bid, 60,930.0) for 1.66 x 910 dollars
    trade = Trade.objects.get(pair_id="BTC_USD")
    assert (trade.state, trade.close_reason) == (Trade.State.CLOSED, "TAKE_PROFIT_ORDER")
    assert trade.close_price == Decimal("60930.0")
    assert trade.realized_pl == Decimal("1510.6000")


def test_bitcoin_trades_on_a_saturday_while_eur_usd_is_refused_as_market_closed(
    start_broker: Callable[..., Started],
) -> None:
    # Given the broker's clock on a Saturday, both pairs enabled
    _, client = start_broker(at=SATURDAY)
    config_set(key="signals.max_age_seconds", value=3600)
    ready_to_trade(
        client, "BTC_USD", max_spread_pips="100", stop_loss_pips="600", take_profit_pips="0"
    )
    pair_enable(symbol="EUR_USD", actor="test", force=True)

    # When a signal of each arrives
    bitcoin = signal_execute(
        signal_id=make_signal(pair="BTC_USD", minute="2026-01-10T11:59:00Z").pk
    )
    euro = signal_execute(signal_id=make_signal(pair="EUR_USD", minute="2026-01-10T11:59:00Z").pk)

    # Then bitcoin is bought and the euro is refused because its market is closed
    assert bitcoin.status == "executed", bitcoin.reason
    assert euro.status == "rejected"
    assert euro.reason.startswith("market closed")
    (held,) = client.request(oanda.OpenTrades(ACCOUNT))["trades"]
    assert held["instrument"] == "BTC_USD"
    assert Decimal(held["currentUnits"]) > 0
