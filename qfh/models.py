from __future__ import annotations

from typing import ClassVar

from django.db import models
from timescale.db.models.fields import TimescaleDateTimeField

from marketdata.models import pair_foreign_key
from marketdata.timeframes import Timeframe


class CandleMetrics(models.Model):
    """The QFH metrics of one closed candle: the window of bits that ends with its close.

    The window for the candle starting at ``time`` holds the close-to-close bits up to and including
    the move into that candle's close, so it uses nothing after the candle closed (QFH_SPEC.md
    section 0.3). ``params_version`` identifies the engine parameters and window length, so runs
    with other settings live side by side and re-running the same analysis changes nothing.
    """

    id = models.BigAutoField(primary_key=True)
    # As for candles: the writer validates the pair, and a per-row check slows bulk writes.
    pair = pair_foreign_key("qfh_metrics", indexed=False, constrained=False)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    time = TimescaleDateTimeField(interval="7 days")
    params_version = models.CharField(max_length=32)
    window_bits = models.PositiveSmallIntegerField()
    null_count = models.PositiveSmallIntegerField()
    flip_count = models.PositiveSmallIntegerField()
    rupture_count = models.PositiveSmallIntegerField()
    entropy = models.FloatField()
    coherence = models.FloatField()
    base_coherence = models.FloatField()
    rupture_ratio = models.FloatField()
    flip_ratio = models.FloatField()
    collapse = models.BooleanField()
    damped_value = models.FloatField()
    decay = models.FloatField()
    trajectory_confidence = models.FloatField()

    class Meta:
        db_table = "qfh_candle_metrics"
        verbose_name_plural = "candle metrics"
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "timeframe", "params_version", "time"],
                name="qfh_candle_metrics_natural_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} {self.timeframe} {self.time:%Y-%m-%dT%H:%MZ} {self.params_version}"


class PairModel(models.Model):
    """A trained signal rule for one pair: its parameters, what it was trained on (data range and
    a hash of the inputs), its walk-forward out-of-sample figures, and the promotion gates it
    passed or failed. At most one model per pair is promoted (live trading uses it).

    The figures are written once by ``qfh.evaluation.services.pair_model_train`` and never
    edited; only ``promoted`` / ``promoted_at`` change, through ``pair_model_promote``.
    """

    id = models.BigAutoField(primary_key=True)
    pair = pair_foreign_key("qfh_models")
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices, default=Timeframe.M1)
    rule_type = models.CharField(max_length=32)
    params = models.JSONField()
    horizon = models.PositiveSmallIntegerField()
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    candles = models.PositiveIntegerField()
    inputs_hash = models.CharField(max_length=64, db_index=True)
    seed = models.BigIntegerField()
    search = models.JSONField(help_text="Search space, folds, costs and seed of the training.")
    folds = models.JSONField(help_text="Per fold: the set chosen on train and its test figures.")
    out_of_sample = models.JSONField()
    oos_trades = models.PositiveIntegerField()
    oos_hit_rate = models.FloatField()
    oos_hit_low = models.FloatField()
    oos_hit_high = models.FloatField()
    oos_expectancy_pips = models.FloatField()
    oos_pnl_pips = models.FloatField()
    oos_max_drawdown_pips = models.FloatField()
    oos_sharpe = models.FloatField()
    gates = models.JSONField(help_text="The promotion gates the result was checked against.")
    failed_gates = models.JSONField(default=list, blank=True)
    passed_gates = models.BooleanField(default=False)
    promoted = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # The walk-forward out-of-sample figures, in the order the console shows them and a sync
    # bundle carries them.
    OOS_FIGURES: ClassVar[tuple[str, ...]] = (
        "oos_trades",
        "oos_hit_rate",
        "oos_hit_low",
        "oos_hit_high",
        "oos_expectancy_pips",
        "oos_pnl_pips",
        "oos_max_drawdown_pips",
        "oos_sharpe",
    )

    class Meta:
        db_table = "qfh_pair_models"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["pair"],
                condition=models.Q(promoted=True),
                name="qfh_pair_models_one_promoted_per_pair",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} {self.rule_type} #{self.pk} ({self.inputs_hash[:10]})"


class RuleEvaluation(models.Model):
    """One evaluation of a signal rule on a pair and date range, with its baselines.

    ``leaky`` marks the original's look-ahead alignment, stored only to be shown next to the
    honest figures; it is never a result a model may be promoted on.
    """

    id = models.BigAutoField(primary_key=True)
    pair = pair_foreign_key("qfh_evaluations")
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices, default=Timeframe.M1)
    rule_type = models.CharField(max_length=32)
    params = models.JSONField()
    horizon = models.PositiveSmallIntegerField()
    leaky = models.BooleanField(default=False)
    alignment_label = models.CharField(max_length=120)
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    candles = models.PositiveIntegerField()
    costs = models.JSONField()
    performance = models.JSONField()
    baselines = models.JSONField()
    original = models.JSONField(help_text="The testbed's own measures (gross, dead band).")
    equity = models.JSONField(default=list, blank=True)
    by_confidence = models.JSONField(
        default=list, blank=True, help_text="Hit rate per confidence quintile of the trades."
    )
    trades = models.PositiveIntegerField()
    hit_rate = models.FloatField()
    hit_low = models.FloatField()
    hit_high = models.FloatField()
    pnl_pips = models.FloatField()
    inputs_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "qfh_rule_evaluations"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        kind = "leaky" if self.leaky else "causal"
        return f"{self.pair_id} {self.rule_type} h={self.horizon} {kind} #{self.pk}"


class LiveAnalysis(models.Model):
    """What became of one closed M1 minute of one pair in the live analysis (DESIGN.md section 4,
    step 2): when the streamer handed it over, when the analysis ran, what it decided (a signal, a
    hold, or skipped with the reason) and with which rule.

    The daily parity report (``parity/``) reads these rows to tell why the live system has no
    signal where the replay of the day has one: a minute never handed over arrived late (the
    streamer closes only the newest minute of a catch-up), one handed over but never analysed
    found no worker (its message expired), one skipped says why (too little history, the pair not
    trading). One narrow row per pair and minute, upserted: a rerun of the analysis changes
    nothing.
    """

    class Outcome(models.TextChoices):
        REQUESTED = "requested", "Handed to the analysis, not analysed"
        SIGNAL = "signal", "Signal"
        HOLD = "hold", "Hold"
        SKIPPED = "skipped", "Skipped"

    class Skip(models.TextChoices):
        """Why a skipped minute was not analysed."""

        NOT_TRADING = "not_trading", "Not an enabled pair in state trading"
        NO_MODEL = "no_model", "No promoted pair model"
        INVALID_RULE = "invalid_rule", "The stored rule is invalid"
        NOT_CLOSED = "not_closed", "The candle is not stored as closed"
        HISTORY = "history", "Too few closed candles before it"

    id = models.BigAutoField(primary_key=True)
    # The unique constraint below starts with the pair and serves as its index; no foreign-key
    # check, as for the metrics (the analysis writes one row per pair each minute).
    pair = pair_foreign_key("live_analyses", indexed=False, constrained=False)
    # The start of the M1 candle, in UTC.
    time = models.DateTimeField()
    requested_at = models.DateTimeField(null=True, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=9, choices=Outcome.choices, default=Outcome.REQUESTED)
    skip = models.CharField(max_length=12, choices=Skip.choices, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    # ``rules.Rule.version()`` of the rule that ran, and the promoted model it came from (none
    # for a pair forced to trade on the default rule).
    rule_version = models.CharField(max_length=16, blank=True)
    pair_model = models.ForeignKey(
        PairModel, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        db_table = "qfh_live_analyses"
        verbose_name_plural = "live analyses"
        constraints = [
            models.UniqueConstraint(fields=["pair", "time"], name="qfh_live_analyses_natural_key"),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} {self.time:%Y-%m-%dT%H:%MZ} {self.outcome}"
