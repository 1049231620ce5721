from __future__ import annotations

import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import models

from marketdata.models import Pair, pair_foreign_key
from marketdata.timeframes import Timeframe
from trading.schedule import Break, ScheduleError, Session


class TradingSignal(models.Model):
    """A BUY or SELL produced by the analysis for one closed candle (``trading_signals``).

    Its life is ``new → claimed → executed | rejected | expired``; the claim is a conditional update
    so at most one executor acts on it. HOLD produces no signal at all.
    """

    class Direction(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"

    class Status(models.TextChoices):
        NEW = "new", "New"
        CLAIMED = "claimed", "Claimed"
        EXECUTED = "executed", "Executed"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The start of the candle whose close produced the signal, in UTC.
    time = models.DateTimeField()
    # The unique constraint below starts with the pair and serves as its index.
    pair = pair_foreign_key("signals", indexed=False)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices, default=Timeframe.M1)
    direction = models.CharField(max_length=4, choices=Direction.choices)
    # A score from the signal rule, not money: the testbed's can exceed 1.
    confidence = models.FloatField()
    # The candle's close when the signal was made, to measure how far fills land from it.
    price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    qfh_metrics = models.JSONField(default=dict, blank=True)
    pair_model = models.ForeignKey(
        "qfh.PairModel", on_delete=models.SET_NULL, null=True, blank=True, related_name="signals"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.NEW)
    status_reason = models.CharField(max_length=500, blank=True)
    executed = models.BooleanField(default=False)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trading_signals"
        ordering = ["-time"]
        constraints = [
            # The analysis of one candle makes at most one signal, however often it runs.
            models.UniqueConstraint(
                fields=["pair", "timeframe", "time"], name="trading_signals_one_per_candle"
            ),
        ]
        indexes = [models.Index(fields=["status", "time"], name="trading_signals_status_time")]

    def __str__(self) -> str:
        return f"{self.direction} {self.pair_id} {self.timeframe} {self.time:%Y-%m-%dT%H:%MZ}"


class BrokerTransaction(models.Model):
    """One transaction of the OANDA account, exactly as the broker sent it.

    The broker's transaction id is the primary key, so a transaction that arrives twice (from the
    stream and again from TransactionsSinceID after a reconnect) is stored once. Reconciliation
    reads these rows; the newest id is where the next catch-up starts.
    """

    id = models.BigIntegerField(primary_key=True)
    account_id = models.CharField(max_length=64)
    type = models.CharField(max_length=64)
    time = models.DateTimeField()
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "trading_broker_transactions"
        ordering = ["-id"]
        indexes = [models.Index(fields=["type", "time"], name="broker_tx_type_time")]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class Order(models.Model):
    """An order we sent (or are about to send) to OANDA, keyed by our deterministic client id.

    The row is written *before* the request leaves (status ``pending``), so an executor killed
    between sending and recording leaves a trace that reconciliation resolves by looking the
    order up at the broker by ``@client_id``. A cancel (``MARKET_HALTED``, ``INSUFFICIENT_MARGIN``,
    ...) is an outcome stored in ``cancel_reason``, not an exception.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (sent or about to be sent)"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled by the broker"
        REJECTED = "rejected", "Rejected by the broker"
        NOT_SENT = "not_sent", "Never reached the broker"

    class Kind(models.TextChoices):
        ENTRY = "entry", "Entry"
        CLOSE = "close", "Close"

    id = models.BigAutoField(primary_key=True)
    # Derived from the signal id, so the same signal can never make two orders at the broker.
    client_id = models.CharField(max_length=128, unique=True)
    account_id = models.CharField(max_length=64)
    signal = models.OneToOneField(
        TradingSignal, on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    pair = pair_foreign_key("orders")
    kind = models.CharField(max_length=5, choices=Kind.choices, default=Kind.ENTRY)
    # Signed like OANDA's: positive buys, negative sells.
    units = models.DecimalField(max_digits=16, decimal_places=2)
    requested_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    stop_loss_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    take_profit_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    broker_order_id = models.CharField(max_length=32, blank=True, db_index=True)
    broker_trade_id = models.CharField(max_length=32, blank=True)
    fill_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set when this entry filled after entries had been stopped (kill switch, disabled pair,
    # reducing mode) while it was in flight: its trade is closed at once (execution.py,
    # ``late_fills_close``), audited as ``trade.closed_after_stop`` and alerted.
    late_fill_reason = models.CharField(max_length=300, blank=True)
    # A paper order (its pair was in the ``paper`` stage): filled here at the live bid/ask, never
    # sent to the broker; reconciliation and the ledger leave it alone (trading/paper_trades.py).
    paper = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trading_orders"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="trading_orders_status")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.pair_id} {self.units} {self.status}"


class Trade(models.Model):
    """A trade as the broker holds it: opened by a fill, reduced or closed by later fills.

    A paper trade (``paper``) is held here only: opened by a paper order at the live bid/ask, its
    stop-loss and take-profit followed on the broker's minute candles and closed here, never at
    the broker (trading/paper_trades.py). Its ``broker_trade_id`` is ``paper-<order id>``.
    """

    class State(models.TextChoices):
        OPEN = "OPEN", "Open"
        CLOSED = "CLOSED", "Closed"

    id = models.BigAutoField(primary_key=True)
    account_id = models.CharField(max_length=64)
    broker_trade_id = models.CharField(max_length=32)
    order = models.OneToOneField(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="trade"
    )
    client_id = models.CharField(max_length=128, blank=True)
    pair = pair_foreign_key("trades")
    initial_units = models.DecimalField(max_digits=16, decimal_places=2)
    current_units = models.DecimalField(max_digits=16, decimal_places=2)
    open_price = models.DecimalField(max_digits=16, decimal_places=6)
    opened_at = models.DateTimeField()
    stop_loss_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    take_profit_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    state = models.CharField(max_length=6, choices=State.choices, default=State.OPEN)
    close_price = models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The broker's reason for the last reducing fill: STOP_LOSS_ORDER, TAKE_PROFIT_ORDER, ...
    close_reason = models.CharField(max_length=64, blank=True)
    # Account currency, as the broker reports it.
    realized_pl = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    unrealized_pl = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    financing = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    paper = models.BooleanField(default=False)
    # Paper trades only: the broker time up to which their stop-loss and take-profit have been
    # followed on the broker's candles (the next follow starts there).
    followed_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trading_trades"
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account_id", "broker_trade_id"], name="trading_trades_broker_id"
            ),
        ]
        indexes = [models.Index(fields=["state", "pair"], name="trading_trades_state_pair")]

    def __str__(self) -> str:
        return f"trade {self.broker_trade_id} {self.pair_id} {self.current_units} {self.state}"


class AccountSnapshot(models.Model):
    """The account's figures at one moment (from AccountSummary), for equity curves and limits."""

    id = models.BigAutoField(primary_key=True)
    account_id = models.CharField(max_length=64)
    time = models.DateTimeField(db_index=True)
    currency = models.CharField(max_length=3, default="USD")
    balance = models.DecimalField(max_digits=18, decimal_places=4)
    nav = models.DecimalField(max_digits=18, decimal_places=4)
    unrealized_pl = models.DecimalField(max_digits=18, decimal_places=4)
    realized_pl = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    financing = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    margin_used = models.DecimalField(max_digits=18, decimal_places=4)
    margin_available = models.DecimalField(max_digits=18, decimal_places=4)
    open_trade_count = models.IntegerField(default=0)
    pending_order_count = models.IntegerField(default=0)
    last_transaction_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "trading_account_snapshots"
        ordering = ["-time"]
        # Every entry reads the equity peak (the drawdown limit): an index answers the maximum
        # without scanning a table that grows by a snapshot per entry and per reconciliation.
        indexes = [models.Index(fields=["account_id", "nav"], name="account_snapshots_peak")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.time:%Y-%m-%dT%H:%M:%SZ} NAV {self.nav}"


class TradingState(models.Model):
    """The system's trading mode, one row: ``trading``, ``reducing`` (exits only) or ``halted``.

    Reducing is entered by the daily loss limit, the drawdown limit or the operator; halted is the
    kill switch. Leaving either is an operator action (audited); the reason is what the console
    shows when entries are refused.
    """

    class Mode(models.TextChoices):
        TRADING = "trading", "Trading"
        REDUCING = "reducing", "Reducing only (exits only)"
        HALTED = "halted", "Halted (kill switch)"

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.TRADING)
    reason = models.CharField(max_length=500, blank=True)
    # The 17:00 New York trading day the reducing trip belongs to (daily loss resets with it).
    tripped_day = models.DateField(null=True, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(auto_now=True)
    # Whether the market schedule considers the market open, and why not when it is closed.
    market_open = models.BooleanField(default=True)
    market_reason = models.CharField(max_length=200, blank=True)
    market_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "trading_state"

    def __str__(self) -> str:
        return f"{self.mode}: {self.reason}" if self.reason else self.mode


class MaintenanceWindow(models.Model):
    """An operator-declared time when no entries are sent (all pairs, or the listed ones)."""

    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    # Pair symbols; empty means every pair.
    pairs = models.JSONField(default=list, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "trading_maintenance_windows"
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="maintenance_window_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%H:%M} UTC"


class MarketSchedule(models.Model):
    """When a class of instruments trades: weekly sessions and daily breaks in a time zone
    (``trading.schedule.Schedule`` is the pure copy the rules read). The one with an
    ``instrument_type`` is that class's default; others serve pairs through ``PairSchedule``."""

    name = models.CharField(max_length=60, unique=True)
    instrument_type = models.CharField(
        max_length=8, choices=Pair.InstrumentType.choices, unique=True, null=True, blank=True
    )
    time_zone = models.CharField(max_length=60, default="America/New_York")
    # Whether the configured FX holidays (``market.holidays``) close this market too.
    holidays = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trading_market_schedules"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValidationError(
                {
                    "time_zone": f"time_zone={self.time_zone!r} is not valid; expected an IANA "
                    "zone such as America/New_York."
                }
            ) from error


class ScheduleSession(models.Model):
    """A weekly session of a schedule, within one Sunday-to-Saturday week."""

    class Day(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    schedule = models.ForeignKey(MarketSchedule, on_delete=models.CASCADE, related_name="sessions")
    opens_day = models.PositiveSmallIntegerField(choices=Day.choices)
    opens_at = models.TimeField()
    closes_day = models.PositiveSmallIntegerField(choices=Day.choices)
    closes_at = models.TimeField()

    class Meta:
        db_table = "trading_schedule_sessions"
        ordering = ["schedule", "id"]

    def __str__(self) -> str:
        return (
            f"{self.get_opens_day_display()} {self.opens_at:%H:%M} to "
            f"{self.get_closes_day_display()} {self.closes_at:%H:%M}"
        )

    def clean(self) -> None:
        if None in (self.opens_day, self.opens_at, self.closes_day, self.closes_at):
            return
        try:
            Session(self.opens_day, self.opens_at, self.closes_day, self.closes_at)
        except ScheduleError as error:
            raise ValidationError({"closes_at": str(error)}) from error


class ScheduleBreak(models.Model):
    """A daily break of a schedule (within one day)."""

    schedule = models.ForeignKey(MarketSchedule, on_delete=models.CASCADE, related_name="breaks")
    starts_at = models.TimeField()
    ends_at = models.TimeField()

    class Meta:
        db_table = "trading_schedule_breaks"
        ordering = ["schedule", "starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="schedule_break_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.starts_at:%H:%M}-{self.ends_at:%H:%M}"

    def clean(self) -> None:
        if self.starts_at is None or self.ends_at is None:
            return
        try:
            Break(self.starts_at, self.ends_at)
        except ScheduleError as error:
            raise ValidationError({"ends_at": str(error)}) from error


class PairSchedule(models.Model):
    """A pair that trades on another schedule than its instrument class's default."""

    pair = models.OneToOneField(
        Pair,
        to_field="symbol",
        db_column="pair",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="schedule_override",
    )
    schedule = models.ForeignKey(MarketSchedule, on_delete=models.PROTECT, related_name="pairs")

    class Meta:
        db_table = "trading_pair_schedules"
        ordering = ["pair"]

    def __str__(self) -> str:
        return f"{self.pair_id}: {self.schedule.name}"
