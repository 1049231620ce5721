"""What the console's live pages poll: the dashboard's panels, the lists' tables and the chart's
JSON. Each is staff only (a signed-out poll gets 403, not the login form) and the chart's JSON
answers a bad parameter with 400 naming it. The pages in a browser: test_live_browser.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from marketdata.models import Pair
from marketdata.services import candles_ingest
from tests.console.conftest import CHART_END, minute_candles
from trading.models import Trade, TradingSignal


@pytest.fixture
def eur_usd_window(db: Any, timescaledb: None) -> Pair:
    """Two hours of EUR/USD minutes ending at CHART_END, a signal, and an open trade with its
    stop loss and take profit."""
    candles_ingest(
        candles=minute_candles(CHART_END - timedelta(hours=2), 120), pair="EUR_USD", timeframe="M1"
    )
    TradingSignal.objects.create(
        time=CHART_END - timedelta(minutes=30), pair_id="EUR_USD", direction="BUY", confidence=0.8
    )
    Trade.objects.create(
        account_id="acct",
        broker_trade_id="601",
        pair_id="EUR_USD",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.1002"),
        opened_at=CHART_END - timedelta(minutes=29),
        stop_loss_price=Decimal("1.0990"),
        take_profit_price=Decimal("1.1020"),
        state=Trade.State.OPEN,
    )
    return Pair.objects.get(symbol="EUR_USD")


def data_url(pair: Pair, query: str = "") -> str:
    return f"/admin/marketdata/pair/{pair.pk}/chart/data/{query}"


@pytest.mark.django_db
def test_the_chart_data_holds_the_windows_candles_signals_trades_and_price_lines(
    operator_client: Client, eur_usd_window: Pair
) -> None:
    # When the chart asks for the default window of the pair's M1 candles
    response = operator_client.get(data_url(eur_usd_window, "?timeframe=M1&hours=1"))

    # Then it gets the last hour, times in epoch seconds, the trade with its SL/TP
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    data = response.json()
    assert (data["pair"], data["timeframe"], data["digits"]) == ("EUR_USD", "M1", 5)
    assert len(data["candles"]) == 60
    assert data["candles"][-1]["time"] == int((CHART_END - timedelta(minutes=1)).timestamp())
    assert set(data["candles"][0]) >= {"open", "high", "low", "close", "volume"}
    assert [signal["direction"] for signal in data["signals"]] == ["BUY"]
    (trade,) = data["trades"]
    assert (trade["id"], trade["stop_loss"], trade["take_profit"]) == ("601", 1.099, 1.102)
    assert trade["closed_at"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?timeframe=M2", "timeframe"),
        ("?hours=0", "hours"),
        ("?hours=lots", "hours"),
        ("?timeframe=M1&hours=100", "hours"),
        ("?end=yesterday", "end"),
    ],
)
def test_the_chart_data_answers_a_bad_parameter_with_400_naming_it(
    operator_client: Client, eur_usd_window: Pair, query: str, field: str
) -> None:
    response = operator_client.get(data_url(eur_usd_window, query))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"].startswith(f"{field}=")


@pytest.mark.django_db
def test_the_lists_under_the_chart_are_served_alone_and_refuse_a_bad_window(
    operator_client: Client, eur_usd_window: Pair
) -> None:
    lists = f"/admin/marketdata/pair/{eur_usd_window.pk}/chart/lists/"

    fragment = operator_client.get(lists + "?timeframe=M1&hours=1", HTTP_HX_REQUEST="true")
    bad = operator_client.get(lists + "?timeframe=D", HTTP_HX_REQUEST="true")

    page = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in page
    assert "Signals in the window (1)" in page and "Trades in the window (1)" in page
    assert "1.10020" in page and "(open)" in page
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "timeframe"


@pytest.mark.django_db
def test_the_chart_data_of_an_unknown_pair_is_404(operator_client: Client) -> None:
    assert operator_client.get("/admin/marketdata/pair/NOPE_NOPE/chart/data/").status_code == 404


@pytest.mark.django_db
def test_the_polled_views_answer_a_signed_out_or_non_staff_poll_with_403(
    eur_usd_window: Pair,
) -> None:
    # Given a signed-out browser and a signed-in user who is not staff
    member = Client()
    member.force_login(User.objects.create_user("member", password="pw-member"))
    for client in (Client(), member):
        lists = f"/admin/marketdata/pair/{eur_usd_window.pk}/chart/lists/"
        for address in (data_url(eur_usd_window), lists, "/admin/live/dashboard/"):
            # When it polls, it is refused, not redirected to the login form
            response = client.get(address, HTTP_HX_REQUEST="true")
            assert response.status_code == 403, address
            assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_the_dashboard_panels_are_served_alone_for_the_open_dashboard_to_swap_in(
    operator_client: Client, eur_usd_window: Pair
) -> None:
    # When the open dashboard polls for its panels
    response = operator_client.get("/admin/live/dashboard/", HTTP_HX_REQUEST="true")

    # Then it gets the panels with the new signal and the open trade, and not a whole page
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="panel-signals"' in page and 'id="panel-open-trades"' in page
    assert "BUY" in page and "1.10020" in page
    assert "<html" not in page and 'id="live-status"' not in page


@pytest.mark.django_db
def test_the_dashboard_page_polls_its_panels_and_says_when_it_updated(
    operator_client: Client,
) -> None:
    page = operator_client.get("/admin/").content.decode()

    assert 'hx-get="/admin/live/dashboard/"' in page
    assert 'hx-trigger="every 5s"' in page
    assert 'id="live-status"' in page and "Live: updated" in page
    assert "console/vendor/htmx-2.0.11/htmx.min.js" in page


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["tradingsignal", "order", "trade"])
def test_the_signal_order_and_trade_lists_poll_their_own_address_for_the_table_alone(
    operator_client: Client, eur_usd_window: Pair, model: str
) -> None:
    address = f"/admin/trading/{model}/?pair__symbol__exact=EUR_USD"

    # The page polls its own address, filters kept and the form's fields left out
    page = operator_client.get(address).content.decode()
    assert f'hx-get="{address.replace("&", "&amp;")}"' in page
    assert 'hx-params="none"' in page and 'id="live-status"' in page

    # ... and the poll gets the result table alone
    fragment = operator_client.get(address, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and 'id="changelist-form"' not in fragment
    if model != "order":
        assert 'id="result_list"' in fragment


@pytest.mark.django_db
def test_the_chart_page_points_its_interactive_chart_at_the_same_window(
    operator_client: Client, eur_usd_window: Pair
) -> None:
    end = datetime(2025, 7, 25, 20, 0, tzinfo=UTC)
    base = f"/admin/marketdata/pair/{eur_usd_window.pk}/chart/"

    following = operator_client.get(base + "?timeframe=M5&hours=2").content.decode()
    fixed = operator_client.get(base + "?timeframe=M1&hours=1&end=2025-07-25T20:00Z")

    # A window without an end follows the newest candles; a fixed one does not poll
    assert f'data-url="{base}data/?timeframe=M5&amp;hours=2"' in following
    assert 'data-follow="true"' in following
    assert f'hx-get="{base}lists/?timeframe=M5&amp;hours=2"' in following
    assert "lightweight-charts-5.3.0/lightweight-charts.standalone.production.js" in following
    fixed_page = fixed.content.decode()
    assert 'data-follow=""' in fixed_page and 'hx-get="' + base not in fixed_page
    assert "end=" + end.isoformat().replace("+", "%2B").replace(":", "%3A") in fixed_page
    # And the server-drawn chart is in the page as the fallback
    assert 'id="chart-fallback"' in fixed_page and "<svg" in fixed_page
