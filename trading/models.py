from __future__ import annotations

import uuid

from django.db import models

from marketdata.models import pair_foreign_key
from marketdata.timeframes import Timeframe


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
