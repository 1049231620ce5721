"""From a claimed signal to an order at OANDA, exactly once (DESIGN.md section 4, step 3).

1. The signal is claimed with a conditional update; whoever loses the race does nothing.
2. Entries on the account are serialised by a PostgreSQL advisory lock, so two signals arriving
   together cannot both pass "one position per pair" or "max open trades".
3. Market schedule, pair state and every risk rule (``trading.risk``) are checked on live broker
   figures (account summary and price with its conversion factors).
4. The Order row, with a client id derived from the signal id, is committed *before* the request
   leaves. Then the market order goes out once, with the stop-loss (distance) and take-profit
   (price) attached on fill, so the stops live at the broker from the first moment.
5. The broker's answer is applied through ``trading.ledger`` like any other transaction. A timeout
   or dropped connection is never retried blindly: the order is looked up by ``@client_id``; only
   when the broker says it never saw it is the same request (same client id) sent again.
   When even the lookup fails the order stays ``pending`` for reconciliation to settle.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, F, Max, Sum, Value, When
from django.utils import timezone

from marketdata import oanda
from marketdata.broker_time import parse_broker_time
from marketdata.models import Pair
from marketdata.timeframes import timeframe_duration
from septrader.locks import advisory_lock
from septrader.selectors import config_values
from septrader.services import audit_record
from trading import risk
from trading.ledger import (
    TRADE_SUFFIX,
    decimal_or_zero,
    response_transactions_apply,
    transactions_apply,
)
from trading.market import market_is_open
from trading.models import AccountSnapshot, Order, Trade, TradingSignal, TradingState
from trading.routing import signal_forward_if_foreign
from trading.schedule import trading_day, trading_day_bounds
from trading.selectors import account_snapshot_opening, entries_stopped

logger = logging.getLogger(__name__)

# The key of the advisory lock that serialises entries on one database (any constant works; this
# one spells "SEPX" so it is recognisable in pg_locks).
ENTRY_LOCK_KEY = 0x53455058

_clients = threading.local()


def broker_client() -> oanda.OandaClient:
    """One OANDA client per thread (requests sessions are not thread-safe), built once."""
    client: oanda.OandaClient | None = getattr(_clients, "client", None)
    if client is None:
        client = oanda.OandaClient()
        _clients.client = client
    return client


def client_order_id(signal_id: UUID | str) -> str:
    """The client id of the order a signal makes: the same signal can only ever mean one order."""
    return f"sep-{str(signal_id).replace('-', '')}"


def trade_client_id(order_client_id: str) -> str:
    """The client id the broker gives the trade an order opens (a separate id: OANDA keeps order
    and trade client ids in one namespace, so reusing the order's would hide the order)."""
    return f"{order_client_id}{TRADE_SUFFIX}"


@dataclass(frozen=True)
class Outcome:
    signal_id: str
    status: str
    reason: str = ""
    client_id: str = ""
    order_status: str = ""


# How long a stop (kill switch, pair disable, reducing mode) waits for an entry in flight: an entry
# is three broker round trips (price, account, order), each with OANDA's 5 s connect + 15 s read
# timeouts in the worst case. A stop that waits longer goes on and reports it; the entry then
# closes its own fill (``late_fills_close``).
ENTRY_DRAIN_SECONDS = 30.0

# Which thread holds the entry lock, and how deeply (the lock is re-entrant within a thread, as
# PostgreSQL's advisory locks are within a session).
_lock_state = threading.local()


@contextmanager
def _file_lock(timeout: float | None) -> Iterator[bool]:
    """SQLite (the demo) serialises single writes, not a whole entry with its broker calls: an
    exclusive lock on a file beside the database does that for every process of the install.
    The kernel releases it when a killed process's descriptor closes. Yields whether it was
    taken within ``timeout`` seconds (None: waits as long as it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.DATA_DIR / "entry.lock", "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process_lock(timeout: float | None) -> AbstractContextManager[bool]:
    if connection.vendor == "postgresql":
        return advisory_lock(ENTRY_LOCK_KEY, wait=True if timeout is None else timeout)
    return _file_lock(timeout)


@contextmanager
def entry_lock(*, timeout: float | None = None) -> Iterator[bool]:
    """Serialise entries, and the stops that must not race them, across every executor.

    Entries hold it from their first broker call until their order's answer is recorded; the
    kill switch, disabling a pair and reducing mode take it after their change is committed, so
    when they answer no entry that passed its last check before the change is still in flight.
    A session-level PostgreSQL advisory lock (released by PostgreSQL when a killed executor's
    connection drops), or a file lock on SQLite. Yields False when ``timeout`` seconds passed
    without it.
    """
    depth = getattr(_lock_state, "depth", 0)
    if depth:
        _lock_state.depth = depth + 1
        try:
            yield True
        finally:
            _lock_state.depth = depth
        return
    with _process_lock(timeout) as taken:
        if not taken:
            yield False
            return
        _lock_state.depth = 1
        try:
            yield True
        finally:
            _lock_state.depth = 0


# ----- inputs ------------------------------------------------------------------------------------


def limits_for(pair: Pair, values: dict[str, Any] | None = None) -> risk.RiskLimits:
    """SystemConfig ``risk.*`` with the pair's overrides (same names, without the prefix)."""
    merged = dict(values if values is not None else config_values("risk."))
    for name, value in (pair.risk_overrides or {}).items():
        merged[f"risk.{name}"] = value
    return risk.RiskLimits(
        risk_per_trade_percent=Decimal(str(merged["risk.per_trade_percent"])),
        max_units_per_order=Decimal(str(merged["risk.max_units_per_order"])),
        max_units_per_pair=Decimal(str(merged["risk.max_units_per_pair"])),
        max_open_trades=int(merged["risk.max_open_trades"]),
        max_margin_used_percent=Decimal(str(merged["risk.max_margin_used_percent"])),
        one_position_per_pair=bool(merged["risk.one_position_per_pair"]),
        max_spread_pips=Decimal(str(merged["risk.max_spread_pips"])),
        stale_price_seconds=int(merged["risk.stale_price_seconds"]),
        max_orders_per_minute=int(merged["risk.max_orders_per_minute"]),
        daily_loss_limit_percent=Decimal(str(merged["risk.daily_loss_limit_percent"])),
        max_drawdown_percent=Decimal(str(merged["risk.max_drawdown_percent"])),
        loss_streak_length=int(merged["risk.loss_streak_length"]),
        loss_streak_cooldown_minutes=int(merged["risk.loss_streak_cooldown_minutes"]),
    )


def fetch_quote(client: oanda.OandaClient, pair: str) -> tuple[risk.Quote, datetime]:
    """The pair's current price from the broker, and the broker's clock at that moment.

    The broker's clock is the one the entry is judged by (price age, market hours, trading day):
    it is the real clock in production and the simulated one against the simulator.
    """
    body = client.request(oanda.PricingInfo(client.account_id, params={"instruments": pair}))
    price = body["prices"][0]
    factors = price.get("quoteHomeConversionFactors") or {}
    quote = risk.Quote(
        bid=Decimal(price["bids"][0]["price"] if price.get("bids") else price["closeoutBid"]),
        ask=Decimal(price["asks"][0]["price"] if price.get("asks") else price["closeoutAsk"]),
        time=parse_broker_time(price["time"]),
        tradeable=bool(price.get("tradeable", True)),
        quote_home_positive=Decimal(factors.get("positiveUnits", "1")),
        quote_home_negative=Decimal(factors.get("negativeUnits", "1")),
    )
    broker_now = parse_broker_time(body["time"]) if body.get("time") else timezone.now()
    return quote, broker_now


def account_snapshot_take(
    client: oanda.OandaClient, *, now: datetime | None = None
) -> AccountSnapshot:
    """Ask the broker for the account summary and keep it as a snapshot."""
    account = client.request(oanda.AccountSummary(client.account_id))["account"]
    return AccountSnapshot.objects.create(
        account_id=client.account_id,
        time=now or timezone.now(),
        currency=account.get("currency", "USD"),
        balance=decimal_or_zero(account.get("balance")),
        nav=decimal_or_zero(account.get("NAV")),
        unrealized_pl=decimal_or_zero(account.get("unrealizedPL")),
        realized_pl=decimal_or_zero(account.get("pl")),
        financing=decimal_or_zero(account.get("financing")),
        margin_used=decimal_or_zero(account.get("marginUsed")),
        margin_available=decimal_or_zero(account.get("marginAvailable")),
        open_trade_count=int(account.get("openTradeCount", 0)),
        pending_order_count=int(account.get("pendingOrderCount", 0)),
        last_transaction_id=int(account["lastTransactionID"])
        if account.get("lastTransactionID")
        else None,
    )


def trading_day_start(now: datetime) -> datetime:
    """The UTC start of the 17:00 New York trading day containing ``now``."""
    return trading_day_bounds(trading_day(now))[0]


def account_figures(snapshot: AccountSnapshot, now: datetime) -> risk.AccountFigures:
    peak = AccountSnapshot.objects.filter(account_id=snapshot.account_id).aggregate(
        peak=Max("nav")
    )["peak"]
    start = account_snapshot_opening(trading_day_start(now), snapshot.account_id)
    opening = start.nav if start is not None else snapshot.nav
    return risk.AccountFigures(
        nav=snapshot.nav,
        margin_used=snapshot.margin_used,
        peak_nav=max(peak or snapshot.nav, snapshot.nav),
        day_start_nav=opening,
        day_pl=snapshot.nav - opening,
    )


def loss_streak(now: datetime) -> tuple[int, datetime | None]:
    """Losses in a row among the most recently closed trades, and when the last one closed."""
    recent = Trade.objects.filter(state=Trade.State.CLOSED).order_by("-closed_at")[:50]
    streak = 0
    last_loss_at = None
    for trade in recent.values_list("realized_pl", "financing", "closed_at"):
        if trade[0] + trade[1] >= 0:
            break
        streak += 1
        last_loss_at = last_loss_at or trade[2]
    return streak, last_loss_at


def stop_distances(
    signal: TradingSignal, values: dict[str, Any] | None = None
) -> tuple[Decimal, Decimal | None]:
    """Stop-loss and take-profit pips, in the pair's own pips: the pair model's when it names
    them, else the pair's override, else SystemConfig (FX pips; a metal or CFD pair must name its
    own: ``risk.instrument_settings_problem``)."""
    defaults = values if values is not None else config_values("execution.")
    params = _model_params(signal)
    overrides = signal.pair.risk_overrides or {}

    def distance(name: str) -> Decimal:
        value = params.get(name, overrides.get(name, defaults[f"execution.{name}"]))
        return Decimal(str(value))

    take = distance("take_profit_pips")
    return distance("stop_loss_pips"), (take if take > 0 else None)


def _model_params(signal: TradingSignal) -> dict[str, Any]:
    if signal.pair_model_id and signal.pair_model:
        return dict(signal.pair_model.params or {})
    return {}


def _on_pair(pair: Pair, field: str) -> Case:
    """A column's value on the rows of ``pair``, zero elsewhere (for one-query totals)."""
    return Case(When(pair=pair.symbol, then=F(field)), default=Value(Decimal(0)))


def trading_state() -> TradingState:
    state, _ = TradingState.objects.get_or_create(pk=1)
    return state


def market_open(pair: str, now: datetime) -> tuple[bool, str]:
    return market_is_open(pair=pair, at=now)


# ----- the entry path ----------------------------------------------------------------------------


def signal_claim(signal_id: UUID | str) -> bool:
    """Take the signal for this executor; False when another one (or an earlier run) has it."""
    return (
        TradingSignal.objects.filter(pk=signal_id, status=TradingSignal.Status.NEW).update(
            status=TradingSignal.Status.CLAIMED, updated_at=timezone.now()
        )
        == 1
    )


def _finish(signal: TradingSignal, status: str, reason: str = "", **result: Any) -> Outcome:
    TradingSignal.objects.filter(pk=signal.pk, status=TradingSignal.Status.CLAIMED).update(
        status=status,
        status_reason=reason[:500],
        executed=status == TradingSignal.Status.EXECUTED,
        result={**signal.result, **result},
        updated_at=timezone.now(),
    )
    logger.info(
        "event=signal_%s signal=%s pair=%s reason=%r", status, signal.pk, signal.pair_id, reason
    )
    return Outcome(
        signal_id=str(signal.pk),
        status=status,
        reason=reason,
        client_id=str(result.get("client_id", "")),
        order_status=str(result.get("order_status", "")),
    )


def signal_execute(
    *,
    signal_id: UUID | str,
    client: oanda.OandaClient | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Execute one signal at most once; every outcome is stored on the signal.

    ``now`` defaults to the broker's clock (see ``fetch_quote``); the signal's age is measured on
    our own clock from when it was stored, so it holds against a simulator's clock too, and on
    the broker's clock from when its candle closed.
    """
    # Cluster (DESIGN.md section 9): a node's executor passes on signals of other nodes' pairs.
    forwarded = signal_forward_if_foreign(signal_id)
    if forwarded is not None:
        return Outcome(str(signal_id), "forwarded", f"its pair is served by {forwarded}")
    if not signal_claim(signal_id):
        current = TradingSignal.objects.filter(pk=signal_id).values_list("status", flat=True)
        return Outcome(str(signal_id), current.first() or "missing", "already claimed")
    signal = TradingSignal.objects.select_related("pair", "pair_model").get(pk=signal_id)
    # Every setting in one query; the entry below reads the risk, execution and signal keys.
    values = config_values("")
    max_age = values["signals.max_age_seconds"]
    if (timezone.now() - signal.created_at).total_seconds() > max_age:
        return _finish(
            signal,
            TradingSignal.Status.EXPIRED,
            f"the signal is older than signals.max_age_seconds={max_age}",
        )
    pair = signal.pair
    if not pair.enabled or pair.state != Pair.State.TRADING:
        return _finish(
            signal,
            TradingSignal.Status.REJECTED,
            f"{pair.symbol} is not trading (state {pair.state}, enabled={pair.enabled})",
        )
    problem = risk.instrument_settings_problem(
        symbol=pair.symbol,
        instrument_type=pair.instrument_type,
        pip_location=pair.pip_location,
        overrides=pair.risk_overrides or {},
        model_params=_model_params(signal),
    )
    if problem:
        # Checked again here: the pair may have been enabled before the rule, or behind the
        # services' back; FX-sized stops on gold or bitcoin are never sent.
        return _finish(signal, TradingSignal.Status.REJECTED, problem)
    client = client or broker_client()
    with entry_lock():
        return _enter(signal, pair, client, now, values)


@dataclass(frozen=True)
class _Quoted:
    """What an entry learnt from the broker before its risk checks."""

    quote: risk.Quote
    quoted_at: float  # time.monotonic() when the price came back
    now: datetime
    snapshot: AccountSnapshot


def _enter(
    signal: TradingSignal,
    pair: Pair,
    client: oanda.OandaClient,
    now: datetime | None,
    values: dict[str, Any],
) -> Outcome:
    state = trading_state()
    stop_pips, take_pips = stop_distances(signal, values)
    quoted = _entry_quote(signal, pair, client, now, values)
    if isinstance(quoted, Outcome):
        return quoted
    now = quoted.now
    context = _entry_context(signal, pair, client, quoted, stop_pips, state.mode)
    decision = risk.check_entry(context, limits_for(pair, values))
    if decision.trip and state.mode == TradingState.Mode.TRADING:
        trading_mode_trip(reason=decision.trip, now=now)
    if not decision.allowed:
        return _finish(
            signal, TradingSignal.Status.REJECTED, decision.reason, risk=decision.figures
        )
    price = risk.entry_price(quoted.quote, signal.direction)
    stop_price, take_price = risk.stop_prices(
        direction=signal.direction,
        price=price,
        stop_loss_pips=stop_pips,
        take_profit_pips=take_pips,
        pip_location=pair.pip_location,
        display_precision=pair.display_precision,
    )
    stopped = _stopped_since_quote(pair, quoted)
    if stopped is not None:
        return _finish(
            signal,
            TradingSignal.Status.REJECTED,
            f"{stopped} (checked again just before sending the order)",
        )
    order = Order.objects.create(
        client_id=client_order_id(signal.pk),
        account_id=client.account_id,
        signal=signal,
        pair=pair,
        units=decision.units,
        requested_price=signal.price if signal.price is not None else price,
        stop_loss_price=stop_price,
        take_profit_price=take_price,
        sent_at=timezone.now(),
    )
    order = order_send(
        order, client=client, stop_loss_pips=stop_pips, pip_location=pair.pip_location
    )
    if order.late_fill_reason:
        _entry_close_after_stop(signal, pair, order, client)
    return signal_settle(signal, order)


def _entry_quote(
    signal: TradingSignal,
    pair: Pair,
    client: oanda.OandaClient,
    now: datetime | None,
    values: dict[str, Any],
) -> _Quoted | Outcome:
    """The price, the broker's time and the account, or the signal's outcome when it is too old,
    the market is closed or the broker cannot be reached."""
    try:
        quote, broker_now = fetch_quote(client, pair.symbol)
        quoted_at = time.monotonic()
        now = now or broker_now
        # A signal stored just now may still be for a candle that closed long ago: the analysis
        # of the last candle before a weekend or an outage, run when the streamer catches up.
        # Its age on the broker's clock counts too, or Friday's last signal trades on Sunday.
        max_age = values["signals.max_age_seconds"]
        closed_at = signal.time + timeframe_duration(signal.timeframe)
        if (now - closed_at).total_seconds() > max_age:
            return _finish(
                signal,
                TradingSignal.Status.EXPIRED,
                f"its candle closed at {closed_at:%Y-%m-%d %H:%M} UTC, more than "
                f"signals.max_age_seconds={max_age} before the broker's time {now:%Y-%m-%d %H:%M}",
            )
        is_open, why = market_open(pair.symbol, now)
        if not is_open:
            return _finish(signal, TradingSignal.Status.REJECTED, f"market closed: {why}")
        snapshot = account_snapshot_take(client, now=now)
    except oanda.OandaError as error:
        return _finish(
            signal, TradingSignal.Status.REJECTED, f"broker unavailable before the entry: {error}"
        )
    return _Quoted(quote, quoted_at, now, snapshot)


def _entry_context(
    signal: TradingSignal,
    pair: Pair,
    client: oanda.OandaClient,
    quoted: _Quoted,
    stop_pips: Decimal,
    mode: str,
) -> risk.EntryContext:
    """Everything the risk rules judge an entry by: the account, its open and pending exposure,
    the recent orders and losses."""
    trades = Trade.objects.filter(account_id=client.account_id, state=Trade.State.OPEN).aggregate(
        count=Count("id"), pair_units=Sum(_on_pair(pair, "current_units"))
    )
    pending = Order.objects.filter(
        account_id=client.account_id, status=Order.Status.PENDING, kind=Order.Kind.ENTRY
    ).aggregate(count=Count("id"), pair_units=Sum(_on_pair(pair, "units")))
    pair_units = (trades["pair_units"] or Decimal(0)) + (pending["pair_units"] or Decimal(0))
    streak, last_loss_at = loss_streak(quoted.now)
    return risk.EntryContext(
        pair=pair.symbol,
        direction=signal.direction,
        pip_location=pair.pip_location,
        margin_rate=pair.margin_rate,
        minimum_trade_size=pair.minimum_trade_size,
        trade_units_precision=pair.trade_units_precision,
        stop_loss_pips=stop_pips,
        quote=quoted.quote,
        account=account_figures(quoted.snapshot, quoted.now),
        now=quoted.now,
        mode=mode,
        open_trades=trades["count"] + pending["count"],
        pair_open_units=pair_units,
        orders_last_minute=Order.objects.filter(
            kind=Order.Kind.ENTRY, created_at__gte=timezone.now() - timedelta(minutes=1)
        ).count(),
        consecutive_losses=streak,
        last_loss_at=last_loss_at,
        maximum_order_units=pair.maximum_order_units,
    )


def _stopped_since_quote(pair: Pair, quoted: _Quoted) -> str | None:
    """Why entries are stopped now, or None: the last look before the order leaves.

    The broker calls take time (seconds when the broker is slow): a kill switch, a disabled pair
    or the weekend close may have come in the meantime. The stops take the entry lock this entry
    holds once their change is committed, so a stop committed after this check waits for the
    order's answer.
    """
    stopped = entries_stopped(pair.symbol)
    if stopped is None:
        is_open, why = market_open(
            pair.symbol, quoted.now + timedelta(seconds=time.monotonic() - quoted.quoted_at)
        )
        stopped = None if is_open else f"market closed: {why}"
    return stopped


def _entry_close_after_stop(
    signal: TradingSignal, pair: Pair, order: Order, client: oanda.OandaClient
) -> None:
    """A stop was committed while the order was in flight: the ledger marked the fill; close it
    and note it on the signal."""
    closed = late_fills_close(client=client)
    signal.result = {**signal.result, "closed_after_stop": order.late_fill_reason}
    logger.warning(
        "event=entry_closed_after_stop signal=%s pair=%s client_id=%s closed=%s",
        signal.pk,
        pair.symbol,
        order.client_id,
        closed,
    )


class OrderResult(TypedDict):
    """What a signal's ``result`` records of its order (``signal_settle``)."""

    client_id: str
    order_status: str
    broker_order_id: str
    broker_trade_id: str
    units: str
    fill_price: str | None


def signal_settle(signal: TradingSignal, order: Order) -> Outcome:
    """Mark the signal by what became of its order (pending orders are left to reconciliation)."""
    result: OrderResult = {
        "client_id": order.client_id,
        "order_status": order.status,
        "broker_order_id": order.broker_order_id,
        "broker_trade_id": order.broker_trade_id,
        "units": str(order.units),
        "fill_price": str(order.fill_price) if order.fill_price is not None else None,
    }
    if order.status == Order.Status.FILLED:
        return _finish(signal, TradingSignal.Status.EXECUTED, "", **result)
    if order.status == Order.Status.PENDING:
        TradingSignal.objects.filter(pk=signal.pk).update(result={**signal.result, **result})
        return Outcome(str(signal.pk), signal.status, "order outcome unknown", order.client_id, "")
    return _finish(
        signal, TradingSignal.Status.REJECTED, f"order {order.status}: {order.reason}", **result
    )


class ClientExtensions(TypedDict):
    id: str
    tag: str


class StopLossOnFill(TypedDict):
    distance: str
    timeInForce: str


class TakeProfitOnFill(TypedDict):
    price: str
    timeInForce: str


class MarketOrderRequest(TypedDict):
    """OANDA v20's MarketOrderRequest, the fields an entry sends."""

    type: str
    instrument: str
    units: str
    timeInForce: str
    positionFill: str
    clientExtensions: ClientExtensions
    tradeClientExtensions: ClientExtensions
    stopLossOnFill: StopLossOnFill
    takeProfitOnFill: NotRequired[TakeProfitOnFill]


class OrderRequestBody(TypedDict):
    order: MarketOrderRequest


def order_request_body(
    order: Order, *, stop_loss_pips: Decimal, pip_location: int
) -> OrderRequestBody:
    distance = (stop_loss_pips * risk.pip_size(pip_location)).normalize()
    body: OrderRequestBody = {
        "order": {
            "type": "MARKET",
            "instrument": order.pair_id,
            "units": str(order.units.normalize()),
            "timeInForce": "FOK",
            "positionFill": "DEFAULT",
            "clientExtensions": {"id": order.client_id, "tag": "septrader"},
            "tradeClientExtensions": {"id": trade_client_id(order.client_id), "tag": "septrader"},
            "stopLossOnFill": {"distance": format(distance, "f"), "timeInForce": "GTC"},
        }
    }
    if order.take_profit_price is not None:
        body["order"]["takeProfitOnFill"] = {
            "price": format(order.take_profit_price.normalize(), "f"),
            "timeInForce": "GTC",
        }
    return body


def order_send(
    order: Order, *, client: oanda.OandaClient, stop_loss_pips: Decimal, pip_location: int
) -> Order:
    """Send the entry once; after a lost answer, look it up before sending the same one again."""
    body = order_request_body(order, stop_loss_pips=stop_loss_pips, pip_location=pip_location)
    for attempt in (1, 2):
        try:
            response = client.request(oanda.OrderCreate(client.account_id, data=body))
        except oanda.OandaRejected as error:
            return _order_refused(order, client, error)
        except oanda.OandaError as error:
            logger.warning(
                "event=order_answer_lost client_id=%s pair=%s attempt=%d error=%r",
                order.client_id,
                order.pair_id,
                attempt,
                str(error),
            )
            found = order_lookup(order, client=client)
            if found is None:
                # The lookup failed too: reconciliation settles it from the broker's records.
                return Order.objects.get(pk=order.pk)
            if found is not False:
                return found
            # The broker never saw it: the same request (same client id) may go again.
            continue
        response_transactions_apply(client.account_id, response)
        return Order.objects.get(pk=order.pk)
    return Order.objects.get(pk=order.pk)


def _order_refused(order: Order, client: oanda.OandaClient, error: oanda.OandaRejected) -> Order:
    if error.error_code == "CLIENT_ORDER_ID_ALREADY_EXISTS":
        # A previous attempt did arrive after all: settle from what the broker holds.
        found = order_lookup(order, client=client)
        if found:
            return found
        return Order.objects.get(pk=order.pk)
    reject = error.body.get("orderRejectTransaction")
    if reject:
        transactions_apply(account_id=client.account_id, transactions=[reject])
    Order.objects.filter(pk=order.pk, status=Order.Status.PENDING).update(
        status=Order.Status.REJECTED,
        reason=f"{error.error_code or error.status}: {error.message}"[:500],
    )
    return Order.objects.get(pk=order.pk)


def order_lookup(order: Order, *, client: oanda.OandaClient) -> Order | Literal[False] | None:
    """Settle a pending order from the broker's record of ``@client_id``.

    Returns the updated order; ``False`` when the broker has no such order (it never arrived);
    ``None`` when the broker could not be asked.
    """
    try:
        body = client.request(oanda.OrderDetails(client.account_id, f"@{order.client_id}"))
    except oanda.OandaNotFound:
        return False
    except oanda.OandaError as error:
        logger.warning(
            "event=order_lookup_failed client_id=%s error=%r", order.client_id, str(error)
        )
        return None
    wire = body.get("order", {})
    broker_id = str(wire.get("id", ""))
    Order.objects.filter(pk=order.pk, broker_order_id="").update(broker_order_id=broker_id)
    fill_id = wire.get("fillingTransactionID")
    cancel_id = wire.get("cancellingTransactionID")
    wanted = [transaction_id for transaction_id in (fill_id, cancel_id) if transaction_id]
    if wanted:
        fetched = []
        for transaction_id in wanted:
            try:
                fetched.append(
                    client.request(oanda.TransactionDetails(client.account_id, transaction_id))[
                        "transaction"
                    ]
                )
            except oanda.OandaError as error:
                logger.warning(
                    "event=transaction_lookup_failed id=%s error=%r", transaction_id, str(error)
                )
                return None
        # The related stop-loss/take-profit orders follow the fill; catch up on those too.
        transactions_apply(account_id=client.account_id, transactions=fetched)
    return Order.objects.get(pk=order.pk)


def late_fills_close(
    *, client: oanda.OandaClient | None = None, timeout: float | None = ENTRY_DRAIN_SECONDS
) -> list[str]:
    """Close every open trade whose entry filled after entries were stopped; returns their
    broker trade ids. Each close is audited (``trade.closed_after_stop``) and alerted.

    Under the entry lock, so an executor still applying its own late fill finishes first and
    a second caller finds nothing left to close. A trade the broker refuses to close stays
    marked, for the next caller (reconciliation runs every few minutes).
    """
    late = Trade.objects.filter(state=Trade.State.OPEN, order__late_fill_reason__gt="")
    if not late.exists():
        return []
    client = client or broker_client()
    closed: list[str] = []
    with entry_lock(timeout=timeout) as locked:
        if not locked:
            logger.warning("event=late_fills_close_skipped reason='entry lock busy'")
            return closed
        for trade in late.filter(account_id=client.account_id).select_related("order"):
            assert trade.order is not None
            try:
                response = client.request(
                    oanda.TradeClose(
                        client.account_id, trade.broker_trade_id, data={"units": "ALL"}
                    )
                )
            except oanda.OandaError as error:
                logger.error(
                    "event=late_fill_close_failed pair=%s trade=%s client_id=%s error=%r",
                    trade.pair_id,
                    trade.broker_trade_id,
                    trade.order.client_id,
                    str(error),
                )
                continue
            response_transactions_apply(client.account_id, response)
            closed.append(trade.broker_trade_id)
            audit_record(
                actor="system:execution",
                action="trade.closed_after_stop",
                target=f"{trade.pair_id} trade {trade.broker_trade_id}",
                details={
                    "client_id": trade.order.client_id,
                    "reason": trade.order.late_fill_reason,
                },
            )
            logger.warning(
                "event=late_fill_closed pair=%s trade=%s client_id=%s reason=%r",
                trade.pair_id,
                trade.broker_trade_id,
                trade.order.client_id,
                trade.order.late_fill_reason,
            )
    return closed


def trading_mode_trip(*, reason: str, now: datetime) -> None:
    """Switch to reducing-only because a loss limit was crossed (once; audited)."""
    changed = TradingState.objects.filter(pk=1, mode=TradingState.Mode.TRADING).update(
        mode=TradingState.Mode.REDUCING,
        reason=reason[:500],
        tripped_day=trading_day(now),
        changed_by="system:risk",
        changed_at=now,
    )
    if changed:
        audit_record(
            actor="system:risk", action="risk.trip", target="reducing", details={"reason": reason}
        )
        logger.warning("event=risk_trip mode=reducing reason=%r", reason)
