"""The daily parity report: one per New York trading day and pair, with its signal mismatches and
its per-trade execution rows (README, "Parity report"). Written by ``parity.services.parity_run``
only (a rerun replaces the day's rows); the console and the API read them."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from marketdata.models import pair_foreign_key
from parity import replay


def _money() -> models.DecimalField[Decimal, Decimal]:
    return models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))


def _price() -> models.DecimalField[Decimal | None, Decimal | None]:
    return models.DecimalField(max_digits=16, decimal_places=6, null=True, blank=True)


class ParityReport(models.Model):
    """The live day of one pair replayed through the evaluation code and compared with what live
    did: counts of signals and mismatches by cause, the P&L of both sides and their difference
    (live minus replay, account currency) split into parts that add up to it exactly."""

    id = models.BigAutoField(primary_key=True)
    # The 17:00 New York trading day, labelled by the date it ends on (trading.schedule).
    day = models.DateField()
    pair = pair_foreign_key("parity_reports", indexed=False)
    # The minutes compared: from the first to the last the live system handled that day.
    live_from = models.DateTimeField(null=True, blank=True)
    live_to = models.DateTimeField(null=True, blank=True)
    # The rule replayed: the promoted model's (or the default rule of a pair forced to trade).
    pair_model = models.ForeignKey(
        "qfh.PairModel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rule_type = models.CharField(max_length=32, blank=True)
    rule_params = models.JSONField(default=dict, blank=True)
    rule_version = models.CharField(max_length=16, blank=True)
    # How the rule that ran live differed from the model's, when it did.
    rule_note = models.CharField(max_length=500, blank=True)
    candles = models.PositiveIntegerField(default=0)
    replay_signals = models.PositiveIntegerField(default=0)
    live_signals = models.PositiveIntegerField(default=0)
    matched_signals = models.PositiveIntegerField(default=0)
    mismatches = models.PositiveIntegerField(default=0)
    unexplained = models.PositiveIntegerField(default=0)
    # Mismatches per cause, every cause listed.
    causes = models.JSONField(default=dict, blank=True)
    replay_trades = models.PositiveIntegerField(default=0)
    live_trades = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="USD")
    replay_pl = _money()
    live_pl = _money()
    # live_pl - replay_pl, and the same split by part (replay.BUCKETS, amounts as text).
    pl_difference = _money()
    attribution = models.JSONField(default=dict, blank=True)
    slippage_mean_pips = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    slippage_max_pips = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # Cumulative replayed and live P&L at each trade's close: [{"time", "replay", "live"}].
    equity = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=500, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        db_table = "parity_reports"
        ordering = ["-day", "pair"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "day"], name="parity_reports_one_per_day"),
        ]
        indexes = [models.Index(fields=["day"], name="parity_reports_day")]

    def __str__(self) -> str:
        return f"parity {self.pair_id} {self.day:%Y-%m-%d}"


class ParityMismatch(models.Model):
    """A minute where the replay and live disagree, and why."""

    class Kind(models.TextChoices):
        LIVE_ONLY = replay.LIVE_ONLY, "Live only"
        REPLAY_ONLY = replay.REPLAY_ONLY, "Replay only"
        DIRECTION = replay.DIRECTION, "Direction"
        CONFIDENCE = replay.CONFIDENCE, "Confidence"

    class Cause(models.TextChoices):
        WORKER_DOWN = replay.WORKER_DOWN, "Worker down"
        CANDLE_LATE = replay.CANDLE_LATE, "Candle late"
        HISTORY_SHORT = replay.HISTORY_SHORT, "History too short"
        PAIR_NOT_TRADING = replay.PAIR_NOT_TRADING, "Pair not trading"
        CANDLE_REVISED = replay.CANDLE_REVISED, "Candle revised"
        UNEXPLAINED = replay.UNEXPLAINED, "Unexplained"

    id = models.BigAutoField(primary_key=True)
    report = models.ForeignKey(ParityReport, on_delete=models.CASCADE, related_name="mismatch_rows")
    time = models.DateTimeField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    cause = models.CharField(max_length=16, choices=Cause.choices)
    detail = models.CharField(max_length=500, blank=True)
    live_direction = models.CharField(max_length=4, blank=True)
    live_confidence = models.FloatField(null=True, blank=True)
    replay_direction = models.CharField(max_length=4, blank=True)
    replay_confidence = models.FloatField(null=True, blank=True)
    signal = models.ForeignKey(
        "trading.TradingSignal", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "parity_mismatches"
        ordering = ["report", "time"]
        verbose_name_plural = "parity mismatches"

    def __str__(self) -> str:
        return f"{self.kind} {self.time:%H:%M} {self.cause}"


class ParityExecution(models.Model):
    """A replayed trade against what live did with its signal (or a live trade the replay has no
    signal for), with its P&L difference split into parts."""

    class Outcome(models.TextChoices):
        FILLED = replay.FILLED, "Filled"
        RISK_REFUSED = replay.RISK_REFUSED, "Refused by a risk rule"
        EXPIRED = replay.EXPIRED, "Expired"
        NOT_FILLED = replay.NOT_FILLED, "Not filled"
        MISSED = replay.MISSED, "No live signal"
        LIVE_ONLY = replay.LIVE_ONLY, "Live only"

    id = models.BigAutoField(primary_key=True)
    report = models.ForeignKey(
        ParityReport, on_delete=models.CASCADE, related_name="execution_rows"
    )
    time = models.DateTimeField()
    direction = models.CharField(max_length=4)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    reason = models.CharField(max_length=500, blank=True)
    risk_rules = models.JSONField(default=list, blank=True)
    signal = models.ForeignKey(
        "trading.TradingSignal", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    units = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal(0))
    replay_entry = _price()
    replay_exit = _price()
    replay_exit_reason = models.CharField(max_length=12, blank=True)
    replay_exit_time = models.DateTimeField(null=True, blank=True)
    live_entry = _price()
    live_exit = _price()
    live_close_reason = models.CharField(max_length=64, blank=True)
    live_closed_at = models.DateTimeField(null=True, blank=True)
    entry_slippage_pips = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    entry_slippage = _money()
    exit_difference = _money()
    financing = _money()
    replay_pl = _money()
    live_pl = _money()
    pl_difference = _money()
    # The difference by part (replay.BUCKETS, amounts as text); adds up to pl_difference.
    parts = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "parity_executions"
        ordering = ["report", "time", "id"]

    def __str__(self) -> str:
        return f"{self.direction} {self.time:%H:%M} {self.outcome}"
