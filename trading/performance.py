"""Performance records: realised and unrealised P&L, the 17:00 New York trading day, per-pair
results, the equity curve and the drawdown (selectors over ``Trade`` and ``AccountSnapshot``).

Money is Decimal in the account currency throughout, as the broker reports it. Definitions:

* A trade's **result** is ``realized_pl + financing``, counted when it closes, on the trading day
  of ``closed_at`` (``trading.schedule.trading_day``: 17:00 to 17:00 New York, labelled by the
  date it ends on). A result above zero is a win, below zero a loss; exactly zero is neither.
* **Win rate** is wins divided by trades closed (a break-even trade counts against it), or None
  when no trade closed.
* **Realised P&L** over all time adds the ``realized_pl`` already booked on trades that are still
  open (partial closes). ``Trade`` does not record when a partial close happened, so realised P&L
  over a period, and therefore the daily figures, count a trade only once it has closed in full.
* **Unrealised P&L** is the sum of the open trades' ``unrealized_pl``, or the newest account
  snapshot's when that is fresher than every open trade row (the reconciliation updates both).
* **Paper trades** (a pair on paper, trading/paper_trades.py) are never the account's: every
  figure here is of the broker's trades, and ``daily_performance(paper=True)`` gives the paper
  trades' own, apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import F, FloatField, Func, Max, QuerySet, Sum
from django.utils import timezone

from trading.models import AccountSnapshot, Trade
from trading.schedule import trading_day, trading_day_bounds

ZERO = Decimal(0)
HUNDRED = Decimal(100)
RATE_PLACES = Decimal("0.0001")


@dataclass
class Tally:
    """Closed trades counted together: their summed result, how many, and how many won or lost."""

    realized_pl: Decimal = ZERO
    trades_closed: int = 0
    wins: int = 0
    losses: int = 0

    def add(self, result: Decimal) -> None:
        self.realized_pl += result
        self.trades_closed += 1
        if result > 0:
            self.wins += 1
        elif result < 0:
            self.losses += 1

    @property
    def win_rate(self) -> Decimal | None:
        if not self.trades_closed:
            return None
        return (Decimal(self.wins) / Decimal(self.trades_closed)).quantize(RATE_PLACES)


@dataclass
class DayPerformance(Tally):
    """One 17:00 New York trading day: its UTC bounds, its closed trades, and the same per pair."""

    day: date = date.min
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    pairs: dict[str, Tally] = field(default_factory=dict)


@dataclass
class PairPerformance(Tally):
    """One pair over a period: closed trades, plus what it holds open now."""

    pair: str = ""
    open_trades: int = 0
    partial_realized_pl: Decimal = ZERO
    unrealized_pl: Decimal = ZERO


@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    nav: Decimal
    balance: Decimal


@dataclass(frozen=True)
class Drawdown:
    """How far the newest NAV is below the highest NAV of all snapshots."""

    peak_nav: Decimal
    peak_time: datetime
    nav: Decimal
    time: datetime
    amount: Decimal
    percent: Decimal


@dataclass(frozen=True)
class DailyLoss:
    """The P&L of one trading day as the daily loss limit sees it (see ``daily_loss``)."""

    day: date
    as_of: datetime
    realized_pl: Decimal
    unrealized_start: Decimal
    unrealized_end: Decimal
    nav_at_start: Decimal | None

    @property
    def pl(self) -> Decimal:
        return self.realized_pl + self.unrealized_end - self.unrealized_start

    @property
    def loss(self) -> Decimal:
        """The day's loss as a positive amount; zero on a day that made money."""
        return max(ZERO, -self.pl)

    @property
    def loss_percent(self) -> Decimal | None:
        """The loss as a percentage of the NAV the day started with (None without a snapshot)."""
        if not self.nav_at_start:
            return None
        return self.loss * HUNDRED / self.nav_at_start


def _trades(account_id: str | None, pair: str | None, *, paper: bool = False) -> QuerySet[Trade]:
    trades = Trade.objects.filter(paper=paper)
    if account_id is not None:
        trades = trades.filter(account_id=account_id)
    if pair is not None:
        trades = trades.filter(pair_id=pair)
    return trades


def _snapshots(account_id: str | None) -> QuerySet[AccountSnapshot]:
    snapshots = AccountSnapshot.objects.all()
    return snapshots if account_id is None else snapshots.filter(account_id=account_id)


def _sum(queryset: QuerySet[Trade], *fields: str) -> Decimal:
    total = ZERO
    for name in fields:
        value = queryset.aggregate(total=Sum(name))["total"]
        total += value or ZERO
    return total


def realized_pl(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    pair: str | None = None,
    account_id: str | None = None,
) -> Decimal:
    """Closed trades' ``realized_pl + financing`` (closed in ``[start, end)`` when given), plus,
    over all time only, the ``realized_pl`` booked by partial closes of trades still open."""
    trades = _trades(account_id, pair)
    closed = trades.filter(state=Trade.State.CLOSED)
    if start is not None:
        closed = closed.filter(closed_at__gte=start)
    if end is not None:
        closed = closed.filter(closed_at__lt=end)
    total = _sum(closed, "realized_pl", "financing")
    if start is None and end is None:
        total += _sum(trades.filter(state=Trade.State.OPEN), "realized_pl")
    return total


def unrealized_pl(*, pair: str | None = None, account_id: str | None = None) -> Decimal:
    """The open trades' unrealised P&L, or the newest snapshot's when it is fresher (account-wide
    only: a snapshot has no per-pair figure)."""
    open_trades = _trades(account_id, pair).filter(state=Trade.State.OPEN)
    from_trades = open_trades.aggregate(total=Sum("unrealized_pl"), updated=Max("updated_at"))
    if pair is None:
        snapshot = _snapshots(account_id).order_by("-time").first()
        if snapshot is not None and (
            from_trades["updated"] is None or snapshot.time >= from_trades["updated"]
        ):
            return snapshot.unrealized_pl
    return from_trades["total"] or ZERO


def _trading_days(start_day: date, end_day: date) -> list[date]:
    return [start_day + timedelta(days=offset) for offset in range((end_day - start_day).days + 1)]


def daily_performance(
    start_day: date,
    end_day: date,
    pair: str | None = None,
    *,
    account_id: str | None = None,
    paper: bool = False,
) -> list[DayPerformance]:
    """Each trading day from ``start_day`` to ``end_day`` (inclusive): the trades that closed in
    it, their summed result, wins, losses, win rate, and the same per pair; the paper trades'
    with ``paper``.

    Weekdays are listed even when nothing closed; the weekend labels Saturday and Sunday appear
    only if a trade closed in them (a broker-side close while the market is shut).
    """
    if end_day < start_day:
        raise ValueError(
            f"end_day={end_day.isoformat()} is not valid; expected a day on or after "
            f"start_day={start_day.isoformat()}."
        )
    start = trading_day_bounds(start_day)[0]
    end = trading_day_bounds(end_day)[1]
    days = {}
    for day in _trading_days(start_day, end_day):
        day_start, day_end = trading_day_bounds(day)
        days[day] = DayPerformance(day=day, starts_at=day_start, ends_at=day_end)
    rows = (
        _trades(account_id, pair, paper=paper)
        .filter(state=Trade.State.CLOSED, closed_at__gte=start, closed_at__lt=end)
        .values_list("pair_id", "closed_at", "realized_pl", "financing")
    )
    for symbol, closed_at, realized, financing in rows:
        assert closed_at is not None  # filtered above
        result = realized + financing
        performance = days[trading_day(closed_at)]
        performance.add(result)
        # The pair column holds the symbol (the foreign key points at Pair.symbol).
        performance.pairs.setdefault(str(symbol), Tally()).add(result)
    return [
        performance
        for day, performance in days.items()
        if day.weekday() < 5 or performance.trades_closed
    ]


def pair_performance(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    account_id: str | None = None,
) -> list[PairPerformance]:
    """Per pair, sorted by symbol: trades closed in ``[start, end)`` (all time by default) with
    their result and win rate, and the trades open now with their realised-so-far and unrealised
    P&L."""
    pairs: dict[str, PairPerformance] = defaultdict(PairPerformance)
    closed = _trades(account_id, None).filter(state=Trade.State.CLOSED)
    if start is not None:
        closed = closed.filter(closed_at__gte=start)
    if end is not None:
        closed = closed.filter(closed_at__lt=end)
    for symbol, realized, financing in closed.values_list("pair_id", "realized_pl", "financing"):
        pairs[str(symbol)].add(realized + financing)
    still_open = _trades(account_id, None).filter(state=Trade.State.OPEN)
    for symbol, realized, unrealized in still_open.values_list(
        "pair_id", "realized_pl", "unrealized_pl"
    ):
        performance = pairs[str(symbol)]
        performance.open_trades += 1
        performance.partial_realized_pl += realized
        performance.unrealized_pl += unrealized
    for name, performance in pairs.items():
        performance.pair = name
    return [pairs[name] for name in sorted(pairs)]


def equity_curve(
    start: datetime,
    end: datetime,
    *,
    max_points: int | None = None,
    account_id: str | None = None,
) -> list[EquityPoint]:
    """NAV and balance from the account snapshots in ``[start, end)``, oldest first.

    With ``max_points``, the range is cut into that many equal buckets and each bucket keeps its
    last snapshot (real figures, never averages), so a year of minute snapshots draws as a few
    hundred points without loading them all.
    """
    if end <= start:
        raise ValueError(
            f"end={end.isoformat()} is not valid; expected a time after start={start.isoformat()}."
        )
    if max_points is not None and max_points < 1:
        raise ValueError(f"max_points={max_points!r} is not valid; expected an integer >= 1.")
    snapshots = _snapshots(account_id).filter(time__gte=start, time__lt=end)
    columns = ["time", "nav", "balance"]
    if max_points is not None:
        width = (end - start).total_seconds() / max_points
        # Bucket numbers are computed in SQL from two numbers we made, never from user text.
        bucket = Func(
            F("time"),
            template=(
                f"floor((extract(epoch from %(expressions)s) - {start.timestamp()!r}) / {width!r})"
            ),
            output_field=FloatField(),
        )
        # PostgreSQL's DISTINCT ON keeps the first row of each bucket in this order: its last.
        snapshots = snapshots.annotate(bucket=bucket).order_by("bucket", "-time").distinct("bucket")
        # DISTINCT ON needs its expression among the selected columns.
        columns.append("bucket")
    points = [
        EquityPoint(time=row[0], nav=row[1], balance=row[2])
        for row in snapshots.values_list(*columns)
    ]
    points.sort(key=lambda point: point.time)
    return points


def drawdown_from_peak(*, account_id: str | None = None) -> Drawdown | None:
    """The newest snapshot's NAV against the highest NAV ever snapshotted; None without snapshots.

    Deposits and withdrawals move NAV too; the figure does not separate them out.
    """
    snapshots = _snapshots(account_id)
    newest = snapshots.order_by("-time").first()
    peak = snapshots.order_by("-nav", "time").first()
    if newest is None or peak is None:
        return None
    amount = max(ZERO, peak.nav - newest.nav)
    percent = amount * HUNDRED / peak.nav if peak.nav > 0 else ZERO
    return Drawdown(
        peak_nav=peak.nav,
        peak_time=peak.time,
        nav=newest.nav,
        time=newest.time,
        amount=amount,
        percent=percent,
    )


def daily_loss(
    day: date | None = None,
    *,
    now: datetime | None = None,
    account_id: str | None = None,
) -> DailyLoss:
    """The P&L of a trading day for the daily loss limit (default: the day ``now`` falls in).

    ``pl = realised + unrealised_end - unrealised_start``, where

    * ``realised`` is the result (``realized_pl + financing``) of the trades closed from the day's
      start (17:00 New York the evening before) up to ``as_of`` = the earlier of ``now`` and the
      day's end;
    * ``unrealised_start`` is the unrealised P&L of the last snapshot at or before the day's
      start (the first snapshot of the day when none is older; zero when there is none at all);
    * ``unrealised_end`` is, for the current day, the unrealised P&L now (``unrealized_pl``), and
      for a past day that of the last snapshot before its end.

    A trade open at the start and closed during the day therefore counts only what it lost
    during the day. ``loss`` is ``max(0, -pl)`` and ``loss_percent`` divides it by the NAV of the
    start snapshot. Partial closes of trades still open are not counted until they close (their
    time is not recorded), and neither is financing on open trades.
    """
    now = now or timezone.now()
    day = day or trading_day(now)
    day_start, day_end = trading_day_bounds(day)
    as_of = min(now, day_end)
    snapshots = _snapshots(account_id)
    start_snapshot = (
        snapshots.filter(time__lte=day_start).order_by("-time").first()
        or snapshots.filter(time__gt=day_start, time__lt=as_of).order_by("time").first()
    )
    if as_of < day_end:
        unrealized_end = unrealized_pl(account_id=account_id)
    else:
        end_snapshot = snapshots.filter(time__lt=day_end).order_by("-time").first()
        unrealized_end = end_snapshot.unrealized_pl if end_snapshot else ZERO
    return DailyLoss(
        day=day,
        as_of=as_of,
        realized_pl=realized_pl(start=day_start, end=as_of, account_id=account_id),
        unrealized_start=start_snapshot.unrealized_pl if start_snapshot else ZERO,
        unrealized_end=unrealized_end,
        nav_at_start=start_snapshot.nav if start_snapshot else None,
    )
