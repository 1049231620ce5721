"""What the endpoints answer: shapes, filters, errors in one format, and the audit trail of
every control action (with the user and the address)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from marketdata.models import Pair
from septrader.models import AuditLog, SystemConfig
from trading.models import Trade, TradingSignal, TradingState

pytestmark = pytest.mark.django_db

ADDRESS = "192.0.2.10"
BASE = datetime(2025, 7, 24, 9, 0, tzinfo=UTC)


def audit(action: str) -> AuditLog:
    return AuditLog.objects.filter(action=action).latest("id")


def signal(pair: str, minutes_ago: int, direction: str = "BUY", **extra: Any) -> TradingSignal:
    return TradingSignal.objects.create(
        time=BASE - timedelta(minutes=minutes_ago),
        pair_id=pair,
        direction=direction,
        confidence=0.7,
        **extra,
    )


# ----- status ------------------------------------------------------------------------------------


def test_status_names_the_role_mode_market_and_counts(operator: APIClient) -> None:
    body = operator.get("/api/status").json()
    assert body["role"] == "operator"
    assert body["trading_mode"] == "trading"
    assert set(body["market"]) == {"open", "reason", "next_change", "summary"}
    assert body["counts"]["pairs"] == Pair.objects.count()


def test_pairs_status_lists_every_pair_with_its_last_signal_and_price_age(
    operator: APIClient,
) -> None:
    from django.core.cache import cache

    from marketdata.cache_keys import latest_price_key

    signal("EUR_USD", 5, "SELL")
    newest = signal("EUR_USD", 1, "BUY")
    seen = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
    cache.set(latest_price_key("EUR_USD"), {"bid": "1.1", "ask": "1.1001", "time": seen})
    body = operator.get("/api/pairs/status").json()
    assert body["count"] == Pair.objects.count()
    eur = next(row for row in body["pairs"] if row["pair"] == "EUR_USD")
    assert eur["last_signal"]["id"] == str(newest.id)
    assert 2 < eur["last_price_age_seconds"] < 30
    assert eur["open_position"] is None


def test_pairs_active_lists_only_enabled_pairs(operator: APIClient) -> None:
    Pair.objects.filter(symbol="GBP_USD").update(enabled=True, state="trading")
    body = operator.get("/api/pairs/active").json()
    assert [row["pair"] for row in body["pairs"]] == ["GBP_USD"]


# ----- pair control ------------------------------------------------------------------------------


def test_enabling_a_pair_without_a_model_needs_force_and_is_audited(operator: APIClient) -> None:
    refused = operator.post("/api/pairs/EUR_USD/enable", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "force"
    response = operator.post(
        "/api/pairs/EUR_USD/enable", {"force": True}, format="json", REMOTE_ADDR=ADDRESS
    )
    assert response.status_code == 200
    assert response.json()["state"] == "trading"
    entry = audit("pair.enable")
    assert (entry.actor, entry.address, entry.target) == ("operator-user", ADDRESS, "EUR_USD")


def test_a_metal_or_crypto_pair_is_enabled_only_with_its_own_spread_limit_and_stops(
    operator: APIClient, as_role: Callable[[str | None], APIClient]
) -> None:
    # Synced from the broker as gold: the FX defaults (in FX pips) would size and stop it wrongly
    Pair.objects.filter(symbol="EUR_USD").update(
        instrument_type=Pair.InstrumentType.METAL, pip_location=-2
    )
    refused = operator.post("/api/pairs/EUR_USD/enable", {"force": True}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["field"] == "risk_overrides"
    message = refused.json()["error"]["message"]
    assert "EUR_USD is a METAL instrument whose pip is 0.01" in message
    assert "max_spread_pips, stop_loss_pips, take_profit_pips" in message
    assert not Pair.objects.get(symbol="EUR_USD").enabled

    overrides = {"max_spread_pips": "60", "stop_loss_pips": "500", "take_profit_pips": "0"}
    response = as_role("admin").patch(
        "/api/pairs/EUR_USD", {"risk_overrides": overrides}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert (
        operator.post("/api/pairs/EUR_USD/enable", {"force": True}, format="json").status_code
        == 200
    )
    assert Pair.objects.get(symbol="EUR_USD").enabled


def test_a_stop_override_out_of_range_is_a_400_naming_it(
    as_role: Callable[[str | None], APIClient],
) -> None:
    response = as_role("admin").patch(
        "/api/pairs/EUR_USD", {"risk_overrides": {"stop_loss_pips": "-3"}}, format="json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "risk_overrides.stop_loss_pips"
    assert "risk_overrides.stop_loss_pips='-3' is not valid" in error["message"]
    assert Pair.objects.get(symbol="EUR_USD").risk_overrides == {}


def test_disabling_a_pair_is_audited_with_the_reason(operator: APIClient) -> None:
    response = operator.post(
        "/api/pairs/EUR_USD/disable", {"reason": "news"}, format="json", REMOTE_ADDR=ADDRESS
    )
    assert response.json()["enabled"] is False
    assert audit("pair.disable").details["reason"] == "news"


def test_an_unknown_pair_is_a_404_and_a_malformed_one_too(operator: APIClient) -> None:
    response = operator.post("/api/pairs/XXX_YYY/enable", {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "pair"
    malformed = operator.post("/api/pairs/eurusd/enable", {}, format="json")
    assert malformed.status_code == 404
    assert malformed.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("EUR-USD", "pair='EUR-USD' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("xau_usd", "pair='xau_usd' does not match ^[A-Z0-9]+_[A-Z0-9]+$"),
        ("NAS100_USD", "pair='NAS100_USD' has 10 characters; expected at most 7"),
        ("X" * 300 + "_USD", "pair='XXXXXXXX"),
    ],
)
def test_a_pair_symbol_outside_oandas_names_is_a_400_naming_the_field_value_and_pattern(
    operator: APIClient, symbol: str, message: str
) -> None:
    response = operator.get("/api/signals", {"pair": symbol})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["field"], error["code"]) == ("pair", "invalid")
    assert message in error["message"]


def test_a_pair_path_in_oandas_shape_that_no_pair_has_is_a_404(operator: APIClient) -> None:
    # DE30_EUR has OANDA's shape but more characters than a symbol holds: no pair, not a 500.
    for symbol in ("DE30_EUR", "BTC_USD", "X" * 300 + "_USD"):
        response = operator.post(f"/api/pairs/{symbol}/enable", {}, format="json")
        assert response.status_code == 404, response.content
        assert response.json()["error"]["field"] == "pair"


def test_risk_overrides_need_the_admin_role_and_are_validated(
    as_role: Callable[[str | None], APIClient],
) -> None:
    body = {"risk_overrides": {"max_open_trades": 2}}
    assert as_role("operator").patch("/api/pairs/EUR_USD", body, format="json").status_code == 403
    admin = as_role("admin")
    assert admin.patch("/api/pairs/EUR_USD", body, format="json").json()["risk_overrides"] == {
        "max_open_trades": 2
    }
    bad = admin.patch(
        "/api/pairs/EUR_USD", {"risk_overrides": {"max_open_trades": -1}}, format="json"
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "risk_overrides.max_open_trades"


# ----- trading mode ------------------------------------------------------------------------------


def test_stop_and_start_switch_the_mode_and_are_audited(operator: APIClient) -> None:
    stopped = operator.post("/api/trading/stop", {"reason": "FOMC"}, format="json")
    assert stopped.json()["mode"] == "reducing"
    assert TradingState.objects.get().reason == "FOMC"
    operator.post("/api/trading/start", {}, format="json", REMOTE_ADDR=ADDRESS)
    assert TradingState.objects.get().mode == "trading"
    entries = AuditLog.objects.filter(action="trading.mode").order_by("id")
    assert [e.target for e in entries] == ["reducing", "trading"]
    last = entries.last()
    assert last is not None and last.address == ADDRESS


def test_trading_status_shows_mode_counts_and_the_latest_nav(operator: APIClient) -> None:
    from trading.models import AccountSnapshot

    AccountSnapshot.objects.create(
        account_id="A",
        time=datetime.now(UTC),
        balance=Decimal("10000"),
        nav=Decimal("10012.5"),
        unrealized_pl=Decimal("12.5"),
        margin_used=Decimal(0),
        margin_available=Decimal("10000"),
    )
    body = operator.get("/api/trading/status").json()
    assert body["mode"] == "trading"
    assert body["account"]["nav"] == "10012.5000"
    assert body["open_trades"] == 0
    assert "pl" in body["today"]


# ----- configuration -----------------------------------------------------------------------------


def test_config_lists_every_key_with_value_default_and_help(operator: APIClient) -> None:
    from septrader.config import CONFIG_KEYS

    body = operator.get("/api/config").json()
    keys = {row["key"]: row for row in body["settings"]}
    assert set(keys) == set(CONFIG_KEYS)
    assert keys["risk.max_open_trades"]["default"] == 5
    assert keys["risk.max_open_trades"]["help"]


def test_a_config_patch_with_one_bad_value_writes_nothing(
    as_role: Callable[[str | None], APIClient],
) -> None:
    admin = as_role("admin")
    response = admin.patch(
        "/api/config",
        {"risk.max_open_trades": 3, "risk.per_trade_percent": "lots"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "risk.per_trade_percent"
    assert "lots" in response.json()["error"]["message"]
    assert not SystemConfig.objects.exists()
    unknown = admin.patch("/api/config", {"risk.nonsense": 1}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["field"] == "risk.nonsense"


def test_a_config_patch_writes_the_values_audits_them_and_moves_the_generation(
    as_role: Callable[[str | None], APIClient], django_capture_on_commit_callbacks: Any
) -> None:
    admin = as_role("admin")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.patch(
            "/api/config", {"risk.max_open_trades": 3}, format="json", REMOTE_ADDR=ADDRESS
        )
    assert response.status_code == 200
    assert SystemConfig.objects.get(key="risk.max_open_trades").value == 3
    entry = audit("config.set")
    assert entry.details == {"risk.max_open_trades": {"from": None, "to": 3}}
    assert (entry.actor, entry.address) == ("admin-user", ADDRESS)
    assert admin.get("/api/config").json()["generation"] == 1


@pytest.mark.parametrize(
    "addresses",
    [
        "<script>alert(1)</script>",
        '"<script>"@example.com',
        "ops@example.com, not an address",
        "x" * 1_000_000 + "@example.com",
    ],
    ids=["markup", "quoted-markup", "one-bad-address", "a-megabyte"],
)
def test_alert_email_that_is_not_a_list_of_addresses_is_a_400_naming_the_key(
    as_role: Callable[[str | None], APIClient], addresses: str
) -> None:
    response = as_role("admin").patch("/api/config", {"alerts.email_to": addresses}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "alerts.email_to"
    assert "e-mail addresses separated by commas" in error["message"]
    assert addresses[:20] in error["message"] and len(error["message"]) < 300
    assert not SystemConfig.objects.filter(key="alerts.email_to").exists()


def test_reload_bumps_the_generation_and_is_audited(operator: APIClient) -> None:
    first = operator.put("/api/config/reload").json()["generation"]
    second = operator.put("/api/config/reload").json()["generation"]
    assert second == first + 1
    assert operator.get("/api/status").json()["config_generation"] == second
    assert audit("config.reload").actor == "operator-user"


# ----- lists -------------------------------------------------------------------------------------


def test_signals_filter_by_pair_direction_and_time_and_paginate(operator: APIClient) -> None:
    for minute in range(5):
        signal("EUR_USD", minute + 1, "BUY" if minute % 2 else "SELL")
    signal("GBP_USD", 1)
    body = operator.get("/api/signals", {"pair": "EUR_USD", "limit": "2"}).json()
    assert body["count"] == 5
    assert len(body["results"]) == 2
    assert body["next"]
    sells = operator.get("/api/signals", {"pair": "EUR_USD", "direction": "SELL"}).json()
    assert sells["count"] == 3
    since = (BASE - timedelta(minutes=2, seconds=30)).isoformat()
    recent = operator.get("/api/signals", {"pair": "EUR_USD", "from": since}).json()
    assert recent["count"] == 2


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/signals", {"pair": "ABC_XYZ"}, "pair"),
        ("/api/signals", {"status": "done"}, "status"),
        ("/api/signals", {"from": "yesterday"}, "from"),
        ("/api/signals", {"from": "2025-01-02T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "to"),
        ("/api/orders", {"kind": "limit"}, "kind"),
        ("/api/trades", {"status": "open"}, "status"),
        ("/api/trades", {"limit": "0"}, "limit"),
        ("/api/trades", {"offset": "-1"}, "offset"),
        ("/api/trades", {"limit": "many"}, "limit"),
        ("/api/candles/EUR_USD", {"timeframe": "M2"}, "timeframe"),
        ("/api/candles/EUR_USD", {"from": "99999-01-01"}, "from"),
        ("/api/candles/EUR_USD", {"from": "9999-12-31T23:00:00Z"}, "from"),
        (
            "/api/candles/EUR_USD",
            {"from": "2020-01-01T00:00:00Z", "to": "2021-01-01T00:00:00Z"},
            "to",
        ),
        ("/api/metrics/qfh/EUR_USD", {"timeframe": "D"}, "timeframe"),
        ("/api/performance/daily", {"days": "0"}, "days"),
        ("/api/performance/daily", {"start": "2025-02-30"}, "start"),
        ("/api/performance/daily", {"start": "2025-03-02", "end": "2025-03-01"}, "end"),
        ("/api/pair-models", {"promoted": "maybe"}, "promoted"),
    ],
)
def test_bad_query_input_is_a_400_naming_the_field(
    operator: APIClient, url: str, params: dict[str, str], field: str
) -> None:
    response = operator.get(url, params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert error["code"] == "invalid"
    assert error["message"]


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", "/api/pairs/EUR_USD/enable", {"force": "perhaps"}, "force"),
        ("post", "/api/trading/kill", {"close_trades": [1]}, "close_trades"),
        ("patch", "/api/trades/1", {"stop_loss": "low"}, "stop_loss"),
        ("patch", "/api/trades/1", {"take_profit": -1}, "take_profit"),
        ("post", "/api/trading/stop", ["not", "an", "object"], ""),
    ],
)
def test_bad_bodies_are_a_400_naming_the_field(
    operator: APIClient, method: str, url: str, body: Any, field: str
) -> None:
    response = getattr(operator, method)(url, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


# Arabic-Indic digits: Decimal() reads "\u0661.\u0661" as 1.1 and "\u0661\u0660\u0660" as 100.
@pytest.mark.parametrize(
    ("role", "method", "url", "body", "field"),
    [
        ("operator", "patch", "/api/trades/1", {"stop_loss": "\u0661.\u0661"}, "stop_loss"),
        ("operator", "patch", "/api/trades/1", {"take_profit": "\u0661.\u0662"}, "take_profit"),
        ("operator", "post", "/api/trades/1/close", {"units": "\u0661\u0660\u0660"}, "units"),
        (
            "admin",
            "patch",
            "/api/config",
            {"risk.max_spread_pips": "\u0662"},
            "risk.max_spread_pips",
        ),
        (
            "admin",
            "patch",
            "/api/pairs/EUR_USD",
            {"risk_overrides": {"max_spread_pips": "\u0662"}},
            "risk_overrides.max_spread_pips",
        ),
    ],
)
def test_a_price_or_amount_in_digits_of_another_script_is_a_400_asking_for_ascii_digits(
    as_role: Callable[[str | None], APIClient],
    role: str,
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = getattr(as_role(role), method)(url, body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert "ASCII digits 0-9" in error["message"]


def test_malformed_json_is_a_400(operator: APIClient) -> None:
    response = operator.post("/api/trading/stop", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


def test_an_unknown_api_url_is_a_json_404(operator: APIClient) -> None:
    response = operator.get("/api/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_candles_come_back_oldest_first_for_the_range(
    timescaledb: None, operator: APIClient, seed_candles: list[dict[str, Any]]
) -> None:
    from marketdata.services import candles_ingest

    candles_ingest(pair="EUR_USD", timeframe="M1", candles=seed_candles[:30])
    start = seed_candles[0]["time"]
    body = operator.get(
        "/api/candles/EUR_USD", {"from": start, "to": seed_candles[10]["time"]}
    ).json()
    assert body["count"] == 10
    assert body["candles"][0]["time"].startswith(start[:16])
    times = [row["time"] for row in body["candles"]]
    assert times == sorted(times)


def test_the_audit_log_is_listed_for_admins_newest_first(
    as_role: Callable[[str | None], APIClient],
) -> None:
    operator = as_role("operator")
    operator.post("/api/trading/stop", {}, format="json")
    operator.post("/api/trading/start", {}, format="json")
    body = as_role("admin").get("/api/audit", {"action": "trading.mode"}).json()
    assert [row["target"] for row in body["results"]] == ["trading", "reducing"]


def test_promoting_an_unknown_model_is_a_404(operator: APIClient) -> None:
    response = operator.post("/api/pair-models/12345/promote")
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "id"


def test_sync_pull_says_when_it_is_not_available(operator: APIClient) -> None:
    import importlib.util

    response = operator.post("/api/sync/pull")
    if importlib.util.find_spec("sync.services") is None:
        assert response.status_code == 503
        assert response.json()["error"]["message"].startswith("sync not available")
    else:
        assert response.status_code != 500


def test_daily_performance_defaults_to_the_week_up_to_the_accounts_newest_snapshot(
    operator: APIClient,
) -> None:
    from trading.models import AccountSnapshot

    # The demo replays 2025 at the simulator's clock: its days, not the wall clock's, are "today".
    for closed_at, realized in ((BASE - timedelta(days=1), "12.50"), (BASE, "-2.25")):
        Trade.objects.create(
            account_id="001-001-0000001-001",
            broker_trade_id=f"t{closed_at:%d}",
            pair_id="EUR_USD",
            initial_units=Decimal(1000),
            current_units=Decimal(0),
            open_price=Decimal("1.10000"),
            opened_at=closed_at - timedelta(hours=1),
            state=Trade.State.CLOSED,
            close_price=Decimal("1.10100"),
            closed_at=closed_at,
            realized_pl=Decimal(realized),
        )
    AccountSnapshot.objects.create(
        account_id="001-001-0000001-001",
        time=BASE + timedelta(minutes=5),
        balance=Decimal("100010.25"),
        nav=Decimal("100010.25"),
        unrealized_pl=Decimal(0),
        margin_used=Decimal(0),
        margin_available=Decimal("100010.25"),
    )
    body = operator.get("/api/performance/daily").json()
    assert body["end"] == "2025-07-24"
    assert body["start"] == "2025-07-18"
    per_day = {day["day"]: day["realized_pl"] for day in body["days"] if day["trades_closed"]}
    assert per_day == {"2025-07-23": "12.5000", "2025-07-24": "-2.2500"}


# ----- broker actions (the simulator) ------------------------------------------------------------


def test_closing_a_trade_closes_it_at_the_broker_and_is_audited(
    operator: APIClient, open_trade: Trade
) -> None:
    partial = operator.post(
        f"/api/trades/{open_trade.pk}/close", {"units": "400"}, format="json", REMOTE_ADDR=ADDRESS
    )
    assert partial.status_code == 200, partial.content
    assert Decimal(partial.json()["current_units"]) == Decimal(600)
    too_many = operator.post(f"/api/trades/{open_trade.pk}/close", {"units": "5000"}, format="json")
    assert too_many.status_code == 400
    assert too_many.json()["error"]["field"] == "units"
    full = operator.post(f"/api/trades/{open_trade.pk}/close", {}, format="json")
    assert full.json()["state"] == "CLOSED"
    again = operator.post(f"/api/trades/{open_trade.pk}/close", {}, format="json")
    assert again.status_code == 409
    entry = AuditLog.objects.filter(action="trade.close").order_by("id").first()
    assert entry is not None and (entry.actor, entry.address) == ("operator-user", ADDRESS)


def test_amending_a_trade_moves_its_stops_at_the_broker(
    operator: APIClient, open_trade: Trade
) -> None:
    stop = (open_trade.open_price - Decimal("0.0050")).quantize(Decimal("0.00001"))
    response = operator.patch(
        f"/api/trades/{open_trade.pk}", {"stop_loss": str(stop)}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Decimal(response.json()["stop_loss_price"]) == stop
    assert audit("trade.amend").actor == "operator-user"


def test_a_stop_loss_or_take_profit_on_the_wrong_side_of_the_market_is_refused_and_nothing_moves(
    operator: APIClient, open_trade: Trade
) -> None:
    # A long at about 1.177: a stop-loss above the market or a take-profit below it would be
    # triggered at once and close the trade.
    above = (open_trade.open_price + Decimal("0.0100")).quantize(Decimal("0.00001"))
    below = (open_trade.open_price - Decimal("0.0100")).quantize(Decimal("0.00001"))
    for body, field in (
        ({"stop_loss": "5.0"}, "stop_loss"),
        ({"stop_loss": str(above)}, "stop_loss"),
        ({"take_profit": str(below)}, "take_profit"),
        ({"stop_loss": str(below), "take_profit": str(below)}, "take_profit"),
    ):
        response = operator.patch(f"/api/trades/{open_trade.pk}", body, format="json")

        assert response.status_code == 400, (body, response.content)
        error = response.json()["error"]
        assert error["field"] == field
        assert "wrong side of the market" in error["message"] and "bid" in error["message"]
    open_trade.refresh_from_db()
    assert open_trade.state == Trade.State.OPEN
    assert open_trade.stop_loss_price is None
    assert not AuditLog.objects.filter(action="trade.amend").exists()


def test_flattening_a_pair_closes_its_trades(operator: APIClient, open_trade: Trade) -> None:
    response = operator.post("/api/pairs/EUR_USD/flatten", {}, format="json")
    assert response.json()["trades_closed"] == 1
    open_trade.refresh_from_db()
    assert open_trade.state == Trade.State.CLOSED
    assert audit("trades.close_all").target == "EUR_USD"


def test_the_kill_switch_halts_and_closes_every_trade(
    operator: APIClient, open_trade: Trade
) -> None:
    response = operator.post("/api/trading/kill", {}, format="json", REMOTE_ADDR=ADDRESS)
    assert response.status_code == 200, response.content
    assert response.json()["trades_closed"] == 1
    assert TradingState.objects.get().mode == "halted"
    entry = audit("trading.kill_switch")
    assert (entry.actor, entry.address) == ("operator-user", ADDRESS)
