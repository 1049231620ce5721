"""The market schedule against the database: settings, maintenance windows, the recorded state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from marketdata.selectors import broker_now
from monitoring.rules import Context, market_closed
from monitoring.selectors import system_status
from septrader.config import ConfigValueError
from septrader.models import AuditLog
from septrader.services import config_set
from trading import services as trading_services
from trading.market import market_holidays, market_is_open
from trading.models import MaintenanceWindow, Trade, TradingState
from trading.services import market_state_refresh

pytestmark = pytest.mark.django_db

WEDNESDAY_NOON = datetime(2025, 6, 4, 16, 0, tzinfo=UTC)  # 12:00 New York
SATURDAY_NOON = datetime(2025, 6, 7, 16, 0, tzinfo=UTC)
SUNDAY_OPEN = datetime(2025, 6, 8, 21, 3, tzinfo=UTC)  # 17:03 New York
FRIDAY_CLOSE = datetime(2025, 6, 6, 21, 0, tzinfo=UTC)  # 17:00 New York


def open_trade(pair: str = "EUR_USD") -> Trade:
    return Trade.objects.create(
        account_id="001-001-0000001-001",
        broker_trade_id=str(Trade.objects.count() + 1),
        pair_id=pair,
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.10000"),
        opened_at=WEDNESDAY_NOON,
    )


# Settings ----------------------------------------------------------------------------------------


def test_by_default_christmas_and_new_year_close_the_market_every_year() -> None:
    assert market_holidays([2025, 2026]) == {
        datetime(2025, 1, 1).date(),
        datetime(2025, 12, 25).date(),
        datetime(2026, 1, 1).date(),
        datetime(2026, 12, 25).date(),
    }
    is_open, reason = market_is_open(at=datetime(2025, 12, 25, 15, tzinfo=UTC))
    assert not is_open
    assert reason == "closed (holiday: 2025-12-25); reopens Thu 2025-12-25 17:03 New York"


def test_an_operator_can_add_a_one_off_date_and_a_calendar_of_the_holidays_package() -> None:
    config_set(key="market.holidays", value=["12-25", "2025-06-04"], updated_by="ops")
    assert not market_is_open(at=WEDNESDAY_NOON)[0]

    # Easter Monday is a TARGET2 holiday of the ECB calendar.
    easter_monday = datetime(2025, 4, 21, 15, tzinfo=UTC)
    assert market_is_open(at=easter_monday)[0]
    config_set(key="market.holiday_calendar", value="ECB", updated_by="ops")
    assert market_is_open(at=easter_monday) == (
        False,
        "closed (holiday: 2025-04-21); reopens Mon 2025-04-21 17:03 New York",
    )


def test_29_february_closes_the_market_only_in_leap_years() -> None:
    config_set(key="market.holidays", value=["02-29"])
    assert market_holidays([2027, 2028]) == {datetime(2028, 2, 29).date()}


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("market.holidays", "12-25", "market.holidays='12-25' is not valid; expected a list"),
        ("market.holidays", ["12-25", "13-01"], "market.holidays='13-01' is not valid"),
        ("market.holidays", ["2025-02-30"], "expected a list of text items (MM-DD or YYYY-MM-DD"),
        ("market.holidays", [25], "market.holidays=[25] is not valid"),
        ("market.holiday_calendar", "MOON", "market.holiday_calendar='MOON' is not valid"),
        ("market.holiday_calendar", 3, "expected text (empty, or a financial market"),
    ],
)
def test_a_bad_holiday_setting_is_refused_naming_the_value_and_what_is_expected(
    key: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigValueError) as error:
        config_set(key=key, value=value)
    assert message in str(error.value)


def test_a_holiday_list_is_stored_trimmed_and_without_repeats() -> None:
    setting = config_set(key="market.holidays", value=[" 12-25", "12-25", "01-01"])
    assert setting.value == ["12-25", "01-01"]


# Maintenance windows -----------------------------------------------------------------------------


def test_a_maintenance_window_for_one_pair_stops_entries_in_that_pair_only() -> None:
    MaintenanceWindow.objects.create(
        starts_at=datetime(2025, 6, 4, 15, tzinfo=UTC),
        ends_at=datetime(2025, 6, 4, 17, tzinfo=UTC),
        reason="JPY feed check",
        pairs=["USD_JPY"],
    )

    assert market_is_open("USD_JPY", WEDNESDAY_NOON) == (
        False,
        "closed (maintenance: JPY feed check); reopens Wed 2025-06-04 13:00 New York",
    )
    assert market_is_open("EUR_USD", WEDNESDAY_NOON)[0]
    assert market_is_open(None, WEDNESDAY_NOON)[0]


def test_a_maintenance_window_for_every_pair_stops_all_entries() -> None:
    MaintenanceWindow.objects.create(
        starts_at=datetime(2025, 6, 4, 15, tzinfo=UTC),
        ends_at=datetime(2025, 6, 4, 17, tzinfo=UTC),
        reason="broker maintenance",
    )
    assert not market_is_open("EUR_USD", WEDNESDAY_NOON)[0]
    assert market_is_open("EUR_USD", datetime(2025, 6, 4, 17, tzinfo=UTC))[0]


# The recorded state ------------------------------------------------------------------------------


def test_the_refresh_records_each_open_and_close_once_with_an_audit_entry() -> None:
    TradingState.objects.all().delete()

    market_state_refresh(now=WEDNESDAY_NOON)
    market_state_refresh(now=SATURDAY_NOON)
    second = market_state_refresh(now=SATURDAY_NOON)
    market_state_refresh(now=SUNDAY_OPEN)

    state = TradingState.objects.get(pk=1)
    assert state.market_open
    assert state.market_checked_at == SUNDAY_OPEN
    assert state.market_reason == "open; closes Mon 2025-06-09 16:58 New York"
    assert not second.changed
    entries = list(AuditLog.objects.filter(actor="system:schedule").order_by("id"))
    assert [entry.action for entry in entries] == ["market.close", "market.open"]
    assert entries[0].details["reason"].startswith("weekend")
    assert entries[0].details["next_change"] == "2025-06-08T21:03:00+00:00"


def test_while_closed_the_operator_sees_why_and_until_when() -> None:
    market_state_refresh(now=SATURDAY_NOON)

    state = TradingState.objects.get(pk=1)
    assert not state.market_open
    assert state.market_reason == (
        "closed (weekend: Friday 17:00 to Sunday 17:00 New York); "
        "reopens Sun 2025-06-08 17:03 New York"
    )


def test_it_flattens_open_trades_in_the_configured_minutes_before_the_weekend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The close-all service belongs to execution; here we record that the schedule asks for it.
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(
        trading_services,
        "trades_close_all",
        lambda **kwargs: calls.append(kwargs),
        raising=False,
    )
    open_trade()
    config_set(key="market.flatten_before_weekend_minutes", value=30)

    early = market_state_refresh(now=datetime(2025, 6, 6, 20, 25, tzinfo=UTC))
    within = market_state_refresh(now=datetime(2025, 6, 6, 20, 45, tzinfo=UTC))

    assert not early.flattened
    assert within.flattened
    assert not within.status.open
    assert calls == [{"actor": "system:schedule", "reason": "flatten before the weekend"}]


def test_it_does_not_flatten_when_the_setting_is_zero_or_nothing_is_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, str]] = []
    monkeypatch.setattr(
        trading_services, "trades_close_all", lambda **kwargs: calls.append(kwargs), raising=False
    )
    near_close = datetime(2025, 6, 6, 20, 45, tzinfo=UTC)

    config_set(key="market.flatten_before_weekend_minutes", value=30)
    assert not market_state_refresh(now=near_close).flattened
    open_trade()
    config_set(key="market.flatten_before_weekend_minutes", value=0)
    assert not market_state_refresh(now=near_close).flattened
    assert calls == []


def test_the_refresh_runs_every_minute_from_beat_on_the_execution_queue() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["trading.refresh_market_state"]
    assert entry["task"] == "trading.refresh_market_state_task"
    assert entry["options"] == {"expires": 50}
    assert str(entry["schedule"]) == "<crontab: * * * * * (m/h/dM/MY/d)>"


def test_the_beat_task_records_the_market_state_through_a_real_worker(
    celery_worker: Any,
) -> None:
    from trading.tasks import refresh_market_state_task

    answer = refresh_market_state_task.delay().get(timeout=60)

    state = TradingState.objects.get(pk=1)
    assert answer["open"] == state.market_open
    assert state.market_checked_at is not None


# The broker's clock ------------------------------------------------------------------------------


def test_the_recorded_market_state_follows_the_brokers_clock_not_the_wall_clock(
    broker_clock: Any,
) -> None:
    # A replayed Wednesday is open and a replayed Saturday closed, whatever day the wall shows.
    TradingState.objects.all().delete()
    broker_clock(WEDNESDAY_NOON)
    market_state_refresh()
    state = TradingState.objects.get(pk=1)
    assert state.market_open
    assert state.market_checked_at is not None
    assert abs(state.market_checked_at - WEDNESDAY_NOON) < timedelta(minutes=1)

    broker_clock(SATURDAY_NOON)
    assert market_state_refresh().changed
    state.refresh_from_db()
    assert not state.market_open
    assert state.market_reason.startswith("closed (weekend")


def test_the_market_closed_alert_and_the_status_follow_the_brokers_clock(
    broker_clock: Any,
) -> None:
    TradingState.objects.all().delete()
    broker_clock(WEDNESDAY_NOON)
    market_state_refresh()
    assert market_closed(Context(now=datetime.now(UTC), health={})) == []
    assert system_status()["market"]["open"] is True

    broker_clock(SATURDAY_NOON)
    market_state_refresh()
    [firing] = market_closed(Context(now=datetime.now(UTC), health={}))
    assert firing.condition == "market.closed"
    assert "weekend" in firing.message
    assert system_status()["market"]["open"] is False


def test_without_a_recent_streamer_state_the_local_clock_serves(broker_clock: Any) -> None:
    # A state left by a replay long gone (the streamer stopped 20 minutes ago) is not believed.
    broker_clock(SATURDAY_NOON, published_minutes_ago=20)
    assert abs(broker_now() - datetime.now(UTC)) < timedelta(seconds=5)
    broker_clock(SATURDAY_NOON, published_minutes_ago=1)
    assert abs(broker_now() - (SATURDAY_NOON + timedelta(minutes=1))) < timedelta(seconds=5)
