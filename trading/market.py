"""The market schedule against the database: configured holidays, maintenance windows, and the
open/closed state the beat task keeps in ``TradingState`` (DESIGN.md section 6).

The rules themselves live in ``trading.schedule`` (pure); this module reads their inputs
(SystemConfig ``market.*`` keys, ``MaintenanceWindow`` rows, and the schedule of each pair's
instrument class or its own, ``MarketSchedule`` and ``PairSchedule``). The beat task's refresh,
which records changes of state with an audit entry and flattens the book before the weekend when
the operator asked for it, is ``trading.services.market_state_refresh``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache

from django.utils import timezone

from marketdata.models import Pair
from septrader.selectors import config_get
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


def market_holidays(years: Iterable[int]) -> frozenset[date]:
    """The configured holidays falling in ``years``: ``market.holidays`` (MM-DD every year,
    YYYY-MM-DD once) plus every day of the ``market.holiday_calendar`` calendar, if one is set."""
    wanted = tuple(sorted(set(years)))
    days: set[date] = set()
    for text in config_get("market.holidays"):
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
    calendar = config_get("market.holiday_calendar")
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


def pair_schedule(pair: str | None = None) -> Schedule:
    """The schedule ``pair`` trades on: its own (``PairSchedule``), else its instrument class's;
    with no pair (or an unknown one), the FX market's."""
    rows = MarketSchedule.objects.prefetch_related("sessions", "breaks")
    instrument_type = Pair.InstrumentType.CURRENCY
    if pair is not None:
        override = PairSchedule.objects.filter(pair_id=pair).values_list("schedule", flat=True)
        row = rows.filter(pk__in=override).first()
        if row is not None:
            return schedule_from_row(row)
        found = Pair.objects.filter(symbol=pair).values_list("instrument_type", flat=True).first()
        instrument_type = Pair.InstrumentType(found or instrument_type)
    row = rows.filter(instrument_type=instrument_type).first()
    return schedule_from_row(row) if row is not None else DEFAULT_SCHEDULES[instrument_type]


def market_status_at(at: datetime | None = None, *, pair: str | None = None) -> MarketStatus:
    """The market's state at ``at`` (default now), for one pair on its schedule, or for the FX
    market as a whole (the beat task, monitoring and the dashboard ask that).

    The window before the weekend close in which trades are flattened counts as closed for
    entries: a trade opened then would be closed again within minutes. It applies only to
    schedules that close for the weekend.
    """
    at = at or timezone.now()
    return market_status(
        at,
        holidays=market_holidays(range(at.year - 1, at.year + 2)),
        windows=maintenance_windows(at),
        pair=pair,
        flatten_minutes=config_get("market.flatten_before_weekend_minutes"),
        schedule=pair_schedule(pair),
    )


def market_is_open(pair: str | None = None, at: datetime | None = None) -> tuple[bool, str]:
    """Whether an entry may be sent now (for ``pair``), and why not: the executor asks before
    every entry. Computed from the rules rather than read from ``TradingState``, so it is right
    to the second instead of to the last beat."""
    status = market_status_at(at, pair=pair)
    return status.open, status.summary()
