"""Reads for the operator console: the dashboard's panels and a pair's chart window.

Every read is bounded: a fixed number of queries whatever the size of the candle hypertable, and
each candle or metrics read covers only the requested window (the (pair, timeframe, time) indexes
serve them), so pages stay fast with years of M1 candles stored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from marketdata.models import Pair
from marketdata.selectors import Bar, broker_now, candles_between, candles_last, stream_state
from marketdata.timeframes import Timeframe, timeframe_duration
from monitoring.models import Alert
from monitoring.models import Heartbeat as MonitoringHeartbeat
from monitoring.selectors import alerts_unresolved
from qfh.models import CandleMetrics
from septrader.models import AuditLog, Node
from septrader.selectors import config_values
from trading.market import market_status_at, pair_schedule, pairs_market_open
from trading.models import AccountSnapshot, Trade, TradingSignal, TradingState
from trading.performance import (
    DailyLoss,
    DayPerformance,
    Drawdown,
    daily_loss,
    daily_performance,
    drawdown_from_peak,
)
from trading.schedule import ScheduleError, trading_day_bounds
from trading.selectors import account_snapshot_latest, performance_today

logger = logging.getLogger(__name__)

RECENT_ROWS = 10
# Live the broker's clock is the wall clock within a second (plus the streamer's publishing
# interval); a minute apart is a market being replayed.
REPLAYED_AFTER = timedelta(minutes=1)
OPEN_TRADES_SHOWN = 50


def operator_time_zone() -> ZoneInfo:
    return ZoneInfo(settings.OPERATOR_TIME_ZONE)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _age_seconds(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else max(0.0, (now - moment).total_seconds())


@dataclass(frozen=True)
class MarketPanel:
    open: bool
    reason: str
    next_change: datetime | None
    error: str = ""
    # The other markets the enabled pairs trade on (metals, crypto), each on its own schedule:
    # (schedule name, open, reason, next change).
    others: tuple[tuple[str, bool, str, datetime | None], ...] = ()


@dataclass(frozen=True)
class AccountPanel:
    snapshot: AccountSnapshot | None
    # Today's P&L as the daily loss limit counts it (trading.performance.daily_loss).
    today: DailyLoss
    closed_today: int
    drawdown: Drawdown | None
    day_start: datetime


@dataclass(frozen=True)
class PairLag:
    pair: str
    last_price_received: datetime | None
    price_age_seconds: float | None
    last_candle_time: datetime | None
    candle_age_seconds: float | None
    source: str
    stale: bool


@dataclass(frozen=True)
class Heartbeat:
    component: str
    last_seen: datetime | None
    age_seconds: float | None
    stale: bool
    state: str = ""


@dataclass(frozen=True)
class Dashboard:
    # The local clock (heartbeats are local processes) and the broker's clock (the market's lag,
    # the schedule and "today"): the same within a second live, apart on a replayed market.
    now: datetime
    broker_now: datetime
    time_zone: str
    trading: TradingState
    market: MarketPanel
    account: AccountPanel
    open_trades: list[Trade]
    open_trade_count: int
    unrealized_total: Decimal
    pairs_by_state: dict[str, int]
    streamer_updated: datetime | None
    stream: list[PairLag]
    heartbeats: list[Heartbeat]
    alerts: list[Alert]
    alerts_unresolved: int
    recent_actions: list[AuditLog] = field(default_factory=list)
    recent_signals: list[TradingSignal] = field(default_factory=list)

    @property
    def replayed(self) -> bool:
        """Whether the broker's clock is away from the wall clock: a replayed or sped-up market
        (the demo, the simulator). Live the two agree within a second."""
        return abs(self.now - self.broker_now) > REPLAYED_AFTER


def _market(broker_time: datetime) -> MarketPanel:
    try:
        status = market_status_at(broker_time)
    except ScheduleError as error:
        # A broken maintenance window must not take the console down with it.
        return MarketPanel(open=False, reason="unknown", next_change=None, error=str(error))
    return MarketPanel(
        open=status.open,
        reason=status.reason,
        next_change=status.next_change,
        others=_other_markets(broker_time),
    )


def _other_markets(broker_time: datetime) -> tuple[tuple[str, bool, str, datetime | None], ...]:
    """One row per schedule other than FX that an enabled pair trades on (gold's break, the
    crypto week), named as the admin names the schedule."""
    fx = pair_schedule(None)
    seen: dict[str, str] = {}
    for symbol in (
        Pair.objects.filter(enabled=True).order_by("symbol").values_list("symbol", flat=True)
    ):
        schedule = pair_schedule(symbol)
        if schedule != fx and schedule.name not in seen:
            seen[schedule.name] = symbol
    rows = []
    for name, symbol in seen.items():
        status = market_status_at(broker_time, pair=symbol)
        rows.append((name, status.open, status.reason, status.next_change))
    return tuple(rows)


def _account(broker_time: datetime) -> AccountPanel:
    """The account at the broker's clock: its "today" is the broker's trading day, which on a
    replayed market (the demo) is the replayed day, not the wall clock's."""
    today = daily_loss(now=broker_time)
    day_start = trading_day_bounds(today.day)[0]
    return AccountPanel(
        snapshot=account_snapshot_latest(),
        today=today,
        closed_today=Trade.objects.filter(
            state=Trade.State.CLOSED, closed_at__gte=day_start, closed_at__lt=today.as_of
        ).count(),
        drawdown=drawdown_from_peak(),
        day_start=day_start,
    )


def _stream(
    now: datetime, broker_time: datetime, market_open: bool, stale_after: int
) -> tuple[datetime | None, list[PairLag]]:
    """Per pair: how old the newest price and the newest closed candle are.

    The streamer's published state is the live source; pairs it does not mention (or every pair,
    when no streamer has run) fall back to the newest stored M1 candle, one indexed read each.
    A price's age runs from when this machine received it, on the local clock; a candle's lag
    runs from its close, on the broker's clock, since its time is the market's: on a replayed
    market the wall clock would put every candle years behind.
    """
    try:
        state = stream_state() or {}
    except Exception as error:  # The cache being down is shown, not raised.
        logger.warning("event=dashboard_stream_state_unreadable error=%s", error)
        state = {}
    published = state.get("pairs") or {}
    wanted = set(Pair.objects.filter(enabled=True).values_list("symbol", flat=True))
    wanted |= set(published)
    # Each pair's own market: bitcoin's prices are expected through the FX weekend.
    try:
        own_market = pairs_market_open(wanted, broker_time)
    except ScheduleError:
        own_market = {}
    lags = []
    for pair in sorted(wanted):
        entry = published.get(pair) or {}
        received = _parse_time(entry.get("last_price_received"))
        candle_time = _parse_time(entry.get("last_candle_time"))
        source = "streamer"
        if candle_time is None:
            newest = candles_last(pair=pair, timeframe=Timeframe.M1, count=1)
            candle_time = newest[0].time if newest else None
            source = "stored candles" if not entry else source
        # A candle is closed one period after its start: the lag is counted from its close.
        closed_at = candle_time + timedelta(minutes=1) if candle_time else None
        price_age = _age_seconds(now, received)
        lags.append(
            PairLag(
                pair=pair,
                last_price_received=received,
                price_age_seconds=price_age,
                last_candle_time=candle_time,
                candle_age_seconds=_age_seconds(broker_time, closed_at),
                source=source,
                # On a closed market no prices is what should happen.
                stale=own_market.get(pair, market_open)
                and (price_age is None or price_age > stale_after),
            )
        )
    return _parse_time(state.get("updated")), lags


def _heartbeats(now: datetime, stale_after: int) -> list[Heartbeat]:
    """Execution nodes, then every component the monitoring heartbeats know (workers, beat)."""
    rows = [(f"node:{node.name}", node.last_heartbeat, node.state) for node in Node.objects.all()]
    rows += [
        (beat.component, beat.last_seen, "")
        for beat in MonitoringHeartbeat.objects.order_by("component")
    ]
    beats = []
    for component, last_seen, state in rows:
        age = _age_seconds(now, last_seen)
        beats.append(
            Heartbeat(
                component=component,
                last_seen=last_seen,
                age_seconds=age,
                stale=age is None or age > stale_after,
                state=state,
            )
        )
    return beats


def _alerts() -> tuple[list[Alert], int]:
    """The unresolved alerts, newest first, then the most recently resolved ones up to the
    panel's length; and how many are unresolved."""
    unresolved = alerts_unresolved()
    shown = list(unresolved[:RECENT_ROWS])
    if len(shown) < RECENT_ROWS:
        resolved = Alert.objects.filter(resolved_at__isnull=False).order_by("-resolved_at")
        shown += list(resolved[: RECENT_ROWS - len(shown)])
    return shown, unresolved.count()


def dashboard_summary(now: datetime | None = None) -> Dashboard:
    """Everything the console's front page shows, in a fixed number of queries."""
    now = now or timezone.now()
    broker_time = broker_now(now)
    trading, _ = TradingState.objects.get_or_create(pk=1)
    open_trades = Trade.objects.filter(state=Trade.State.OPEN).order_by("-opened_at")
    totals = open_trades.aggregate(count=Count("id"), unrealized=Sum("unrealized_pl"))
    market = _market(broker_time)
    thresholds = config_values("monitoring.")
    streamer_updated, stream = _stream(
        now, broker_time, market.open, thresholds["monitoring.stale_price_seconds"]
    )
    alerts, unresolved_count = _alerts()
    return Dashboard(
        now=now,
        broker_now=broker_time,
        time_zone=settings.OPERATOR_TIME_ZONE,
        trading=trading,
        market=market,
        account=_account(broker_time),
        # The pair's display precision formats the prices.
        open_trades=list(open_trades.select_related("pair")[:OPEN_TRADES_SHOWN]),
        open_trade_count=totals["count"],
        unrealized_total=totals["unrealized"] or Decimal(0),
        pairs_by_state=dict(
            Pair.objects.values_list("state").annotate(count=Count("id")).order_by("state")
        ),
        streamer_updated=streamer_updated,
        stream=stream,
        heartbeats=_heartbeats(now, thresholds["monitoring.heartbeat_stale_seconds"]),
        alerts=alerts,
        alerts_unresolved=unresolved_count,
        recent_actions=list(AuditLog.objects.order_by("-time", "-id")[:RECENT_ROWS]),
        recent_signals=list(TradingSignal.objects.order_by("-time", "-id")[:RECENT_ROWS]),
    )


class PageRequestError(ValueError):
    """A page parameter that cannot be used; the message names it and what was expected, and
    ``field`` names it alone (the chart's JSON answers carry it)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# ----- daily performance -------------------------------------------------------------------------

DAILY_DAYS_DEFAULT = 7
DAILY_DAYS_MOST = 92
TRADES_OF_THE_DAY_SHOWN = 100


@dataclass(frozen=True)
class DailyPerformancePage:
    today: date
    # Newest day first.
    days: list[DayPerformance]
    # The trades closed on ``today``, newest first, with their pair (for its display precision).
    trades_today: list[Trade]
    currency: str


def daily_days(value: str | None) -> int:
    """How many trading days the daily performance page asks for (``?days=``)."""
    if value in (None, ""):
        return DAILY_DAYS_DEFAULT
    try:
        days = int(str(value))
    except ValueError:
        days = 0
    if not 1 <= days <= DAILY_DAYS_MOST:
        raise PageRequestError(
            f"days={value!r} is not valid; expected a whole number from 1 to {DAILY_DAYS_MOST}.",
            field="days",
        )
    return days


def daily_performance_summary(days: int = DAILY_DAYS_DEFAULT) -> DailyPerformancePage:
    """The console's daily performance page: the ``days`` trading days up to today, today being
    the broker's (``trading.selectors.performance_today``, as the API's), so on a replayed market
    the replayed day's trades are today's."""
    today = performance_today()
    start, end = trading_day_bounds(today)
    snapshot = account_snapshot_latest()
    trades_today = (
        Trade.objects.filter(state=Trade.State.CLOSED, closed_at__gte=start, closed_at__lt=end)
        .select_related("pair")
        .order_by("-closed_at")
    )
    return DailyPerformancePage(
        today=today,
        days=daily_performance(today - timedelta(days=days - 1), today)[::-1],
        trades_today=list(trades_today[:TRADES_OF_THE_DAY_SHOWN]),
        currency=snapshot.currency if snapshot else "",
    )


# ----- a pair's chart ----------------------------------------------------------------------------

CHART_TIMEFRAMES: tuple[str, ...] = (Timeframe.M1, Timeframe.M5, Timeframe.M15, Timeframe.H1)
# Default windows hold about 300 candles whatever the timeframe: readable, and a small read.
DEFAULT_HOURS: dict[str, int] = {
    Timeframe.M1: 6,
    Timeframe.M5: 24,
    Timeframe.M15: 72,
    Timeframe.H1: 14 * 24,
}
# More candles than this no longer fit the chart's width as anything but a smear.
MAX_CANDLES = 2000


@dataclass(frozen=True)
class ChartWindow:
    timeframe: str
    start: datetime
    end: datetime
    hours: int


@dataclass(frozen=True)
class SignalMark:
    time: datetime
    direction: str
    confidence: float
    price: Decimal | None
    status: str


@dataclass(frozen=True)
class TradeMark:
    broker_trade_id: str
    units: Decimal
    opened_at: datetime
    open_price: Decimal
    closed_at: datetime | None
    close_price: Decimal | None
    realized_pl: Decimal
    unrealized_pl: Decimal
    # The open trade's protective orders, drawn as price lines on the interactive chart.
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None


@dataclass(frozen=True)
class MetricsPoint:
    time: datetime
    coherence: float
    stability: float
    entropy: float


@dataclass(frozen=True)
class ChartData:
    window: ChartWindow
    candles: list[Bar]
    signals: list[SignalMark]
    trades: list[TradeMark]
    metrics: list[MetricsPoint]
    metrics_version: str


def chart_window(
    *, pair: str, timeframe: str | None, hours: str | None, end: str | None
) -> ChartWindow:
    """The window a chart request asks for; by default the last hours before the newest candle.

    Anchoring on the newest stored candle (one indexed read) rather than on the clock keeps the
    chart useful over a weekend or on a replayed history; a pair without candles ends at the
    broker's clock.
    """
    timeframe = timeframe or Timeframe.M1
    if timeframe not in CHART_TIMEFRAMES:
        raise PageRequestError(
            f"timeframe={timeframe!r} is not valid; expected one of {', '.join(CHART_TIMEFRAMES)}.",
            field="timeframe",
        )
    period = timeframe_duration(timeframe)
    if hours in (None, ""):
        span = DEFAULT_HOURS[timeframe]
    else:
        try:
            span = int(str(hours))
        except ValueError:
            span = 0
        most = int(MAX_CANDLES * period.total_seconds() // 3600)
        if not 1 <= span <= most:
            raise PageRequestError(
                f"hours={hours!r} is not valid; expected a whole number from 1 to {most} "
                f"(at most {MAX_CANDLES} {timeframe} candles).",
                field="hours",
            )
    if end in (None, ""):
        newest = candles_last(pair=pair, timeframe=Timeframe.M1, count=1)
        finish = newest[0].time + timedelta(minutes=1) if newest else broker_now()
    else:
        parsed = _parse_time(end)
        if parsed is None:
            raise PageRequestError(
                f"end={end!r} is not valid; expected an ISO 8601 time such as 2025-07-25T21:00Z.",
                field="end",
            )
        finish = parsed
    # Whole periods, so an aggregated candle is never cut in half at the window's edges.
    seconds = int(period.total_seconds())
    finish_epoch = -(-int(finish.timestamp()) // seconds) * seconds
    finish = datetime.fromtimestamp(finish_epoch, tz=UTC)
    return ChartWindow(
        timeframe=timeframe, start=finish - timedelta(hours=span), end=finish, hours=span
    )


def chart_signals(*, pair: str, window: ChartWindow) -> list[SignalMark]:
    """The pair's signals inside ``window``, oldest first."""
    return [
        SignalMark(time, direction, confidence, price, status)
        for time, direction, confidence, price, status in TradingSignal.objects.filter(
            pair_id=pair, time__gte=window.start, time__lt=window.end
        )
        .order_by("time")
        .values_list("time", "direction", "confidence", "price", "status")
    ]


def chart_trades(*, pair: str, window: ChartWindow) -> list[TradeMark]:
    """The pair's trades open at any time inside ``window``, oldest first."""
    return [
        TradeMark(*row)
        for row in Trade.objects.filter(pair_id=pair, opened_at__lt=window.end)
        .exclude(closed_at__lt=window.start)
        .order_by("opened_at")
        .values_list(
            "broker_trade_id",
            "initial_units",
            "opened_at",
            "open_price",
            "closed_at",
            "close_price",
            "realized_pl",
            "unrealized_pl",
            "stop_loss_price",
            "take_profit_price",
        )
    ]


def pair_chart_data(*, pair: str, window: ChartWindow) -> ChartData:
    """Candles, signals, trades and QFH metrics of one pair inside ``window``, oldest first."""

    candles = candles_between(
        pair=pair, timeframe=window.timeframe, start=window.start, end=window.end
    )
    signals = chart_signals(pair=pair, window=window)
    trades = chart_trades(pair=pair, window=window)
    metrics_rows = CandleMetrics.objects.filter(
        pair_id=pair, timeframe=window.timeframe, time__gte=window.start, time__lt=window.end
    )
    # Runs with other engine parameters can sit side by side: show the newest run's version.
    version = metrics_rows.order_by("-time").values_list("params_version", flat=True).first() or ""
    metrics = [
        MetricsPoint(time, coherence, 1.0 - rupture_ratio, entropy)
        for time, coherence, rupture_ratio, entropy in metrics_rows.filter(params_version=version)
        .order_by("time")
        .values_list("time", "coherence", "rupture_ratio", "entropy")
    ]
    return ChartData(
        window=window,
        candles=candles,
        signals=signals,
        trades=trades,
        metrics=metrics,
        metrics_version=version,
    )


def _epoch(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def _number(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


def chart_payload(data: ChartData, *, pair: str, digits: int) -> dict[str, Any]:
    """``data`` as the interactive chart reads it (console/static/console/chart.js): times in
    epoch seconds (UTC, as the chart library takes them), prices as numbers, and the pair's
    display precision so the chart formats prices as the rest of the console does."""
    window = data.window
    return {
        "pair": pair,
        "timeframe": window.timeframe,
        "digits": digits,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "candles": [
            {
                "time": _epoch(bar.time),
                "open": float(bar.open),
                "high": float(bar.high),
                "low": float(bar.low),
                "close": float(bar.close),
                "volume": bar.volume,
                "complete": bar.complete,
            }
            for bar in data.candles
        ],
        "signals": [
            {
                "time": _epoch(signal.time),
                "direction": signal.direction,
                "confidence": signal.confidence,
                "status": signal.status,
            }
            for signal in data.signals
        ],
        "trades": [
            {
                "id": trade.broker_trade_id,
                "units": float(trade.units),
                "opened_at": _epoch(trade.opened_at),
                "open_price": float(trade.open_price),
                "closed_at": _epoch(trade.closed_at),
                "close_price": _number(trade.close_price),
                "stop_loss": _number(trade.stop_loss_price),
                "take_profit": _number(trade.take_profit_price),
            }
            for trade in data.trades
        ],
        "metrics": [
            {
                "time": _epoch(point.time),
                "coherence": point.coherence,
                "stability": point.stability,
                "entropy": point.entropy,
            }
            for point in data.metrics
        ],
        "metrics_version": data.metrics_version,
    }
