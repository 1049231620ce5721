"""The market schedule against the database: configured holidays, maintenance windows, and the
open/closed state the beat task keeps in ``TradingState`` (DESIGN.md section 6).

The rules themselves live in ``trading.schedule`` (pure); this module reads their inputs
(SystemConfig ``market.*`` keys, ``MaintenanceWindow`` rows, and the schedule of each pair's
instrument class or its own, ``MarketSchedule`` and ``PairSchedule``). The beat task's refresh,
which records changes of state with an audit entry and flattens the book before the weekend when
the operator asked for it, is ``trading.services.market_state_refresh``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from django.utils import timezone

from marketdata.models import Pair
from septrader.selectors import config_values
from trading.models import MaintenanceWindow, MarketSchedule, PairSchedule
from trading.schedule import (
    CRYPTO,
    FX,
    METALS,
    Break,
    MarketStatus,
    Schedule,
    Session,
    Window,
    market_status,
)

# Each instrument class's schedule when its MarketSchedule row is missing (the migration seeds
# them; a deleted row falls back here rather than to FX hours).
DEFAULT_SCHEDULES = {
    Pair.InstrumentType.CURRENCY: FX,
    Pair.InstrumentType.METAL: METALS,
    Pair.InstrumentType.CFD: CRYPTO,
}


@lru_cache(maxsize=32)
def _calendar_days(calendar: str, years: tuple[int, ...]) -> frozenset[date]:
    import holidays

    if calendar in holidays.list_supported_financial():
        days = holidays.financial_holidays(calendar, years=years)
    else:
        days = holidays.country_holidays(calendar, years=years)
    return frozenset(days.keys())


def market_holidays(years: Iterable[int], values: dict[str, Any] | None = None) -> frozenset[date]:
    """The configured holidays falling in ``years``: ``market.holidays`` (MM-DD every year,
    YYYY-MM-DD once) plus every day of the ``market.holiday_calendar`` calendar, if one is set.
    ``values``: the ``market.*`` settings when the caller has read them already."""
    wanted = tuple(sorted(set(years)))
    settings = values if values is not None else config_values("market.")
    days: set[date] = set()
    for text in settings["market.holidays"]:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if day.year in wanted:
                days.add(day)
            continue
        month, day_of_month = int(text[:2]), int(text[3:])
        for year in wanted:
            try:
                days.add(date(year, month, day_of_month))
            except ValueError:
                # 02-29 closes the market only in leap years.
                continue
    calendar = settings["market.holiday_calendar"]
    if calendar:
        days |= _calendar_days(calendar, wanted)
    return frozenset(days)


def maintenance_windows(after: datetime) -> list[Window]:
    """Maintenance windows that have not ended by ``after``."""
    return [
        Window(
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            reason=row.reason,
            pairs=frozenset(str(pair) for pair in row.pairs or ()),
        )
        for row in MaintenanceWindow.objects.filter(ends_at__gt=after).order_by("starts_at")
    ]


def schedule_from_row(row: MarketSchedule) -> Schedule:
    """The pure schedule of a ``MarketSchedule`` row and its sessions and breaks."""
    return Schedule(
        name=row.name,
        time_zone=row.time_zone,
        sessions=tuple(
            Session(session.opens_day, session.opens_at, session.closes_day, session.closes_at)
            for session in row.sessions.all()
        ),
        breaks=tuple(Break(item.starts_at, item.ends_at) for item in row.breaks.all()),
        holidays=row.holidays,
    )


# How long a process keeps the schedules it read (seconds). An edit in the console clears the
# editing process's copy at once (``schedules_forget``, on every save and delete of a schedule,
# session, break, pair override or pair); other processes (the executors) see it within this.
SCHEDULES_TTL_SECONDS = 5.0


@dataclass(frozen=True)
class _Schedules:
    """Every schedule as one process last read them: four queries, then none for a while."""

    loaded_at: float
    by_type: dict[str, Schedule]
    by_pair: dict[str, Schedule]
    pair_types: dict[str, str]


_schedules: _Schedules | None = None
_monotonic = time.monotonic


def schedules_forget(*_: object, **__: object) -> None:
    """Drop this process's copy of the schedules (a signal receiver: any arguments)."""
    global _schedules
    _schedules = None


def _schedules_now() -> _Schedules:
    global _schedules
    held = _schedules
    if held is not None and _monotonic() - held.loaded_at < SCHEDULES_TTL_SECONDS:
        return held
    loaded_at = _monotonic()
    rows = {row.pk: row for row in MarketSchedule.objects.prefetch_related("sessions", "breaks")}
    # A class without its row (deleted) falls back to the code's default, not to FX hours.
    by_type = {str(kind): schedule for kind, schedule in DEFAULT_SCHEDULES.items()}
    for row in rows.values():
        if row.instrument_type:
            by_type[row.instrument_type] = schedule_from_row(row)
    by_pair = {
        str(pair): schedule_from_row(rows[schedule])
        for pair, schedule in PairSchedule.objects.values_list("pair_id", "schedule_id")
        if schedule in rows
    }
    pair_types = dict(Pair.objects.values_list("symbol", "instrument_type"))
    held = _Schedules(loaded_at, by_type, by_pair, pair_types)
    _schedules = held
    return held


def pair_schedule(pair: str | None = None) -> Schedule:
    """The schedule ``pair`` trades on: its own (``PairSchedule``), else its instrument class's;
    with no pair (or an unknown one), the FX market's. Read through the process's copy."""
    schedules = _schedules_now()
    if pair is not None and pair in schedules.by_pair:
        return schedules.by_pair[pair]
    instrument_type = Pair.InstrumentType.CURRENCY
    if pair is not None:
        instrument_type = Pair.InstrumentType(schedules.pair_types.get(pair) or instrument_type)
    return schedules.by_type.get(instrument_type) or DEFAULT_SCHEDULES[instrument_type]


def market_status_at(at: datetime | None = None, *, pair: str | None = None) -> MarketStatus:
    """The market's state at ``at`` (default now), for one pair on its schedule, or for the FX
    market as a whole (the beat task, monitoring and the dashboard ask that).

    The window before the weekend close in which trades are flattened counts as closed for
    entries: a trade opened then would be closed again within minutes. It applies only to
    schedules that close for the weekend.
    """
    at = at or timezone.now()
    settings = config_values("market.")
    return market_status(
        at,
        holidays=market_holidays(range(at.year - 1, at.year + 2), settings),
        windows=maintenance_windows(at),
        pair=pair,
        flatten_minutes=settings["market.flatten_before_weekend_minutes"],
        schedule=pair_schedule(pair),
    )


def pairs_market_open(pairs: Iterable[str], at: datetime) -> dict[str, bool]:
    """Whether each pair's own market is open at ``at``: gold in its daily break, bitcoin on a
    Saturday, each on its schedule and maintenance windows; two queries for any number of pairs
    (the settings and the windows), for the health checks and the dashboard's price ages."""
    settings = config_values("market.")
    holidays = market_holidays(range(at.year - 1, at.year + 2), settings)
    windows = maintenance_windows(at)
    flatten = settings["market.flatten_before_weekend_minutes"]
    return {
        pair: market_status(
            at,
            holidays=holidays,
            windows=windows,
            pair=pair,
            flatten_minutes=flatten,
            schedule=pair_schedule(pair),
        ).open
        for pair in pairs
    }


def market_is_open(pair: str | None = None, at: datetime | None = None) -> tuple[bool, str]:
    """Whether an entry may be sent now (for ``pair``), and why not: the executor asks before
    every entry. Computed from the rules rather than read from ``TradingState``, so it is right
    to the second instead of to the last beat."""
    status = market_status_at(at, pair=pair)
    return status.open, status.summary()
