from __future__ import annotations

from django.db import models
from timescale.db.models.fields import TimescaleDateTimeField

from marketdata.models import Pair
from marketdata.timeframes import Timeframe


class CandleMetrics(models.Model):
    """The QFH metrics of one closed candle: the window of bits that ends with its close.

    The window for the candle starting at ``time`` holds the close-to-close bits up to and including
    the move into that candle's close, so it uses nothing after the candle closed (QFH_SPEC.md
    section 0.3). ``params_version`` identifies the engine parameters and window length, so runs
    with other settings live side by side and re-running the same analysis changes nothing.
    """

    id = models.BigAutoField(primary_key=True)
    pair = models.ForeignKey(
        Pair,
        to_field="symbol",
        db_column="pair",
        on_delete=models.PROTECT,
        related_name="qfh_metrics",
        db_index=False,
        # As for candles: the writer validates the pair, and a per-row check slows bulk writes.
        db_constraint=False,
    )
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
