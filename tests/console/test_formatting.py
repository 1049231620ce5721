"""How the console writes numbers: confidences and metrics to four significant digits, prices to
the pair's display precision, money to two decimals in the account currency."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client

from marketdata.services import candles_ingest
from qfh.models import CandleMetrics
from tests.console.conftest import CHART_END, minute_candles
from trading.models import AccountSnapshot, Trade, TradingSignal

CONFIDENCE = 0.6656631189195747


def rendered(text: str, **context: Any) -> str:
    return Template("{% load console %}" + text).render(Context(context))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (CONFIDENCE, "0.6657"),
        (12.3456, "12.35"),
        (9.99996, "10.00"),
        (0.000123456, "0.0001235"),
        (123456.7, "123457"),
        (-0.98765, "-0.9877"),
        (0, "0"),
        (None, "-"),
    ],
)
def test_a_confidence_or_metric_shows_four_significant_digits(value: Any, shown: str) -> None:
    assert rendered("{{ value|significant }}", value=value) == shown


def test_fewer_significant_digits_can_be_asked_for() -> None:
    assert rendered("{{ value|significant:3 }}", value=CONFIDENCE) == "0.666"


@pytest.mark.parametrize(
    ("value", "precision", "shown"),
    [
        (Decimal("1.172345"), 5, "1.17235"),
        (Decimal("1.17"), 5, "1.17000"),
        (Decimal("147.123456"), 3, "147.123"),
        (None, 5, "-"),
    ],
)
def test_a_price_shows_the_pairs_display_precision(
    value: Decimal | None, precision: int, shown: str
) -> None:
    assert rendered("{{ value|price:precision }}", value=value, precision=precision) == shown


@pytest.mark.parametrize(
    ("template", "value", "shown"),
    [
        ("{{ value|money:'USD' }}", Decimal("100012.5"), "100,012.50 USD"),
        ("{{ value|money }}", Decimal("-1234.565"), "-1,234.57"),
        ("{{ value|signed }}", Decimal("12.3456"), "+12.35"),
        ("{{ value|signed }}", Decimal("-3.1"), "-3.10"),
        ("{{ value|money:'EUR' }}", None, "-"),
    ],
)
def test_money_shows_two_decimals_and_its_currency(
    template: str, value: Decimal | None, shown: str
) -> None:
    assert rendered(template, value=value) == shown


@pytest.mark.django_db
def test_the_chart_page_shows_a_confidence_to_four_digits_and_prices_to_the_pairs_precision(
    operator_client: Client,
) -> None:
    # Given a pair's minutes with a signal and a closed trade in them
    candles_ingest(
        candles=minute_candles(CHART_END - timedelta(hours=1), 60), pair="EUR_USD", timeframe="M1"
    )
    TradingSignal.objects.create(
        time=CHART_END - timedelta(minutes=30),
        pair_id="EUR_USD",
        direction="BUY",
        confidence=CONFIDENCE,
        price=Decimal("1.1"),
    )
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="701",
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(0),
        open_price=Decimal("1.1"),
        opened_at=CHART_END - timedelta(minutes=29),
        close_price=Decimal("1.100456"),
        closed_at=CHART_END - timedelta(minutes=10),
        state=Trade.State.CLOSED,
        realized_pl=Decimal("0.456"),
    )

    # When the operator opens its chart
    html = operator_client.get("/admin/marketdata/pair/EUR_USD/chart/").content.decode()

    # Then the signal's confidence reads 0.6657, in the table and under the marker
    assert "<td>0.6657</td>" in html
    assert "confidence 0.6657 (new)" in html
    assert "0.66566" not in html
    # ... and the trade's prices 5 decimals, its P&L 2
    assert "at 1.10000" in html and "at 1.10046" in html
    assert "+0.46" in html


@pytest.mark.django_db
def test_the_consoles_lists_show_confidences_metrics_prices_and_money_formatted(
    operator_client: Client,
) -> None:
    # Given a signal, a trade, an account snapshot and QFH metrics with raw figures
    TradingSignal.objects.create(
        time=CHART_END, pair_id="USD_JPY", direction="SELL", confidence=CONFIDENCE
    )
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="702",
        pair_id="USD_JPY",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("147.123456"),
        opened_at=CHART_END,
        unrealized_pl=Decimal("-3.1234"),
    )
    AccountSnapshot.objects.create(
        account_id="acct",
        time=CHART_END,
        currency="USD",
        balance=Decimal("100000.1234"),
        nav=Decimal("99996.9999"),
        unrealized_pl=Decimal("-3.1234"),
        margin_used=Decimal("49.0456"),
        margin_available=Decimal("99947.9543"),
    )
    CandleMetrics.objects.create(
        time=CHART_END,
        pair_id="EUR_USD",
        timeframe="M1",
        params_version="v1",
        window_bits=64,
        null_count=0,
        flip_count=10,
        rupture_count=5,
        entropy=0.912345678,
        coherence=0.123456789,
        base_coherence=0.1,
        rupture_ratio=0.333333333,
        flip_ratio=0.2,
        damped_value=0.0,
        decay=0.1,
        collapse=False,
        trajectory_confidence=0.87654321,
    )

    # When the operator opens the lists
    def page(path: str) -> str:
        return re.sub(r"\s+", " ", operator_client.get(path).content.decode())

    signals = page("/admin/trading/tradingsignal/")
    trades = page("/admin/trading/trade/")
    snapshots = page("/admin/trading/accountsnapshot/")
    metrics = page("/admin/qfh/candlemetrics/")

    # Then each number is written the console's way
    assert ">0.6657<" in signals and "0.66566" not in signals
    assert ">147.123<" in trades and ">-3.12<" in trades
    # (99,996.9999 rounds half up to 99,997.00)
    assert ">99,997.00 USD<" in snapshots and ">100,000.12 USD<" in snapshots
    assert ">49.05<" in snapshots
    assert ">0.1235<" in metrics and ">0.3333<" in metrics and ">0.8765<" in metrics
