"""The market schedule's rules, on the real US daylight-saving dates of 2025 and 2026.

US clocks went forward on 2025-03-09 and 2026-03-08 and back on 2025-11-02 and 2026-11-01 (at
02:00 New York, always a Sunday), so New York 17:00 is 21:00 UTC in summer and 22:00 UTC in winter.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.schedule import (
    MarketStatus,
    ScheduleError,
    Window,
    market_status,
    minutes_to_weekend_close,
    should_flatten,
    trading_day,
    trading_day_bounds,
    weekly_open,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# The trading day ----------------------------------------------------------------------------------


def test_17_00_new_york_on_monday_starts_tuesdays_trading_day() -> None:
    # 2025-06-02 is a Monday in summer: 17:00 New York is 21:00 UTC.
    assert trading_day(utc(2025, 6, 2, 20, 59, 59)) == date(2025, 6, 2)
    assert trading_day(utc(2025, 6, 2, 21, 0)) == date(2025, 6, 3)
    assert trading_day_bounds(date(2025, 6, 3)) == (utc(2025, 6, 2, 21), utc(2025, 6, 3, 21))


def test_the_sunday_open_starts_mondays_trading_day_in_winter_and_summer() -> None:
    assert trading_day(utc(2025, 1, 5, 22, 0)) == date(2025, 1, 6)
    assert trading_day(utc(2025, 7, 6, 21, 0)) == date(2025, 7, 7)


def test_a_moment_given_in_another_time_zone_belongs_to_the_same_trading_day() -> None:
    in_tokyo = utc(2025, 6, 2, 21, 0).astimezone(ZoneInfo("Asia/Tokyo"))
    assert trading_day(in_tokyo) == date(2025, 6, 3)


@pytest.mark.parametrize(
    "day, hours",
    [
        (date(2025, 3, 9), 23),
        (date(2025, 11, 2), 25),
        (date(2026, 3, 8), 23),
        (date(2026, 11, 1), 25),
        (date(2025, 3, 10), 24),
        (date(2025, 11, 3), 24),
    ],
)
def test_a_trading_day_across_a_daylight_saving_switch_lasts_23_or_25_hours(
    day: date, hours: int
) -> None:
    start, end = trading_day_bounds(day)
    assert end - start == timedelta(hours=hours)


def test_a_naive_datetime_is_refused_naming_the_value() -> None:
    with pytest.raises(ScheduleError, match="expected a time-zone-aware datetime"):
        trading_day(datetime(2025, 6, 2, 12, 0))


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)))
def test_every_moment_lies_within_the_bounds_of_its_trading_day(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    start, end = trading_day_bounds(trading_day(at))
    assert start <= at < end


# Weekend and daily break across DST --------------------------------------------------------------


@pytest.mark.parametrize(
    "friday, sunday, close_utc, open_utc",
    [
        # The spring weekends: Friday closes in winter time, Sunday opens in summer time.
        (date(2025, 3, 7), date(2025, 3, 9), 22, 21),
        (date(2026, 3, 6), date(2026, 3, 8), 22, 21),
        # The autumn weekends: the other way round.
        (date(2025, 10, 31), date(2025, 11, 2), 21, 22),
        (date(2026, 10, 30), date(2026, 11, 1), 21, 22),
    ],
)
def test_the_weekend_follows_new_york_time_on_the_daylight_saving_weekends(
    friday: date, sunday: date, close_utc: int, open_utc: int
) -> None:
    close = datetime(friday.year, friday.month, friday.day, close_utc, tzinfo=UTC)
    sunday_open = datetime(sunday.year, sunday.month, sunday.day, open_utc, tzinfo=UTC)

    assert weekly_open(close + timedelta(hours=12)) == sunday_open
    assert market_status(close - timedelta(minutes=3)).open
    in_weekend = market_status(close + timedelta(hours=1))
    assert not in_weekend.open
    assert in_weekend.reason.startswith("weekend")
    # The daily break also covers the first minutes after the Sunday open.
    assert in_weekend.next_change == sunday_open + timedelta(minutes=3)
    assert not market_status(sunday_open + timedelta(minutes=2)).open
    reopened = market_status(sunday_open + timedelta(minutes=3))
    assert reopened.open
    assert reopened.reason == "open"


def test_the_sunday_open_is_21_00_utc_in_summer_and_22_00_utc_in_winter() -> None:
    assert weekly_open(utc(2025, 7, 9, 12)) == utc(2025, 7, 6, 21)
    assert weekly_open(utc(2025, 12, 10, 12)) == utc(2025, 12, 7, 22)


@pytest.mark.parametrize(
    "wednesday, break_hour_utc",
    [
        (date(2025, 3, 5), 21),
        (date(2025, 3, 12), 20),
        (date(2025, 10, 29), 20),
        (date(2025, 11, 5), 21),
        (date(2026, 3, 4), 21),
        (date(2026, 3, 11), 20),
        (date(2026, 10, 28), 20),
        (date(2026, 11, 4), 21),
    ],
)
def test_the_daily_break_moves_in_utc_with_daylight_saving(
    wednesday: date, break_hour_utc: int
) -> None:
    start = datetime(wednesday.year, wednesday.month, wednesday.day, break_hour_utc, 58, tzinfo=UTC)

    before = market_status(start - timedelta(seconds=1))
    assert before.open
    assert before.next_change == start
    during = market_status(start + timedelta(minutes=2))
    assert not during.open
    assert during.reason == "daily break: 16:58-17:03 New York"
    assert during.next_change == start + timedelta(minutes=5)
    assert market_status(start + timedelta(minutes=5)).open


def test_the_status_summary_tells_the_operator_when_trading_resumes_in_new_york_time() -> None:
    status = market_status(utc(2025, 3, 8, 12))
    assert status.summary() == (
        "closed (weekend: Friday 17:00 to Sunday 17:00 New York); "
        "reopens Sun 2025-03-09 17:03 New York"
    )
    assert market_status(utc(2025, 3, 10, 12)).summary() == (
        "open; closes Mon 2025-03-10 16:58 New York"
    )


# Holidays ----------------------------------------------------------------------------------------

CHRISTMAS_AND_NEW_YEAR = frozenset(
    {date(2025, 12, 25), date(2026, 1, 1), date(2026, 12, 25), date(2027, 1, 1)}
)


def test_a_holiday_closes_from_17_00_new_york_the_evening_before_to_17_00_on_the_day() -> None:
    # Christmas 2025 is a Thursday; New York is on winter time (17:00 = 22:00 UTC).
    before = market_status(utc(2025, 12, 24, 21, 57), holidays=CHRISTMAS_AND_NEW_YEAR)
    assert before.open
    assert before.next_change == utc(2025, 12, 24, 21, 58)

    closed = market_status(utc(2025, 12, 25, 12), holidays=CHRISTMAS_AND_NEW_YEAR)
    assert not closed.open
    assert closed.reason == "holiday: 2025-12-25"
    assert closed.next_change == utc(2025, 12, 25, 22, 3)
    assert market_status(utc(2025, 12, 25, 22, 3), holidays=CHRISTMAS_AND_NEW_YEAR).open


def test_without_the_holiday_configured_christmas_trades_like_any_thursday() -> None:
    assert market_status(utc(2025, 12, 25, 12)).open


def test_a_friday_holiday_joins_the_weekend_and_the_market_reopens_on_sunday() -> None:
    # Christmas 2026 is a Friday: closed from Thursday 16:58 to Sunday 17:03 New York.
    thursday = market_status(utc(2026, 12, 24, 21, 59), holidays=CHRISTMAS_AND_NEW_YEAR)
    friday = market_status(utc(2026, 12, 25, 12), holidays=CHRISTMAS_AND_NEW_YEAR)
    saturday = market_status(utc(2026, 12, 26, 12), holidays=CHRISTMAS_AND_NEW_YEAR)

    assert not thursday.open and not friday.open and not saturday.open
    assert friday.reason == "holiday: 2026-12-25"
    assert saturday.reason.startswith("weekend")
    assert {thursday.next_change, friday.next_change, saturday.next_change} == {
        utc(2026, 12, 27, 22, 3)
    }


def test_a_holiday_on_a_saturday_changes_nothing() -> None:
    # 2022-01-01 was a Saturday: Friday 31 December traded to 17:00 New York as usual.
    holidays = {date(2022, 1, 1)}
    assert market_status(utc(2021, 12, 31, 15), holidays=holidays).open
    assert market_status(utc(2022, 1, 2, 22, 3), holidays=holidays).open


# Maintenance windows -----------------------------------------------------------------------------


def test_a_maintenance_window_for_every_pair_closes_the_market_until_it_ends() -> None:
    window = Window(utc(2025, 6, 4, 10), utc(2025, 6, 4, 11), "broker upgrade")

    status = market_status(utc(2025, 6, 4, 10, 30), windows=[window])

    assert status == MarketStatus(
        open=False, reason="maintenance: broker upgrade", next_change=utc(2025, 6, 4, 11)
    )
    assert market_status(utc(2025, 6, 4, 9, 0), windows=[window]).next_change == utc(2025, 6, 4, 10)


def test_a_maintenance_window_for_one_pair_closes_only_that_pair() -> None:
    window = Window(
        utc(2025, 6, 4, 10), utc(2025, 6, 4, 11), "JPY data issue", frozenset({"USD_JPY"})
    )
    at = utc(2025, 6, 4, 10, 30)

    assert not market_status(at, windows=[window], pair="USD_JPY").open
    assert market_status(at, windows=[window], pair="EUR_USD").open
    assert market_status(at, windows=[window]).open


def test_touching_closures_make_one_stretch_and_the_next_change_is_its_end() -> None:
    # A window from Friday noon into Sunday evening, past the Sunday open.
    window = Window(utc(2025, 6, 6, 16), utc(2025, 6, 8, 23), "data centre move")

    status = market_status(utc(2025, 6, 6, 17), windows=[window])

    assert not status.open
    assert status.reason == "maintenance: data centre move"
    assert status.next_change == utc(2025, 6, 8, 23)


def test_a_maintenance_window_longer_than_the_search_is_followed_to_its_end() -> None:
    window = Window(utc(2025, 6, 1), utc(2025, 9, 1, 12), "summer shutdown")
    assert market_status(utc(2025, 6, 2), windows=[window]).next_change == utc(2025, 9, 1, 12)


def test_a_window_that_never_ends_is_refused_instead_of_searched_for_ever() -> None:
    window = Window(utc(2025, 1, 1), utc(2035, 1, 1), "forever")
    with pytest.raises(ScheduleError, match="does not change within"):
        market_status(utc(2025, 6, 2), windows=[window])


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)))
def test_the_state_holds_until_next_change_and_flips_there(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    window = Window(utc(2025, 12, 30, 10), utc(2025, 12, 30, 12), "upgrade")

    def status_at(moment: datetime) -> MarketStatus:
        return market_status(
            moment, holidays=CHRISTMAS_AND_NEW_YEAR, windows=[window], flatten_minutes=30
        )

    status = status_at(at)

    assert status.next_change > at
    assert status_at(status.next_change - timedelta(microseconds=1)).open == status.open
    assert status_at(status.next_change).open != status.open


# Flatten before the weekend ----------------------------------------------------------------------


def test_minutes_to_the_weekend_close_count_to_friday_17_00_new_york_across_dst() -> None:
    # Friday 2025-03-07 is still winter time (close 22:00 UTC), 2025-03-14 summer (21:00 UTC).
    assert minutes_to_weekend_close(utc(2025, 3, 7, 21, 30)) == 30
    assert minutes_to_weekend_close(utc(2025, 3, 14, 20, 30)) == 30
    assert minutes_to_weekend_close(utc(2025, 3, 12, 21, 0)) == 2 * 24 * 60


def test_it_flattens_only_within_the_configured_minutes_before_the_weekend_close() -> None:
    close = utc(2025, 6, 6, 21)  # Friday 17:00 New York in summer

    assert should_flatten(close - timedelta(minutes=29), 30)
    assert should_flatten(close - timedelta(minutes=30), 30)
    assert not should_flatten(close - timedelta(minutes=31), 30)
    assert not should_flatten(close - timedelta(minutes=29), 0)
    assert not should_flatten(close + timedelta(minutes=1), 30)
    assert not should_flatten(utc(2025, 6, 8, 12), 30)


def test_before_a_friday_holiday_it_flattens_before_thursdays_close() -> None:
    thursday_close = utc(2026, 12, 24, 22)  # 17:00 New York, winter

    assert (
        minutes_to_weekend_close(thursday_close - timedelta(minutes=20), CHRISTMAS_AND_NEW_YEAR)
        == 20
    )
    assert should_flatten(thursday_close - timedelta(minutes=20), 30, CHRISTMAS_AND_NEW_YEAR)
    assert not should_flatten(utc(2026, 12, 25, 21, 45), 30, CHRISTMAS_AND_NEW_YEAR)


def test_no_entries_go_out_while_the_book_is_flattened_before_the_weekend() -> None:
    status = market_status(utc(2025, 6, 6, 20, 45), flatten_minutes=30)

    assert not status.open
    assert status.reason == "flatten before the weekend: 30 minutes before the weekend close"
    assert status.next_change == utc(2025, 6, 8, 21, 3)
    assert market_status(utc(2025, 6, 6, 20, 29), flatten_minutes=30).open
