"""The long-lived streamer: prices and transactions from OANDA, candles closed at each minute.

One streamer runs per node (``manage.py stream_prices``, supervised by docker/systemd, never a
Celery task). It keeps three loops:

* the price stream (a thread): each pair's latest price goes to the cache (Redis) with its time,
  for the executors, and the forming M1 candle built from the prices is stored as incomplete every
  few seconds for the console;
* the transaction stream (a thread): every account transaction is stored once, and after any
  reconnect the ones missed are fetched with TransactionsSinceID;
* the main loop: when the broker's clock (read from prices and heartbeats) enters a new minute,
  the broker's own candles since the newest complete one are fetched and upserted as complete,
  then the analysis is enqueued for them. The same catch-up fills any gap a disconnect left, so the
  table ends up with exactly the broker's candles. The stream alone cannot give them: OANDA
  conflates the pricing stream to a few prices a second, so an extreme can fall between two.

A stream that is silent for 10 s (prices) or 20 s (transactions), heartbeats included, is dropped
and reconnected, as is one that ends cleanly or abruptly, with capped exponential backoff and never
more than 2 new connections a second (OANDA's limits). The weekend's heartbeats-only stream with
``tradeable: false`` is normal, not an outage.

The database and Redis may vanish for a few seconds too (a restart, a failover). The streamer
rides that out rather than dying with it: a price that cannot be cached or a forming candle that
cannot be written is skipped (the next one follows within a second), a transaction that cannot be
stored drops the transaction stream, which reconnects and fetches from the last one stored, and
the main loop retries its minute after a pause. Any other error in a stream thread stops the whole
streamer with a non-zero exit, for its supervisor to restart it, instead of leaving it running
without that stream.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, connections
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from marketdata import hooks
from marketdata.broker_time import CandleTimeError, parse_broker_time
from marketdata.cache_keys import STATE_KEY, latest_price_key
from marketdata.models import Pair
from marketdata.oanda import (
    AccountSummary,
    BadLine,
    OandaClient,
    OandaError,
    PricingStream,
    TransactionsSinceID,
    TransactionsStream,
)
from marketdata.selectors import candle_newest_complete_time
from marketdata.services import candles_backfill, candles_ingest
from marketdata.timeframes import Timeframe

logger = logging.getLogger(__name__)

PRICE_SILENCE_SECONDS = 10.0
TRANSACTION_SILENCE_SECONDS = 20.0
# OANDA allows 2 new connections a second.
MIN_CONNECT_INTERVAL = 0.5
BACKOFF_CAP_SECONDS = 30.0
FORMING_CANDLE_WRITE_SECONDS = 5.0
# How long after a minute ends its candle is asked for, then asked again, then given up on.
CLOSE_GRACE = timedelta(milliseconds=300)
RETRY_SECONDS = 0.5
GIVE_UP_SECONDS = 10.0
# The database, the cache (Redis) or the Celery broker (Redis) unreachable for a while.
STORE_ERRORS: tuple[type[Exception], ...] = (DatabaseError, RedisError, BrokerError)
# How long the main loop waits before trying again after such an error, and how often at most
# a stream thread logs the prices it could not store.
STORE_RETRY_SECONDS = 1.0
STORE_ERROR_LOG_SECONDS = 5.0
MINUTE = timedelta(minutes=1)


class StreamerCrashed(RuntimeError):
    """A stream thread died of an unexpected error; the streamer stopped (its supervisor restarts
    it)."""


@dataclass
class PairState:
    """What an operator needs to judge one pair's feed (shown by the API and health checks)."""

    last_price_time: str | None = None
    last_price_received: str | None = None
    last_candle_time: str | None = None
    tradeable: bool | None = None


@dataclass
class StreamState:
    pairs: dict[str, PairState] = field(default_factory=dict)
    price_reconnects: int = 0
    transaction_reconnects: int = 0
    price_backoff: float = 0.0
    transaction_backoff: float = 0.0
    broker_time: str | None = None
    # When (UTC, this machine's clock) the message carrying ``broker_time`` arrived: the broker's
    # clock is estimated from the two (marketdata.selectors.broker_now).
    broker_time_received: str | None = None
    last_transaction_id: str | None = None
    updated: str | None = None
    # For monitoring (monitoring/health.py): when each stream last proved alive (any message,
    # heartbeats included), and running totals that Prometheus turns into rates.
    prices_alive_at: str | None = None
    transactions_alive_at: str | None = None
    prices_received: int = 0
    candles_written: int = 0


@dataclass
class _Forming:
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    ticks: int = 1
    written_at: float = 0.0


class Backoff:
    """Capped exponential backoff with full jitter, and at most one connect per interval."""

    def __init__(self, cap: float = BACKOFF_CAP_SECONDS) -> None:
        self.cap = cap
        self.failures = 0
        self.last_connect = 0.0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap, 0.5 * 2**self.failures))

    def reset(self) -> None:
        self.failures = 0

    def wait_for_connect_slot(self, stop: threading.Event) -> None:
        pause = self.last_connect + MIN_CONNECT_INTERVAL - time.monotonic()
        if pause > 0:
            stop.wait(pause)
        self.last_connect = time.monotonic()


# A quote outside these is junk; inside them the mid-price arithmetic cannot overflow.
_LOWEST_PRICE = Decimal("0.000001")
_HIGHEST_PRICE = Decimal("1e9")


def _price(value: Any) -> Decimal:
    price = Decimal(str(value))
    if not price.is_finite() or not _LOWEST_PRICE <= price < _HIGHEST_PRICE:
        raise InvalidOperation
    return price


class Streamer:
    """Streams one account's prices and transactions until ``stop`` is set."""

    def __init__(
        self,
        *,
        client_factory: Callable[[], OandaClient] = OandaClient,
        pairs: list[str] | None = None,
        node: str | None = None,
        bootstrap: timedelta = timedelta(days=1),
        pair_refresh_seconds: float = 10.0,
        price_silence: float = PRICE_SILENCE_SECONDS,
        transaction_silence: float = TRANSACTION_SILENCE_SECONDS,
        stream_transactions: bool = True,
        on_candles_closed: Callable[[str, datetime, datetime], None] | None = None,
        on_minute_closed: Callable[[list[str], datetime], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client_factory = client_factory
        self.fixed_pairs = pairs
        # Cluster (DESIGN.md section 9): only the enabled pairs assigned to this node, re-read
        # every pair_refresh_seconds so a failover or drain is picked up.
        self.node = node
        self.bootstrap = bootstrap
        self.pair_refresh_seconds = pair_refresh_seconds
        self.price_silence = price_silence
        self.transaction_silence = transaction_silence
        self.stream_transactions = stream_transactions
        # Per pair, the range of candles just stored (none by default); per minute, every pair
        # whose newest closed candle starts then, analysed together (live signals).
        self.on_candles_closed = on_candles_closed
        self.on_minute_closed = on_minute_closed or enqueue_analysis
        self.stop = stop or threading.Event()
        self.state = StreamState()
        self.lock = threading.Lock()
        self.pairs: list[str] = []
        self.pairs_changed = threading.Event()
        self.catch_up_now = threading.Event()
        self.broker_time: datetime | None = None
        self.broker_time_seen_at = 0.0
        self.closed_through: dict[str, datetime] = {}
        # Per pair: the minute being closed, when it was first and last asked for.
        self.attempts: dict[str, tuple[datetime, float, float]] = {}
        self.forming: dict[str, _Forming] = {}
        # A stream thread that died of an unexpected error (the streamer then stops).
        self.crashed: BaseException | None = None
        self._store_errors = 0
        self._store_error_logged_at = 0.0

    # ----- the main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Stream until ``stop`` is set; raises ``StreamerCrashed`` when a stream thread died."""
        self._refresh_pairs()
        threads = [
            threading.Thread(
                target=self._guarded, args=(self._price_loop,), name="prices", daemon=True
            )
        ]
        if self.stream_transactions:
            threads.append(
                threading.Thread(
                    target=self._guarded,
                    args=(self._transaction_loop,),
                    name="transactions",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        client = self.client_factory()
        next_refresh = time.monotonic() + self.pair_refresh_seconds
        try:
            while not self.stop.is_set():
                try:
                    if time.monotonic() >= next_refresh:
                        self._refresh_pairs()
                        next_refresh = time.monotonic() + self.pair_refresh_seconds
                    self._close_minutes(client)
                    self._publish_state()
                except STORE_ERRORS as error:
                    # The minute is tried again once the store answers.
                    logger.warning(
                        "event=streamer_store_unavailable error=%r retry_in=%.1f",
                        str(error),
                        STORE_RETRY_SECONDS,
                    )
                    connections.close_all()
                    self.stop.wait(STORE_RETRY_SECONDS)
                    continue
                self.catch_up_now.wait(0.2)
                self.catch_up_now.clear()
        finally:
            self.stop.set()
            for thread in threads:
                # A stream thread notices the stop at its next message or heartbeat.
                thread.join(timeout=self.price_silence + 1)
            with contextlib.suppress(*STORE_ERRORS):
                self._publish_state()
            connections.close_all()
            logger.info("event=streamer_stopped")
        if self.crashed is not None:
            raise StreamerCrashed(f"a stream thread died: {self.crashed!r}") from self.crashed

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a stream thread; if it dies of an unexpected error, stop the whole streamer."""
        try:
            loop()
        except BaseException as error:
            logger.exception(
                "event=stream_thread_crashed thread=%s", threading.current_thread().name
            )
            self.crashed = error
            self.stop.set()

    def _store_failed(self, what: str, error: Exception) -> None:
        """A price or forming candle could not be stored: skip it, log now and then, reconnect."""
        connections.close_all()
        self._store_errors += 1
        now = time.monotonic()
        if now - self._store_error_logged_at >= STORE_ERROR_LOG_SECONDS:
            logger.warning(
                "event=price_not_stored what=%s skipped=%d error=%r",
                what,
                self._store_errors,
                str(error),
            )
            self._store_error_logged_at = now
            self._store_errors = 0

    def _refresh_pairs(self) -> None:
        enabled = Pair.objects.filter(enabled=True)
        if self.node is not None:
            enabled = enabled.filter(node__name=self.node)
        pairs = self.fixed_pairs or sorted(enabled.values_list("symbol", flat=True))
        with self.lock:
            if pairs != self.pairs:
                logger.info("event=stream_pairs_changed before=%s after=%s", self.pairs, pairs)
                self.pairs = list(pairs)
                for pair in pairs:
                    self.state.pairs.setdefault(pair, PairState())
                self.pairs_changed.set()
                # A newly enabled pair gets its history at once.
                self.catch_up_now.set()

    def _close_minutes(self, client: OandaClient) -> None:
        """Store the broker's complete candles of every minute that has ended, pair by pair."""
        with self.lock:
            broker_time, seen_at = self.broker_time, self.broker_time_seen_at
            pairs = list(self.pairs)
        if broker_time is None:
            return
        # The broker's clock moves on between messages: estimate it from the local clock since
        # the last one (prices may be minutes apart on a quiet market), and leave the broker a
        # moment to finalise the candle of the minute that just ended.
        estimate = broker_time + timedelta(seconds=max(0.0, time.monotonic() - seen_at))
        current = (estimate - CLOSE_GRACE).replace(second=0, microsecond=0)
        now = time.monotonic()
        closed: dict[datetime, list[str]] = {}
        for pair in pairs:
            if self.closed_through.get(pair, datetime.min.replace(tzinfo=UTC)) >= current:
                continue
            minute, first_try, last_try = self.attempts.get(pair, (current, now, 0.0))
            if minute != current:
                first_try, last_try = now, 0.0
            if now - last_try < RETRY_SECONDS:
                continue
            self.attempts[pair] = (current, first_try, now)
            newest_before = candle_newest_complete_time(pair, Timeframe.M1)
            start = None if newest_before is not None else current - self.bootstrap
            try:
                result = candles_backfill(
                    client=client, pair=pair, timeframe="M1", start=start, end=current
                )
            except OandaError as error:
                logger.warning("event=candle_catch_up_failed pair=%s error=%s", pair, error)
                continue
            newest_after = candle_newest_complete_time(pair, Timeframe.M1)
            with self.lock:
                self.state.candles_written += result.ingest.stored
                self.state.pairs.setdefault(pair, PairState()).last_candle_time = (
                    newest_after.isoformat() if newest_after else None
                )
            if newest_after is not None and (newest_before is None or newest_after > newest_before):
                first = (newest_before + MINUTE) if newest_before else result.start or newest_after
                if self.on_candles_closed is not None:
                    self.on_candles_closed(pair, first, newest_after + MINUTE)
                closed.setdefault(newest_after, []).append(pair)
            # The minute just ended may not be final at the broker yet: ask again shortly, but a
            # minute without a single tick has no candle at all, so stop asking after a while.
            settled = newest_after is not None and newest_after >= current - MINUTE
            if settled or now - first_try > GIVE_UP_SECONDS:
                self.closed_through[pair] = current
                self.attempts.pop(pair, None)
        for minute, minute_pairs in sorted(closed.items()):
            self.on_minute_closed(minute_pairs, minute)

    # ----- prices -------------------------------------------------------------------------------

    def _price_loop(self) -> None:
        try:
            self._stream_prices()
        finally:
            # This thread's own database connection (forming candles).
            connections.close_all()

    def _stream_prices(self) -> None:
        client = self.client_factory()
        backoff = Backoff()
        while not self.stop.is_set():
            with self.lock:
                pairs = list(self.pairs)
                self.pairs_changed.clear()
            if not pairs:
                self.stop.wait(1.0)
                continue
            backoff.wait_for_connect_slot(self.stop)
            endpoint = PricingStream(
                client.account_id, params={"instruments": ",".join(pairs), "snapshot": "true"}
            )
            logger.info("event=price_stream_connecting pairs=%s", ",".join(pairs))
            reason = "ended"
            try:
                for message in client.stream(endpoint, read_timeout=self.price_silence):
                    if self.stop.is_set() or self.pairs_changed.is_set():
                        reason = "pairs changed" if self.pairs_changed.is_set() else "stopping"
                        break
                    if self._on_price_message(message):
                        backoff.reset()
            except OandaError as error:
                reason = str(error)
            if self.stop.is_set():
                return
            if reason == "pairs changed":
                continue
            delay = backoff.next_delay()
            with self.lock:
                self.state.price_reconnects += 1
                self.state.price_backoff = delay
            logger.warning("event=price_stream_dropped reason=%r reconnect_in=%.2f", reason, delay)
            # Whatever minutes the drop cost are fetched at once.
            self.catch_up_now.set()
            self.stop.wait(delay)

    def _on_price_message(self, message: dict[str, Any] | BadLine) -> bool:
        """Handle one line; returns whether it proved the stream alive."""
        if isinstance(message, BadLine):
            logger.warning(
                "event=price_line_unreadable reason=%s raw=%r", message.reason, message.raw
            )
            return False
        kind = message.get("type")
        try:
            moment = parse_broker_time(message.get("time"))
        except CandleTimeError:
            logger.warning("event=price_line_unreadable reason=time raw=%r", message)
            return False
        with self.lock:
            self.state.prices_alive_at = datetime.now(UTC).isoformat()
        if kind == "HEARTBEAT":
            self._advance_broker_time(moment)
            return True
        if kind != "PRICE":
            return True
        if message.get("tradeable"):
            # A price sent while the market is closed carries the time of its last tick, which
            # may be last Friday's: only heartbeats and live prices tell the broker's time.
            self._advance_broker_time(moment)
        pair = message.get("instrument")
        try:
            bid = _price(message["bids"][0]["price"])
            ask = _price(message["asks"][0]["price"])
        except (KeyError, IndexError, TypeError, InvalidOperation, ValueError):
            logger.warning("event=price_line_unreadable reason=price raw=%r", message)
            return True
        if bid > ask:
            logger.warning("event=price_line_unreadable reason=crossed raw=%r", message)
            return True
        tradeable = bool(message.get("tradeable", False))
        received = datetime.now(UTC)
        try:
            cache.set(
                latest_price_key(str(pair)),
                {
                    "bid": str(bid),
                    "ask": str(ask),
                    "time": moment.isoformat(),
                    "tradeable": tradeable,
                    "received": received.isoformat(),
                },
                timeout=None,
            )
        except STORE_ERRORS as error:
            self._store_failed("latest price", error)
        with self.lock:
            state = self.state.pairs.setdefault(str(pair), PairState())
            state.last_price_time = moment.isoformat()
            state.last_price_received = received.isoformat()
            state.tradeable = tradeable
            self.state.prices_received += 1
        if tradeable:
            try:
                self._update_forming(str(pair), moment, (bid + ask) / 2)
            except STORE_ERRORS as error:
                self._store_failed("forming candle", error)
        return True

    def _advance_broker_time(self, moment: datetime) -> None:
        with self.lock:
            previous = self.broker_time
            if previous is None or moment > previous:
                self.broker_time = moment
                self.broker_time_seen_at = time.monotonic()
        if previous is not None and moment.replace(second=0, microsecond=0) > previous.replace(
            second=0, microsecond=0
        ):
            self.catch_up_now.set()

    def _update_forming(self, pair: str, moment: datetime, mid: Decimal) -> None:
        minute = moment.replace(second=0, microsecond=0)
        forming = self.forming.get(pair)
        if forming is None or forming.time != minute:
            forming = self.forming[pair] = _Forming(minute, mid, mid, mid, mid)
        else:
            forming.high = max(forming.high, mid)
            forming.low = min(forming.low, mid)
            forming.close = mid
            forming.ticks += 1
        now = time.monotonic()
        if now - forming.written_at < FORMING_CANDLE_WRITE_SECONDS:
            return
        forming.written_at = now
        # Stored as incomplete: the broker's own candle replaces it when the minute closes, and
        # ingestion never lets an incomplete candle overwrite a complete one.
        candles_ingest(
            candles=[
                {
                    "time": minute,
                    "open": forming.open,
                    "high": forming.high,
                    "low": forming.low,
                    "close": forming.close,
                    "volume": forming.ticks,
                    "complete": False,
                }
            ],
            pair=pair,
            timeframe="M1",
            now=max(moment, datetime.now(UTC)),
        )

    # ----- transactions -------------------------------------------------------------------------

    def _transaction_loop(self) -> None:
        client = self.client_factory()
        backoff = Backoff()
        account = client.account_id
        last: int | None = None
        while not self.stop.is_set():
            backoff.wait_for_connect_slot(self.stop)
            reason = "ended"
            try:
                if last is None:
                    # The first start imports no history: reconciliation reads the account's
                    # state; from here on every transaction is kept.
                    last = hooks.transactions_resume_id(account)
                    if last is None:
                        summary = client.request(AccountSummary(account))
                        last = int(summary["lastTransactionID"])
                    self._set_last_transaction(last)
                endpoint = TransactionsStream(account)
                logger.info("event=transaction_stream_connecting last_id=%s", last)
                stream = client.stream(endpoint, read_timeout=self.transaction_silence)
                # Whatever happened while we were away (or while connecting) comes first.
                last = self._catch_up_transactions(client, account, last)
                for message in stream:
                    if self.stop.is_set():
                        reason = "stopping"
                        break
                    backoff.reset()
                    last = self._on_transaction_message(client, account, last, message)
            except OandaError as error:
                reason = str(error)
            except STORE_ERRORS as error:
                # Nothing after ``last`` counts as stored: the reconnect fetches it again.
                reason = f"the store is unavailable: {error}"
            finally:
                connections.close_all()
            if self.stop.is_set():
                return
            delay = backoff.next_delay()
            with self.lock:
                self.state.transaction_reconnects += 1
                self.state.transaction_backoff = delay
            logger.warning(
                "event=transaction_stream_dropped reason=%r reconnect_in=%.2f", reason, delay
            )
            self.stop.wait(delay)

    def _on_transaction_message(
        self, client: OandaClient, account: str, last: int, message: dict[str, Any] | BadLine
    ) -> int:
        if isinstance(message, BadLine):
            logger.warning(
                "event=transaction_line_unreadable reason=%s raw=%r", message.reason, message.raw
            )
            return last
        with self.lock:
            self.state.transactions_alive_at = datetime.now(UTC).isoformat()
        if message.get("type") == "HEARTBEAT":
            # A heartbeat names the account's newest transaction: a gap means we missed some.
            try:
                newest = int(message.get("lastTransactionID", last))
            except (TypeError, ValueError, OverflowError):
                return last
            return self._catch_up_transactions(client, account, last) if newest > last else last
        hooks.transactions_apply(account_id=account, transactions=[message])
        try:
            last = max(last, int(message["id"]))
        except (KeyError, TypeError, ValueError, OverflowError):
            return last
        self._set_last_transaction(last)
        return last

    def _catch_up_transactions(self, client: OandaClient, account: str, last: int) -> int:
        missed = client.request(TransactionsSinceID(account, params={"id": last})).get(
            "transactions", []
        )
        if missed:
            hooks.transactions_apply(account_id=account, transactions=missed)
            last = max([last, *(int(t["id"]) for t in missed if str(t.get("id", "")).isdigit())])
            self._set_last_transaction(last)
        return last

    def _set_last_transaction(self, last: int) -> None:
        with self.lock:
            self.state.last_transaction_id = str(last)

    # ----- state for operators ------------------------------------------------------------------

    def _publish_state(self) -> None:
        with self.lock:
            wall = datetime.now(UTC)
            self.state.broker_time = self.broker_time.isoformat() if self.broker_time else None
            self.state.broker_time_received = (
                (
                    wall - timedelta(seconds=max(0.0, time.monotonic() - self.broker_time_seen_at))
                ).isoformat()
                if self.broker_time
                else None
            )
            self.state.updated = wall.isoformat()
            snapshot = asdict(self.state)
        cache.set(STATE_KEY, snapshot, timeout=None)


def enqueue_analysis(pairs: list[str], time: datetime) -> Any:
    """The analysis hook: live signals for the pairs whose M1 candle starting at ``time`` just
    closed, in one task (one engine call); ``qfh`` registers what it does (qfh/routing.py)."""
    return hooks.minute_closed(pairs, time)
