"""Schedules as data: the data-driven FX schedule matches the rules it replaced, and the metals and
crypto defaults keep their own hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from tests.trading import legacy_fx_schedule as legacy
from trading.schedule import (
    CRYPTO,
    FX,
    METALS,
    Break,
    Schedule,
    ScheduleError,
    Session,
    Window,
    market_status,
    should_flatten,
    weekend_close,
)

HOLIDAYS = frozenset({date(2025, 4, 18), date(2025, 12, 25), date(2026, 1, 1), date(2026, 4, 3)})
WINDOWS = (
    Window(
        starts_at=datetime(2025, 3, 12, 3, 0, tzinfo=UTC),
        ends_at=datetime(2025, 3, 12, 5, 30, tzinfo=UTC),
        reason="broker upgrade",
    ),
    Window(
        starts_at=datetime(2025, 11, 5, 20, 0, tzinfo=UTC),
        ends_at=datetime(2025, 11, 5, 22, 30, tzinfo=UTC),
        reason="EUR_USD feed",
        pairs=frozenset({"EUR_USD"}),
    ),
)

LEGACY_WINDOWS = tuple(
    legacy.Window(window.starts_at, window.ends_at, window.reason, window.pairs)
    for window in WINDOWS
)


def moments(start: datetime, days: int, step_minutes: int) -> list[datetime]:
    return [start + timedelta(minutes=minute) for minute in range(0, days * 1440, step_minutes)]


# Three weeks around each US daylight-saving switch of 2025, Good Friday, and Christmas to New Year.
PERIODS = {
    "spring forward": datetime(2025, 3, 1, 0, 7, tzinfo=UTC),
    "good friday": datetime(2025, 4, 10, 0, 7, tzinfo=UTC),
    "fall back": datetime(2025, 10, 24, 0, 7, tzinfo=UTC),
    "christmas": datetime(2025, 12, 18, 0, 7, tzinfo=UTC),
}


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("flatten_minutes", [0, 30])
def test_the_fx_schedule_as_data_reads_exactly_as_the_fx_rules_it_replaced(
    period: str, flatten_minutes: int
) -> None:
    # Given three weeks sampled every 11 minutes (off the hour, so every break edge is crossed),
    # plus each edge of the daily break and the weekend to the second.
    start = PERIODS[period]
    samples = moments(start, 21, 11)
    for day in range(21):
        base = (start + timedelta(days=day)).astimezone(legacy.NEW_YORK).date()
        for wall in (time(16, 58), time(17, 0), time(17, 3)):
            edge = legacy.new_york(base, wall)
            samples += [edge - timedelta(seconds=1), edge, edge + timedelta(seconds=1)]
    for at in samples:
        for pair in (None, "EUR_USD", "GBP_USD"):
            # When both are asked, then the data-driven FX schedule gives the same answer.
            expected = legacy.market_status(
                at,
                holidays=HOLIDAYS,
                windows=LEGACY_WINDOWS,
                pair=pair,
                flatten_minutes=flatten_minutes,
            )
            actual = market_status(
                at,
                holidays=HOLIDAYS,
                windows=WINDOWS,
                pair=pair,
                flatten_minutes=flatten_minutes,
                schedule=FX,
            )
            assert (actual.open, actual.reason, actual.next_change) == (
                expected.open,
                expected.reason,
                expected.next_change,
            ), (at, pair)
        assert weekend_close(at, HOLIDAYS, FX) == legacy.weekend_close(at, HOLIDAYS)
        assert should_flatten(at, 30, HOLIDAYS, FX) == legacy.should_flatten(at, 30, HOLIDAYS)


def test_metals_close_for_an_hour_at_17_00_new_york_every_weekday() -> None:
    # Given a Wednesday in summer (17:00 New York is 21:00 UTC).
    at = datetime(2025, 6, 4, 21, 5, tzinfo=UTC)
    # Then metals are closed for the hour while FX has reopened.
    metals = market_status(at, schedule=METALS)
    assert not metals.open
    assert metals.reason == "daily break: 17:00-18:00 New York"
    assert metals.next_change == datetime(2025, 6, 4, 22, 0, tzinfo=UTC)
    assert market_status(at, schedule=FX).open


def test_metals_keep_the_fx_weekend_and_open_on_sunday_at_18_00_new_york() -> None:
    saturday = datetime(2025, 6, 7, 16, 0, tzinfo=UTC)
    status = market_status(saturday, schedule=METALS)
    assert not status.open
    assert status.reason == "weekend: Friday 17:00 to Sunday 17:00 New York"
    assert status.next_change == datetime(2025, 6, 8, 22, 0, tzinfo=UTC)


def test_crypto_trades_through_the_weekend_and_holidays_but_not_maintenance() -> None:
    saturday = datetime(2025, 6, 7, 16, 0, tzinfo=UTC)
    christmas = datetime(2025, 12, 25, 15, 0, tzinfo=UTC)
    assert market_status(saturday, schedule=CRYPTO, flatten_minutes=30).open
    assert market_status(christmas, holidays=HOLIDAYS, schedule=CRYPTO).open
    window = Window(
        starts_at=saturday - timedelta(hours=1), ends_at=saturday + timedelta(hours=3), reason="x"
    )
    status = market_status(saturday, windows=[window], schedule=CRYPTO)
    assert (status.open, status.reason) == (False, "maintenance: x")
    assert not should_flatten(datetime(2025, 6, 6, 20, 50, tzinfo=UTC), 30, schedule=CRYPTO)
    with pytest.raises(ScheduleError, match="around the clock"):
        weekend_close(saturday, schedule=CRYPTO)


def test_a_session_that_ends_before_it_starts_is_refused_naming_the_field() -> None:
    with pytest.raises(ScheduleError, match=r"closes_at=Sunday 17:00 is not valid"):
        Session(opens_day=4, opens_at=time(17), closes_day=6, closes_at=time(17))
    with pytest.raises(ScheduleError, match=r"ends_at=16:58 is not valid"):
        Break(starts_at=time(17, 3), ends_at=time(16, 58))


def test_daily_sessions_close_between_them_and_flatten_only_before_the_weekend() -> None:
    # Given sessions of 08:00 to 16:30 London on each weekday (summer: 07:00 to 15:30 UTC).
    weekdays = Schedule(
        name="London weekdays",
        time_zone="Europe/London",
        sessions=tuple(Session(day, time(8), day, time(16, 30)) for day in range(5)),
        holidays=False,
    )
    # Then a Wednesday evening is between sessions and reopens on Thursday at 08:00 London.
    evening = market_status(datetime(2025, 6, 4, 16, tzinfo=UTC), schedule=weekdays)
    assert evening.reason == "between sessions: Wednesday 16:30 to Thursday 08:00 London"
    assert evening.next_change == datetime(2025, 6, 5, 7, 0, tzinfo=UTC)
    # And only Friday's close is a weekend, the one flattened before.
    assert weekend_close(datetime(2025, 6, 4, 12, tzinfo=UTC), schedule=weekdays) == datetime(
        2025, 6, 6, 15, 30, tzinfo=UTC
    )
    assert not should_flatten(datetime(2025, 6, 4, 15, 10, tzinfo=UTC), 30, schedule=weekdays)
    assert should_flatten(datetime(2025, 6, 6, 15, 10, tzinfo=UTC), 30, schedule=weekdays)
    saturday = market_status(datetime(2025, 6, 7, 12, tzinfo=UTC), schedule=weekdays)
    assert saturday.reason == "weekend: Friday 16:30 to Monday 08:00 London"


def test_an_unknown_time_zone_is_refused_naming_the_field() -> None:
    with pytest.raises(ScheduleError, match=r"time_zone='Mars/Base' is not valid"):
        Schedule(name="Mars", time_zone="Mars/Base")
