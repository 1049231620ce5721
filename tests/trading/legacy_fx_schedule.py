"""The FX schedule as it was before schedules became data (commit f78886c), kept verbatim as the
oracle the data-driven FX schedule must match; nothing outside the tests imports it.

The original docstring, after its first line, follows.

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
from zoneinfo import ZoneInfo

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
DAILY_BREAK = "daily break"
_PRIORITY = {MAINTENANCE: 0, HOLIDAY: 1, WEEKEND: 2, FLATTEN: 3, DAILY_BREAK: 4}

# Closures are generated day by day around the moment asked about; this is how far back they are
# generated (longer than any closure made of days: a holiday next to a weekend spans four days).
_LOOK_BEHIND = timedelta(days=8)
_LOOK_AHEAD = timedelta(days=14)
# A search for the next change that has not ended after this many years is a configuration error
# (a maintenance window chain that never ends), not a reason to loop forever.
_MAX_HORIZON = timedelta(days=3 * 366)


class ScheduleError(ValueError):
    """A moment without a time zone, or a schedule that never changes state."""


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

    def summary(self) -> str:
        """One line for the console: the state, why, and when it flips (New York time)."""
        when = self.next_change.astimezone(NEW_YORK).strftime("%a %Y-%m-%d %H:%M")
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


def weekend_close(at: datetime, holidays: Collection[date] = frozenset()) -> datetime:
    """When the market closes for the coming weekend: Friday 17:00 New York, brought forward by a
    day for each holiday that directly precedes it (Good Friday closes on Thursday at 17:00).

    During the weekend this is the close of the following week; on a holiday that leads into the
    weekend it is the close that has already happened (the market is shut until Sunday).
    """
    day = trading_day(at)
    friday = day + timedelta(days=(FRIDAY - day.weekday()) % 7)
    close_day = friday
    while close_day in holidays and close_day >= day:
        close_day -= timedelta(days=1)
    return trading_day_bounds(close_day)[1]


def minutes_to_weekend_close(at: datetime, holidays: Collection[date] = frozenset()) -> float:
    """Minutes from ``at`` to the coming weekend close (see ``weekend_close``)."""
    return (weekend_close(at, holidays) - _utc(at)).total_seconds() / 60


def should_flatten(at: datetime, minutes: int, holidays: Collection[date] = frozenset()) -> bool:
    """Whether every trade should be closed now: ``minutes`` > 0 and the weekend close is at most
    that many minutes away (and still ahead)."""
    if minutes <= 0:
        return False
    remaining = minutes_to_weekend_close(at, holidays)
    return 0 < remaining <= minutes


def _closures(
    start: datetime,
    end: datetime,
    *,
    holidays: Collection[date],
    windows: Iterable[Window],
    pair: str | None,
    flatten_minutes: int,
) -> list[Closure]:
    """Every closure that overlaps ``[start, end)``."""
    closures: list[Closure] = []
    first = trading_day(start) - timedelta(days=1)
    last = trading_day(end) + timedelta(days=1)
    day = first
    while day <= last:
        closures.append(
            Closure(
                new_york(day, BREAK_START),
                new_york(day, BREAK_END),
                DAILY_BREAK,
                "16:58-17:03 New York",
            )
        )
        if day.weekday() == FRIDAY:
            closures.append(
                Closure(
                    new_york(day, DAY_END),
                    new_york(day + timedelta(days=2), DAY_END),
                    WEEKEND,
                    "Friday 17:00 to Sunday 17:00 New York",
                )
            )
        if day in holidays:
            day_start, day_end = trading_day_bounds(day)
            closures.append(Closure(day_start, day_end, HOLIDAY, day.isoformat()))
        day += timedelta(days=1)
    if flatten_minutes > 0:
        # Each Friday in range gives a pre-weekend stretch; weekend_close moves it for holidays.
        moment = start
        while moment < end:
            close = weekend_close(moment, holidays)
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
) -> MarketStatus:
    """Whether the market is open for entries at ``at`` (for ``pair``, or the whole market)."""
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
