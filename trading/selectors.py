"""Reads of the trading app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypedDict
from uuid import UUID

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from marketdata.cache_keys import latest_price_key
from marketdata.models import Pair
from marketdata.selectors import broker_now
from qfh.models import PairModel
from septrader.hooks import HookNotRegistered
from septrader.selectors import config_values, rows_narrowed
from trading import hooks
from trading.demotion import LiveTrade, ModelFigures
from trading.market import market_holidays
from trading.models import (
    AccountSnapshot,
    BrokerTransaction,
    Order,
    Trade,
    TradingSignal,
    TradingState,
)
from trading.paper import (
    AdvanceVerdict,
    PaperSettings,
    days_gate,
    model_gate,
    paper_trading_days,
    parity_gate,
    results_gate,
    stage_gate,
)
from trading.performance import daily_loss
from trading.schedule import trading_day

# How many of the newest transaction ids are searched for a gap (an anti-join on the primary key:
# a few milliseconds). A transaction missed longer ago than this is reconciliation's business.
GAP_SEARCH_WINDOW = 10_000


def broker_transaction_last_id(account_id: str) -> int | None:
    """The newest broker transaction id stored for the account."""
    newest: int | None = BrokerTransaction.objects.filter(account_id=account_id).aggregate(
        newest=Max("id")
    )["newest"]
    return newest


def broker_transaction_resume_id(account_id: str) -> int | None:
    """Where a catch-up starts: the last id before the first gap among the newest stored ids,
    or the newest id when there is no gap (None when nothing is stored).

    The broker numbers an account's transactions without gaps, but they reach us by several
    paths (an order's answer, the transaction stream, reconciliation): an order's answer can be
    stored while the stream that carries an earlier stop-loss fill is silent. Starting from the
    newest id would skip that fill for good.
    """
    newest = broker_transaction_last_id(account_id)
    if newest is None:
        return None
    stored = BrokerTransaction.objects.filter(account_id=account_id)
    before_gap: int = (
        stored.filter(id__gt=newest - GAP_SEARCH_WINDOW)
        .annotate(followed=Exists(stored.filter(id=OuterRef("id") + 1)))
        .filter(followed=False)
        .aggregate(first=Min("id"))["first"]
    )
    return before_gap


def account_snapshot_latest(account_id: str | None = None) -> AccountSnapshot | None:
    snapshots = AccountSnapshot.objects.all()
    if account_id is not None:
        snapshots = snapshots.filter(account_id=account_id)
    return snapshots.order_by("-time").first()


def performance_today() -> date:
    """The trading day the performance pages call today: that of the newest account snapshot,
    whose time is the broker's clock (reconciliation takes one every pass), or of the broker's
    clock before the first snapshot.

    Live, that is the current day. On a replayed market (the demo) it is the replayed day, so
    the demo's trades are on its "today", and they stay there after the demo has stopped.
    """
    latest = account_snapshot_latest()
    return trading_day(latest.time if latest is not None else broker_now())


def account_snapshot_opening(
    day_start: datetime, account_id: str | None = None
) -> AccountSnapshot | None:
    """The account as the trading day began: the last snapshot at or before ``day_start``, or,
    when none is that old (a new installation), the first one after it. The base of the daily
    loss limit and of the daily P&L figures."""
    snapshots = AccountSnapshot.objects.all()
    if account_id is not None:
        snapshots = snapshots.filter(account_id=account_id)
    return (
        snapshots.filter(time__lte=day_start).order_by("-time").first()
        or snapshots.filter(time__gte=day_start).order_by("time").first()
    )


def entries_stopped(pair: str, *, paper: bool = False) -> str | None:
    """Why no entry on ``pair`` may be sent right now (trading mode, pair state), or None.

    Read fresh from the database each time: the execution path asks it again immediately before
    an order leaves, and the ledger when an entry's fill lands, because a kill switch or a
    disable may have been committed during the broker calls in between. A real entry needs the
    pair ``trading``; a paper entry (``paper``) needs it still on paper, so an entry never
    changes kind between its first look and its last.
    """
    state = TradingState.objects.filter(pk=1).values_list("mode", "reason").first()
    if state is not None and state[0] != TradingState.Mode.TRADING:
        return f"trading is {state[0]} ({state[1] or 'no reason given'})"
    row = Pair.objects.filter(symbol=pair).values_list("enabled", "state").first()
    if row is None:
        return f"{pair} is not a known pair"
    enabled, pair_state = row
    wanted = Pair.State.PAPER if paper else Pair.State.TRADING
    if not enabled or pair_state != wanted:
        doing = "on paper" if paper else "trading"
        return f"{pair} is not {doing} (state {pair_state}, enabled={enabled})"
    return None


def demotion_trades(*, pair: str, pair_model_id: int, since: datetime) -> list[LiveTrade]:
    """The live record a demotion check judges: the trades of ``pair`` opened by the signals of
    the pair model ``pair_model_id`` whose orders were made at or after ``since``, closed, in
    closing order. Paper trades are not live: they are the paper record (``paper_record``).

    Trades opened by hand at the broker, and entries that filled after a stop and were closed at
    once (``late_fill_reason``), are not the model's decisions and are left out.
    """
    return _model_record(
        pair=pair,
        trades=Trade.objects.filter(
            paper=False,
            # Our clock (the order row's), like the promotion's: the broker's may be replayed.
            order__created_at__gte=since,
            order__signal__pair_model_id=pair_model_id,
            order__late_fill_reason="",
        ),
    )


def paper_record(
    *, pair: str, pair_model_id: int, promoted_at: datetime, paper_started_at: datetime
) -> list[LiveTrade]:
    """The paper record the promotion to live judges: the closed paper trades of ``pair`` that
    the signals of the pair model ``pair_model_id`` opened since its promotion (our clock, the
    order row's) and since the paper stage began (the broker's clock, the trade's)."""
    return _model_record(
        pair=pair,
        trades=Trade.objects.filter(
            paper=True,
            opened_at__gte=paper_started_at,
            order__created_at__gte=promoted_at,
            order__signal__pair_model_id=pair_model_id,
        ),
    )


def paper_settings() -> PaperSettings:
    values = {**config_values("paper."), **config_values("demotion.")}
    return PaperSettings(
        trading_days=int(values["paper.trading_days"]),
        min_trades=int(values["paper.min_trades"]),
        confidence_percent=Decimal(str(values["demotion.confidence_percent"])),
        drawdown_multiple=Decimal(str(values["demotion.drawdown_multiple"])),
    )


def parity_unexplained_since(pair: str, since: date) -> int | None:
    """The parity app's count of unexplained signal mismatches of ``pair`` since ``since``; None
    when no parity app answers (never read as none)."""
    try:
        return hooks.parity_unexplained(pair, since)
    except HookNotRegistered:
        return None


def paper_advance_verdict(pair: Pair, *, now: datetime | None = None) -> AdvanceVerdict:
    """Whether ``pair`` may advance from paper to live, gate by gate (trading/paper.py): it is on
    paper; its pair model is promoted; ``paper.trading_days`` New York trading days on paper have
    completed (on the broker's clock); the model's paper record is inside its out-of-sample
    interval; and the parity reports since paper began hold no unexplained mismatch."""
    now = now or broker_now()
    settings = paper_settings()
    started = pair.paper_started_at
    model = PairModel.objects.filter(pair_id=pair.symbol, promoted=True).first()
    figures = (
        ModelFigures(
            trades=model.oos_trades,
            hit_rate=model.oos_hit_rate,
            max_drawdown_pips=model.oos_max_drawdown_pips,
        )
        if model is not None
        else None
    )
    gates = [
        stage_gate(pair.symbol, pair.state, started),
        model_gate(model.pk if model else None, figures),
    ]
    if started is None:
        return AdvanceVerdict(tuple(gates))
    holidays = market_holidays(range(started.year, now.year + 1))
    gates.append(days_gate(paper_trading_days(started, now, holidays), settings))
    record = (
        paper_record(
            pair=pair.symbol,
            pair_model_id=model.pk,
            promoted_at=model.promoted_at,
            paper_started_at=started,
        )
        if model is not None and model.promoted_at is not None
        else []
    )
    gates.append(results_gate(record, figures, settings))
    since = trading_day(started)
    gates.append(parity_gate(parity_unexplained_since(pair.symbol, since), since))
    return AdvanceVerdict(tuple(gates))


def _model_record(*, pair: str, trades: QuerySet[Trade]) -> list[LiveTrade]:
    """``trades`` of ``pair`` that have closed, as net results in money and pips, in closing
    order."""
    pip_location = Pair.objects.filter(symbol=pair).values_list("pip_location", flat=True).first()
    pip = Decimal(10) ** (pip_location if pip_location is not None else -4)
    rows = (
        trades.filter(
            pair_id=pair,
            state=Trade.State.CLOSED,
            closed_at__isnull=False,
            close_price__isnull=False,
        )
        .order_by("closed_at", "id")
        .values_list("initial_units", "open_price", "close_price", "realized_pl", "financing")
    )
    record = []
    for units, open_price, close_price, realized_pl, financing in rows:
        assert close_price is not None  # filtered above
        # A buy gains when the price rises, a sell when it falls; the fills carry the spread.
        move = (close_price - open_price) if units > 0 else (open_price - close_price)
        record.append(LiveTrade(net_pl=realized_pl + financing, net_pips=move / pip))
    return record


def signals_listed(
    *,
    pair: str | None = None,
    status: str | None = None,
    direction: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[TradingSignal]:
    """Signals, newest first: of one pair, status and direction when given, timed in
    [start, end)."""
    rows = TradingSignal.objects.order_by("-time")
    return rows_narrowed(
        rows, start=start, end=end, pair_id=pair, status=status, direction=direction
    )


def orders_listed(
    *,
    pair: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    paper: bool | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Order]:
    """Orders, newest first: of one pair, status and kind, paper or not, when given, created in
    [start, end)."""
    rows = Order.objects.order_by("-created_at", "-id")
    return rows_narrowed(
        rows,
        time_field="created_at",
        start=start,
        end=end,
        pair_id=pair,
        status=status,
        kind=kind,
        paper=paper,
    )


def trades_listed(
    *,
    pair: str | None = None,
    state: str | None = None,
    paper: bool | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[Trade]:
    """Trades, newest first: of one pair and state (OPEN, CLOSED), paper or not, when given,
    opened in [start, end)."""
    rows = Trade.objects.order_by("-opened_at", "-id")
    return rows_narrowed(
        rows,
        time_field="opened_at",
        start=start,
        end=end,
        pair_id=pair,
        state=state,
        paper=paper,
    )


# ----- the status endpoints (/api/status, /api/trading/status, /api/pairs/status): a few queries
# over every pair, however many there are.


def trading_state_current() -> TradingState:
    """The single TradingState row (its defaults until something has written it)."""
    state = TradingState.objects.filter(pk=1).first()
    return state if state is not None else TradingState(pk=1)


def _age_seconds(text: str | None, now: datetime) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((now - moment).total_seconds(), 3)


_SIGNAL_FIELDS = ("id", "pair_id", "time", "timeframe", "direction", "confidence", "status")


class SignalValues(TypedDict):
    """A TradingSignal row as ``values(*_SIGNAL_FIELDS)`` reads it."""

    id: UUID
    pair_id: str
    time: datetime
    timeframe: str
    direction: str
    confidence: float
    status: str


class OpenPosition(TypedDict):
    trades: int
    units: Decimal
    unrealized_pl: Decimal


class LastPrice(TypedDict):
    """The streamer's cached price of a pair (marketdata/streaming.py), as it wrote it."""

    bid: str | None
    ask: str | None
    time: str | None
    tradeable: bool | None


class LastSignal(TypedDict):
    id: str
    time: datetime
    timeframe: str
    direction: str
    confidence: float
    status: str


class PairStatusRow(TypedDict):
    """One row of ``pairs_status`` (the shape of serializers.PairStatusSerializer)."""

    pair: str
    state: str
    state_reason: str
    enabled: bool
    forced_without_model: bool
    paper_started_at: datetime | None
    node: str | None
    risk_overrides: dict[str, Any]
    # The position at the broker (real trades), and the pair's paper trades apart.
    open_position: OpenPosition | None
    paper_position: OpenPosition | None
    last_price: LastPrice | None
    last_price_age_seconds: float | None
    last_signal: LastSignal | None


def _last_signals(symbols: list[str]) -> dict[str, SignalValues]:
    # Plain rows rather than model instances: this read serves the most polled endpoint.
    signals = TradingSignal.objects.values(*_SIGNAL_FIELDS)
    if connection.vendor == "postgresql":
        # One query: the newest signal of each pair (DISTINCT ON keeps the first row per pair).
        newest = (
            signals.filter(pair_id__in=symbols).order_by("pair_id", "-time").distinct("pair_id")
        )
        return {str(signal["pair_id"]): signal for signal in newest}
    found: dict[str, SignalValues] = {}
    for symbol in symbols:
        signal = signals.filter(pair_id=symbol).order_by("-time").first()
        if signal is not None:
            found[symbol] = signal
    return found


def _position(row: dict[str, Any] | None) -> OpenPosition | None:
    if row is None:
        return None
    return {"trades": row["trades"], "units": row["units"], "unrealized_pl": row["unrealized_pl"]}


def pairs_status(
    *, active_only: bool = False, symbol: str | None = None, now: datetime | None = None
) -> list[PairStatusRow]:
    """Every pair (the enabled ones, or one): lifecycle state, node, open position, the age of
    the last price from the streamer, and the last signal."""
    now = now or timezone.now()
    pairs = Pair.objects.values(
        "symbol",
        "state",
        "state_reason",
        "enabled",
        "forced_without_model",
        "paper_started_at",
        "risk_overrides",
        "node__name",
    ).order_by("symbol")
    if active_only:
        pairs = pairs.filter(enabled=True)
    if symbol is not None:
        pairs = pairs.filter(symbol=symbol)
    pair_list = list(pairs)
    symbols = [pair["symbol"] for pair in pair_list]
    positions = {
        (row["pair_id"], row["paper"]): row
        for row in Trade.objects.filter(state=Trade.State.OPEN, pair_id__in=symbols)
        .values("pair_id", "paper")
        .annotate(
            trades=Count("id"), units=Sum("current_units"), unrealized_pl=Sum("unrealized_pl")
        )
    }
    prices = cache.get_many([latest_price_key(symbol) for symbol in symbols])
    signals = _last_signals(symbols)
    rows: list[PairStatusRow] = []
    for pair in pair_list:
        symbol = pair["symbol"]
        price = prices.get(latest_price_key(symbol))
        signal = signals.get(symbol)
        rows.append(
            {
                "pair": symbol,
                "state": pair["state"],
                "state_reason": pair["state_reason"],
                "enabled": pair["enabled"],
                "forced_without_model": pair["forced_without_model"],
                "paper_started_at": pair["paper_started_at"],
                "node": pair["node__name"],
                "risk_overrides": pair["risk_overrides"],
                "open_position": _position(positions.get((symbol, False))),
                "paper_position": _position(positions.get((symbol, True))),
                "last_price": {
                    "bid": price.get("bid"),
                    "ask": price.get("ask"),
                    "time": price.get("time"),
                    "tradeable": price.get("tradeable"),
                }
                if price
                else None,
                "last_price_age_seconds": _age_seconds(price.get("time"), now) if price else None,
                "last_signal": {
                    "id": str(signal["id"]),
                    "time": signal["time"],
                    "timeframe": signal["timeframe"],
                    "direction": signal["direction"],
                    "confidence": signal["confidence"],
                    "status": signal["status"],
                }
                if signal
                else None,
            }
        )
    return rows


@dataclass(frozen=True)
class Counts:
    pairs: int
    pairs_enabled: int
    open_trades: int
    pending_orders: int
    signals_new: int


def counts() -> Counts:
    pairs = Pair.objects.aggregate(total=Count("id"), enabled=Count("id", filter=Q(enabled=True)))
    return Counts(
        pairs=pairs["total"],
        pairs_enabled=pairs["enabled"],
        open_trades=Trade.objects.filter(state=Trade.State.OPEN, paper=False).count(),
        pending_orders=Order.objects.filter(status=Order.Status.PENDING, paper=False).count(),
        signals_new=TradingSignal.objects.filter(status=TradingSignal.Status.NEW).count(),
    )


def account_latest() -> AccountSnapshot | None:
    return account_snapshot_latest()


def open_trades_unrealized() -> Decimal:
    total = Trade.objects.filter(state=Trade.State.OPEN, paper=False).aggregate(
        total=Sum("unrealized_pl")
    )
    return total["total"] or Decimal(0)


class TodayPl(TypedDict):
    day: date
    pl: Decimal
    realized_pl: Decimal
    loss_percent: Decimal | None


def today_pl(now: datetime | None = None) -> TodayPl:
    """The P&L of the current 17:00 New York trading day: realised on trades closed in it, and
    the change in unrealised P&L since it started (``trading.performance.daily_loss``), at the
    broker's clock: on a replayed market its day is the replayed one."""
    loss = daily_loss(now=now or broker_now())
    return {
        "day": loss.day,
        "pl": loss.pl,
        "realized_pl": loss.realized_pl,
        "loss_percent": loss.loss_percent,
    }
