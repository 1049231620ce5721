from __future__ import annotations

import re
from decimal import Decimal
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from timescale.db.models.fields import TimescaleDateTimeField

from marketdata.timeframes import Timeframe

# OANDA's instrument names: upper-case letters and digits around one underscore (EUR_USD,
# XAU_USD, BTC_USD, DE30_EUR). URL patterns use it without the anchors.
PAIR_SYMBOL_PATTERN = r"^[A-Z0-9]+_[A-Z0-9]+$"
# The symbol columns (the pairs' and every table's ``pair``, the candle hypertable and its
# continuous aggregates included) are varchar(7): room for the FX pairs, the metals and the
# crypto CFDs. Longer index names (DE30_EUR, NAS100_USD) need those columns widened first.
PAIR_SYMBOL_MAX_LENGTH = 7


def pair_symbol_problem(symbol: object, *, field: str = "symbol") -> str | None:
    """Why ``symbol`` cannot be a pair symbol, naming the field, the value and what was expected;
    None when it can."""
    if not isinstance(symbol, str) or not re.fullmatch(PAIR_SYMBOL_PATTERN, symbol):
        return (
            f"{field}={symbol!r} does not match {PAIR_SYMBOL_PATTERN}; expected upper-case letters "
            "and digits around one underscore, such as EUR_USD or XAU_USD."
        )
    if len(symbol) > PAIR_SYMBOL_MAX_LENGTH:
        return (
            f"{field}={symbol!r} has {len(symbol)} characters; expected at most "
            f"{PAIR_SYMBOL_MAX_LENGTH}, such as EUR_USD or XAU_USD."
        )
    return None


def validate_pair_symbol(symbol: str) -> None:
    """The model field's validator: ``pair_symbol_problem`` as a ValidationError."""
    problem = pair_symbol_problem(symbol)
    if problem is not None:
        raise ValidationError(problem, code="invalid_symbol")


class Pair(models.Model):
    """A tradable instrument (a currency pair, a metal or a CFD): the broker's facts about it and
    our operator's settings for it.

    DESIGN.md section 3 treats the instrument and the pair as one entity. The broker-owned fields
    (type, pip location, precisions, minimum size, maximum order units, margin rate, financing) are
    refreshed from OANDA's AccountInstruments by ``marketdata.services.instruments_sync``; the rest
    is ours.
    Lifecycle transitions are made by trading's services.
    """

    # The broker-owned fields, as the console shows them and the instruments sync writes them.
    BROKER_FIGURES: ClassVar[tuple[str, ...]] = (
        "instrument_type",
        "pip_location",
        "display_precision",
        "trade_units_precision",
        "minimum_trade_size",
        "maximum_order_units",
        "margin_rate",
        "financing",
    )

    class State(models.TextChoices):
        UNTRAINED = "untrained", "Untrained"
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        # Trading on paper fills at the live bid/ask, no order sent to the broker: the stage between
        # a promoted model and live trading (trading/paper.py, README "Paper stage before live").
        PAPER = "paper", "Paper (simulated fills, no orders at the broker)"
        TRADING = "trading", "Trading"
        # Demoted automatically (trading/demotion.py): exits only, open trades keep their stops.
        REDUCING = "reducing", "Reducing only (demoted)"
        DISABLED = "disabled", "Disabled"
        ERROR = "error", "Error"

    # The states whose enabled pairs are analysed live and whose signals are executed: for real
    # in ``trading``, on paper fills in ``paper``.
    SIGNAL_STATES: ClassVar[tuple[str, ...]] = (State.TRADING, State.PAPER)

    class InstrumentType(models.TextChoices):
        """OANDA's InstrumentType."""

        CURRENCY = "CURRENCY", "Currency"
        METAL = "METAL", "Metal"
        CFD = "CFD", "CFD"

    symbol = models.CharField(
        max_length=PAIR_SYMBOL_MAX_LENGTH, unique=True, validators=[validate_pair_symbol]
    )
    instrument_type = models.CharField(
        max_length=8, choices=InstrumentType.choices, default=InstrumentType.CURRENCY
    )
    # A pip is 10 ** pip_location in price units: -4 for EUR_USD, -2 for USD_JPY.
    pip_location = models.SmallIntegerField(default=-4)
    display_precision = models.PositiveSmallIntegerField(default=5)
    trade_units_precision = models.PositiveSmallIntegerField(default=0)
    minimum_trade_size = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal(1))
    # OANDA's published maximum for a single order on the major pairs.
    maximum_order_units = models.DecimalField(
        max_digits=16, decimal_places=2, default=Decimal(100_000_000)
    )
    margin_rate = models.DecimalField(max_digits=8, decimal_places=6, default=Decimal("0.0333"))
    # The instrument's financing as the broker lists it (OANDA's ``financing``: ``longRate``,
    # ``shortRate`` as decimal strings, ``financingDaysOfWeek``); empty until an instruments sync.
    # The evaluation, training and the parity replay charge these rates.
    financing = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.UNTRAINED)
    state_reason = models.CharField(max_length=500, blank=True)
    risk_overrides = models.JSONField(default=dict, blank=True)
    # Trading without a promoted pair model is an audited operator decision.
    forced_without_model = models.BooleanField(default=False)
    # When the current paper stage began, on the broker's clock (the trading days it has lasted
    # and the parity reports it answers to are the market's); None when the pair never was on
    # paper. Kept after the pair advances to live, as the start of the stage it passed.
    paper_started_at = models.DateTimeField(null=True, blank=True)
    # The execution node that trades this pair; none means the default ``execution`` queue.
    node = models.ForeignKey(
        "septrader.Node", on_delete=models.SET_NULL, null=True, blank=True, related_name="pairs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trading_pairs"
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def pip_size(self) -> Decimal:
        return Decimal(10) ** self.pip_location

    @property
    def base_currency(self) -> str:
        return self.symbol.partition("_")[0]

    @property
    def quote_currency(self) -> str:
        return self.symbol.partition("_")[2]


def pair_foreign_key(
    related_name: str, *, indexed: bool = True, constrained: bool = True
) -> models.ForeignKey[Pair, Pair]:
    """A reference to a pair by its symbol, stored in a column named ``pair`` (EUR_USD, readable
    in SQL). Deleting a pair that is referenced is refused (PROTECT, enforced by Django even where
    the database has no foreign key: the hypertables skip it for bulk-write speed)."""
    return models.ForeignKey(
        Pair,
        to_field="symbol",
        db_column="pair",
        on_delete=models.PROTECT,
        related_name=related_name,
        db_index=indexed,
        db_constraint=constrained,
    )


class Candle(models.Model):
    """One OHLC candle of a pair at a timeframe, stored in a TimescaleDB hypertable.

    The natural key (pair, timeframe, time) is unique, so every writer upserts through
    ``marketdata.services.candles_ingest``. ``time`` is the start of the period, in UTC.
    """

    id = models.BigAutoField(primary_key=True)
    # The unique constraint below starts with the pair and serves as its index. No database
    # foreign key: ingestion already refuses unknown pairs, and the per-row check cost 40% of the
    # insert time into the hypertable (measured: 2.6 s instead of 4.7 s for 200,000 rows).
    pair = pair_foreign_key("candles", indexed=False, constrained=False)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    # Weekly chunks: about 10,000 M1 rows per pair each, small enough to compress and drop whole.
    time = TimescaleDateTimeField(interval="7 days")
    open = models.DecimalField(max_digits=16, decimal_places=6)
    high = models.DecimalField(max_digits=16, decimal_places=6)
    low = models.DecimalField(max_digits=16, decimal_places=6)
    close = models.DecimalField(max_digits=16, decimal_places=6)
    volume = models.IntegerField(default=0)
    complete = models.BooleanField(default=True)

    class Meta:
        db_table = "market_candles"
        constraints = [
            models.UniqueConstraint(
                fields=["pair", "timeframe", "time"], name="market_candles_pair_timeframe_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pair_id} {self.timeframe} {self.time:%Y-%m-%dT%H:%MZ}"


class AggregatedCandle(models.Model):
    """A higher-timeframe candle built by the database from M1 candles (read-only).

    On TimescaleDB each timeframe is a continuous aggregate with real-time aggregation, elsewhere a
    plain SQL view with the same columns (migration 0003). ``complete`` is true only when every M1
    candle in the period was complete; callers also check that the period has ended.
    """

    pk = models.CompositePrimaryKey("pair", "time")
    pair = models.CharField(max_length=PAIR_SYMBOL_MAX_LENGTH, db_column="pair")
    time = models.DateTimeField()
    open = models.DecimalField(max_digits=16, decimal_places=6)
    high = models.DecimalField(max_digits=16, decimal_places=6)
    low = models.DecimalField(max_digits=16, decimal_places=6)
    close = models.DecimalField(max_digits=16, decimal_places=6)
    volume = models.BigIntegerField()
    minutes = models.IntegerField()
    complete = models.BooleanField()

    class Meta:
        abstract = True
        managed = False

    def __str__(self) -> str:
        return f"{self.pair} {self._meta.db_table} {self.time:%Y-%m-%dT%H:%MZ}"


class CandleM5(AggregatedCandle):
    class Meta(AggregatedCandle.Meta):
        db_table = "market_candles_m5"


class CandleM15(AggregatedCandle):
    class Meta(AggregatedCandle.Meta):
        db_table = "market_candles_m15"


class CandleH1(AggregatedCandle):
    class Meta(AggregatedCandle.Meta):
        db_table = "market_candles_h1"
