"""The market schedules (DESIGN.md section 6), as pure functions of a UTC moment (no ORM).

A ``Schedule`` is data: weekly sessions and daily breaks in a time zone, and whether the market
keeps the FX holidays. ``FX`` is the default everywhere a schedule is not given, ``METALS`` and
``CRYPTO`` are the seeded defaults of the other instrument classes (``trading.models``
``MarketSchedule`` holds the editable copies). The conventions below are written for FX; a
schedule without weekly sessions trades around the clock and has no weekend.

Everything here is defined in New York wall-clock time (``America/New_York``) and converted to UTC
through ``zoneinfo``, so the same rules stay right on both sides of a daylight-saving switch: the
Sunday open is 21:00 UTC in summer and 22:00 UTC in winter, and a trading day that contains a
switch lasts 23 or 25 hours.

Conventions (used by OANDA and the FX market at large, and everywhere in this project):

* **Trading day.** The FX day ends at 17:00 New York and is labelled by the date it ends on. The
  day labelled Tuesday runs from Monday 17:00 to Tuesday 17:00 New York, so 17:00 New York on
  Monday starts Tuesday's trading day and Sunday's 17:00 open starts Monday's. The labels Saturday
  and Sunday name the two weekend stretches (Friday 17:00 to Saturday 17:00, Saturday 17:00 to
  Sunday 17:00) in which the market is closed. A moment belongs to the day whose bounds satisfy
  ``start <= moment < end``.
* **Weekend.** Closed from Friday 17:00 to Sunday 17:00 New York.
* **Daily break.** Closed from 16:58 to 17:03 New York every day, around the 17:00 rollover,
  when spreads widen and the broker may reject orders. The break applies on Sunday too, so the
  first entries of a week go out at 17:03 New York even though prices start at 17:00.
* **Holiday.** A holiday on date D closes the trading day labelled D: from 17:00 New York on
  D - 1 to 17:00 New York on D. For 25 December this matches the market: it stops on the
  afternoon of the 24th and reopens on the evening of the 25th. A holiday on a Saturday or a
  Sunday falls inside the weekend and changes nothing.
* **Maintenance window.** Closed from ``starts_at`` (inclusive) to ``ends_at`` (exclusive); a
  window naming pairs closes only those pairs, an empty one closes every pair.
* **Flatten before the weekend.** With ``flatten_minutes`` > 0 the market is also closed to
  entries for that many minutes before the weekend close, since every trade opened then would be
  closed again a few minutes later.

All intervals are half-open ``[start, end)``. Where closures touch or overlap they form one closed
stretch, and ``MarketStatus.next_change`` is the end of that stretch (or, while open, the start of
the next one): the moment the console can promise the state will flip.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NEW_YORK = ZoneInfo("America/New_York")
DAY_END = time(17, 0)
BREAK_START = time(16, 58)
BREAK_END = time(17, 3)
FRIDAY = 4
SUNDAY = 6

# Closure reasons, most significant first: when several closures cover a moment, the console shows
# the one the operator most needs to know (a maintenance window outlasts a daily break).
MAINTENANCE = "maintenance"
HOLIDAY = "holiday"
WEEKEND = "weekend"
FLATTEN = "flatten before the weekend"
BETWEEN_SESSIONS = "between sessions"
DAILY_BREAK = "daily break"
_PRIORITY = {
    MAINTENANCE: 0,
    HOLIDAY: 1,
    WEEKEND: 2,
    BETWEEN_SESSIONS: 3,
    FLATTEN: 4,
    DAILY_BREAK: 5,
}

# Closures are generated day by day around the moment asked about; this is how far back they are
# generated (longer than any closure made of days: a holiday next to a weekend spans four days).
_LOOK_BEHIND = timedelta(days=8)
_LOOK_AHEAD = timedelta(days=14)
# A search for the next change that has not ended after this many years is a configuration error
# (a maintenance window chain that never ends), not a reason to loop forever.
_MAX_HORIZON = timedelta(days=3 * 366)


class ScheduleError(ValueError):
    """A moment without a time zone, or a schedule that never changes state."""


# Days are Python's weekday numbers (Monday 0 ... Sunday 6), but a trading week runs from Sunday
# to Saturday: FX opens on Sunday evening and closes on Friday evening within one week.
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def week_position(day: int, at: time) -> tuple[int, time]:
    """Where a weekday and time fall in a Sunday-to-Saturday week, for ordering."""
    return (day + 1) % 7, at


@dataclass(frozen=True)
class Session:
    """A weekly trading session: open from ``opens_day`` ``opens_at`` to ``closes_day``
    ``closes_at`` (wall-clock time in the schedule's zone), within one Sunday-to-Saturday week."""

    opens_day: int
    opens_at: time
    closes_day: int
    closes_at: time

    def __post_init__(self) -> None:
        for name in ("opens_day", "closes_day"):
            if getattr(self, name) not in range(7):
                raise ScheduleError(
                    f"{name}={getattr(self, name)!r} is not valid; expected 0 (Monday) to 6."
                )
        if week_position(self.closes_day, self.closes_at) <= week_position(
            self.opens_day, self.opens_at
        ):
            raise ScheduleError(session_order_message(self))


def session_order_message(session: Session) -> str:
    """The refusal of a session that ends before it starts, naming the field and its value."""
    return (
        f"closes_at={DAY_NAMES[session.closes_day]} {session.closes_at:%H:%M} is not valid; "
        f"expected a close after the open ({DAY_NAMES[session.opens_day]} "
        f"{session.opens_at:%H:%M}) within one week running from Sunday to Saturday."
    )


@dataclass(frozen=True)
class Break:
    """A daily break: closed from ``starts_at`` to ``ends_at`` every day (wall-clock time in the
    schedule's zone, within one day)."""

    starts_at: time
    ends_at: time

    def __post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise ScheduleError(break_order_message(self))


def break_order_message(daily_break: Break) -> str:
    """The refusal of a break that ends before it starts, naming the field and its value."""
    return (
        f"ends_at={daily_break.ends_at:%H:%M} is not valid; expected a time after starts_at="
        f"{daily_break.starts_at:%H:%M} on the same day (split a break across midnight in two)."
    )


@dataclass(frozen=True)
class Gap:
    """A weekly closure between sessions, from ``start_day`` ``start_time`` to ``end_day``
    ``end_time``, ``days`` dates later; the ``weekend`` is the one from the week's last session to
    the next week's first."""

    start_day: int
    start_time: time
    end_day: int
    end_time: time
    days: int
    weekend: bool

    def describe(self, place: str) -> str:
        return (
            f"{DAY_NAMES[self.start_day]} {self.start_time:%H:%M} to {DAY_NAMES[self.end_day]} "
            f"{self.end_time:%H:%M} {place}"
        )


@dataclass(frozen=True)
class Schedule:
    """When one class of instruments trades: ``sessions`` each week (none: around the clock),
    ``breaks`` every day, both in ``time_zone``; with ``holidays`` the configured FX holidays
    close it too."""

    name: str
    time_zone: str
    sessions: tuple[Session, ...] = ()
    breaks: tuple[Break, ...] = ()
    holidays: bool = True

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ScheduleError(
                f"time_zone={self.time_zone!r} is not valid; expected an IANA zone such as "
                "America/New_York."
            ) from error

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def place(self) -> str:
        """The zone as the console names it: "New York" for America/New_York."""
        return self.time_zone.rsplit("/", 1)[-1].replace("_", " ")

    @property
    def closes_for_the_weekend(self) -> bool:
        return bool(self.sessions)

    def local(self, day: date, wall_clock: time) -> datetime:
        """The UTC moment of a wall-clock time in the schedule's zone."""
        return datetime.combine(day, wall_clock, tzinfo=self.zone).astimezone(UTC)

    def gaps(self) -> list[Gap]:
        """The weekly closures between sessions (merged where sessions touch or overlap), the
        weekend last."""
        if not self.sessions:
            return []
        ordered = sorted(
            self.sessions, key=lambda session: week_position(session.opens_day, session.opens_at)
        )
        merged: list[list[tuple[int, time]]] = []
        for session in ordered:
            opens = week_position(session.opens_day, session.opens_at)
            closes = week_position(session.closes_day, session.closes_at)
            if merged and opens <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], closes)
            else:
                merged.append([opens, closes])
        gaps = []
        for index, (_, closes) in enumerate(merged):
            weekend = index == len(merged) - 1
            reopens = merged[(index + 1) % len(merged)][0]
            days = (reopens[0] - closes[0]) % 7
            if weekend and days == 0 and reopens[1] <= closes[1]:
                # The only session of the week reopening next week on the day it closes.
                days = 7
            gaps.append(
                Gap(
                    start_day=(closes[0] - 1) % 7,
                    start_time=closes[1],
                    end_day=(reopens[0] - 1) % 7,
                    end_time=reopens[1],
                    days=days,
                    weekend=weekend,
                )
            )
        return gaps

    def weekend(self) -> Gap | None:
        """The closure from the week's last session to the next week's first (none: around the
        clock)."""
        gaps = self.gaps()
        return gaps[-1] if gaps else None


FX = Schedule(
    name="FX",
    time_zone="America/New_York",
    sessions=(Session(SUNDAY, DAY_END, FRIDAY, DAY_END),),
    breaks=(Break(BREAK_START, BREAK_END),),
)
# OANDA's metals keep the FX week with a daily hour off around the 17:00 New York roll.
METALS = Schedule(
    name="Metals",
    time_zone="America/New_York",
    sessions=(Session(SUNDAY, DAY_END, FRIDAY, DAY_END),),
    breaks=(Break(time(17, 0), time(18, 0)),),
)
# OANDA's hours page lists "All crypto products: 24/7", interrupted only by maintenance it
# announces by date (Fridays 17:00-21:00 New York in its 2022 list): those are maintenance
# windows, entered when announced. No holidays: the underlying markets trade through them.
CRYPTO = Schedule(name="Crypto", time_zone="America/New_York", holidays=False)


@dataclass(frozen=True)
class Window:
    """A maintenance window: closed from ``starts_at`` to ``ends_at`` for ``pairs`` (empty: all)."""

    starts_at: datetime
    ends_at: datetime
    reason: str
    pairs: frozenset[str] = field(default_factory=frozenset)

    def applies_to(self, pair: str | None) -> bool:
        """An all-pairs window closes the whole market; a pair window closes only its pairs."""
        return not self.pairs or (pair is not None and pair in self.pairs)


@dataclass(frozen=True)
class Closure:
    starts_at: datetime
    ends_at: datetime
    kind: str
    detail: str = ""

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass(frozen=True)
class MarketStatus:
    """Whether entries may be sent at ``at``, why not when closed, and when that next flips."""

    open: bool
    reason: str
    next_change: datetime
    # False for a market open around the clock with no closure ahead: ``next_change`` is then only
    # the end of what was looked at.
    next_change_known: bool = True

    def summary(self) -> str:
        """One line for the console: the state, why, and when it flips (New York time)."""
        when = self.next_change.astimezone(NEW_YORK).strftime("%a %Y-%m-%d %H:%M")
        if self.open and not self.next_change_known:
            return "open; no closure ahead"
        if self.open:
            return f"open; closes {when} New York"
        return f"closed ({self.reason}); reopens {when} New York"


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ScheduleError(f"at={at!r} is not valid; expected a time-zone-aware datetime.")
    return at.astimezone(UTC)


def new_york(day: date, wall_clock: time) -> datetime:
    """The UTC moment of a New York wall-clock time (never ambiguous at 16:58-17:03)."""
    return datetime.combine(day, wall_clock, tzinfo=NEW_YORK).astimezone(UTC)


def trading_day(at: datetime) -> date:
    """The 17:00 New York trading day ``at`` belongs to, labelled by the date it ends on."""
    local = _utc(at).astimezone(NEW_YORK)
    return local.date() + timedelta(days=1) if local.time() >= DAY_END else local.date()


def trading_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC start (inclusive) and end (exclusive) of a trading day: 17:00 to 17:00 New York."""
    return new_york(day - timedelta(days=1), DAY_END), new_york(day, DAY_END)


def weekly_open(at: datetime) -> datetime:
    """The Sunday 17:00 New York open of the trading week ``at`` falls in (the next one while the
    market is in its weekend)."""
    day = trading_day(at)
    # The week's first trading day is Monday; Saturday and Sunday labels belong to the next week.
    monday = day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else -day.weekday())
    return trading_day_bounds(monday)[0]


def weekend_close(
    at: datetime, holidays: Collection[date] = frozenset(), schedule: Schedule = FX
) -> datetime:
    """When the market closes for the coming weekend: Friday 17:00 New York, brought forward by a
    day for each holiday that directly precedes it (Good Friday closes on Thursday at 17:00).

    During the weekend this is the close of the following week; on a holiday that leads into the
    weekend it is the close that has already happened (the market is shut until Sunday). For
    another schedule it is the start of its weekend gap, the same way; a schedule without
    sessions has no weekend (``ScheduleError``).
    """
    weekend = schedule.weekend()
    if weekend is None:
        raise ScheduleError(f"schedule={schedule.name!r} trades around the clock; no weekend.")
    local = _utc(at).astimezone(schedule.zone)
    # The day ``at`` belongs to, in days that end at the weekend close's time (the trading day
    # for FX), so a moment after Friday's close looks for the next week's close.
    day = local.date() + timedelta(days=1) if local.time() >= weekend.start_time else local.date()
    close_day = day + timedelta(days=(weekend.start_day - day.weekday()) % 7)
    while schedule.holidays and close_day in holidays and close_day >= day:
        close_day -= timedelta(days=1)
    return schedule.local(close_day, weekend.start_time)


def minutes_to_weekend_close(
    at: datetime, holidays: Collection[date] = frozenset(), schedule: Schedule = FX
) -> float:
    """Minutes from ``at`` to the coming weekend close (see ``weekend_close``)."""
    return (weekend_close(at, holidays, schedule) - _utc(at)).total_seconds() / 60


def should_flatten(
    at: datetime,
    minutes: int,
    holidays: Collection[date] = frozenset(),
    schedule: Schedule = FX,
) -> bool:
    """Whether every trade should be closed now: ``minutes`` > 0, the schedule closes for the
    weekend, and its weekend close is at most that many minutes away (and still ahead)."""
    if minutes <= 0 or not schedule.closes_for_the_weekend:
        return False
    remaining = minutes_to_weekend_close(at, holidays, schedule)
    return 0 < remaining <= minutes


def _closures(
    start: datetime,
    end: datetime,
    *,
    holidays: Collection[date],
    windows: Iterable[Window],
    pair: str | None,
    flatten_minutes: int,
    schedule: Schedule,
) -> list[Closure]:
    """Every closure that overlaps ``[start, end)``."""
    closures: list[Closure] = []
    gaps = schedule.gaps()
    # Local dates from a week before (the longest weekly gap) to a day after the range.
    day = _utc(start).astimezone(schedule.zone).date() - timedelta(days=8)
    last = _utc(end).astimezone(schedule.zone).date() + timedelta(days=1)
    while day <= last:
        for daily_break in schedule.breaks:
            closures.append(
                Closure(
                    schedule.local(day, daily_break.starts_at),
                    schedule.local(day, daily_break.ends_at),
                    DAILY_BREAK,
                    f"{daily_break.starts_at:%H:%M}-{daily_break.ends_at:%H:%M} {schedule.place}",
                )
            )
        for gap in gaps:
            if day.weekday() == gap.start_day:
                closures.append(
                    Closure(
                        schedule.local(day, gap.start_time),
                        schedule.local(day + timedelta(days=gap.days), gap.end_time),
                        WEEKEND if gap.weekend else BETWEEN_SESSIONS,
                        gap.describe(schedule.place),
                    )
                )
        day += timedelta(days=1)
    if schedule.holidays:
        # Holidays close FX trading days (17:00 to 17:00 New York), whatever the schedule's zone.
        day = trading_day(start) - timedelta(days=1)
        while day <= trading_day(end) + timedelta(days=1):
            if day in holidays:
                day_start, day_end = trading_day_bounds(day)
                closures.append(Closure(day_start, day_end, HOLIDAY, day.isoformat()))
            day += timedelta(days=1)
    if flatten_minutes > 0 and gaps:
        # Each Friday in range gives a pre-weekend stretch; weekend_close moves it for holidays.
        moment = start
        while moment < end:
            close = weekend_close(moment, holidays, schedule)
            closures.append(
                Closure(
                    close - timedelta(minutes=flatten_minutes),
                    close,
                    FLATTEN,
                    f"{flatten_minutes} minutes before the weekend close",
                )
            )
            moment = max(close, moment) + timedelta(days=3)
    for window in windows:
        if window.applies_to(pair) and window.ends_at > start and window.starts_at < end:
            closures.append(
                Closure(_utc(window.starts_at), _utc(window.ends_at), MAINTENANCE, window.reason)
            )
    return [closure for closure in closures if closure.ends_at > start and closure.starts_at < end]


def market_status(
    at: datetime,
    *,
    holidays: Collection[date] = frozenset(),
    windows: Sequence[Window] = (),
    pair: str | None = None,
    flatten_minutes: int = 0,
    schedule: Schedule = FX,
) -> MarketStatus:
    """Whether the market is open for entries at ``at`` (for ``pair``, or the whole market), on
    ``schedule`` (FX unless given)."""
    at = _utc(at)
    start = at - _LOOK_BEHIND
    horizon = at + _LOOK_AHEAD
    while True:
        closures = _closures(
            start,
            horizon,
            holidays=holidays,
            windows=windows,
            pair=pair,
            flatten_minutes=flatten_minutes,
            schedule=schedule,
        )
        current = [closure for closure in closures if closure.starts_at <= at < closure.ends_at]
        if current:
            # Extend the closed stretch through every closure that touches or overlaps it.
            stretch_end = max(closure.ends_at for closure in current)
            grew = True
            while grew:
                grew = False
                for closure in closures:
                    if closure.starts_at <= stretch_end < closure.ends_at:
                        stretch_end = closure.ends_at
                        grew = True
            change = stretch_end
        else:
            change = min(
                (closure.starts_at for closure in closures if closure.starts_at > at),
                default=horizon,
            )
        # Around the clock, only a maintenance window can close the market.
        if (
            not current
            and change == horizon
            and not schedule.gaps()
            and not schedule.breaks
            and not any(
                window.applies_to(pair) and _utc(window.starts_at) > at for window in windows
            )
        ):
            return MarketStatus(
                open=True, reason="open", next_change=horizon, next_change_known=False
            )
        # A stretch reaching the edge of what was generated may go on beyond it: look further.
        if change + _LOOK_BEHIND < horizon:
            break
        if horizon - at > _MAX_HORIZON:
            raise ScheduleError(
                f"the market state does not change within {_MAX_HORIZON.days} days of "
                f"{at.isoformat()}; expected maintenance windows that end."
            )
        horizon = at + 2 * (horizon - at)
    if not current:
        return MarketStatus(open=True, reason="open", next_change=change)
    shown = min(current, key=lambda closure: (_PRIORITY[closure.kind], closure.starts_at))
    return MarketStatus(open=False, reason=shown.reason, next_change=change)
