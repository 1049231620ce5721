"""Writes for the QFH app: per-candle metrics computed from stored candles, and the live
analysis that turns each closed M1 candle into a TradingSignal (or nothing).

Both take the array module ``xp`` their caller chose (a task, a command); the stored candles go
to it once on the way in, and the numbers come back once, where they are stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from marketdata.models import Pair
from marketdata.selectors import Bar, candles_between, candles_last
from qfh import hooks, rules
from qfh.engine import DEFAULT_PARAMS, QFHParams, analyze_trailing, bits_from_closes, to_numpy
from qfh.evaluation.candles import Candles
from qfh.evaluation.evaluate import rule_signals
from qfh.evaluation.features import TESTBED_QFH, FeatureRequest, features_batch, history_needed
from qfh.models import CandleMetrics, LiveAnalysis, PairModel

logger = logging.getLogger(__name__)

# The testbed's window: candle i used at most 11 bits (QFH_SPEC.md section 1).
DEFAULT_WINDOW_BITS = 11
# A window needs two bits to hold one transition; the original skips shorter ones.
MIN_WINDOW_BITS = 2
_WRITE_BATCH = 5000
_METRIC_FIELDS = (
    "window_bits",
    "null_count",
    "flip_count",
    "rupture_count",
    "entropy",
    "coherence",
    "base_coherence",
    "rupture_ratio",
    "flip_ratio",
    "collapse",
    "damped_value",
    "decay",
    "trajectory_confidence",
)


def params_version(params: QFHParams, window_bits: int) -> str:
    """A short stable name for an engine configuration: the same inputs give the same name."""
    text = json.dumps({"window_bits": window_bits, **asdict(params)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class MetricsRun:
    pair: str
    timeframe: str
    params_version: str
    candles: int
    written: int


def candle_metrics_compute(
    *,
    pair: str,
    timeframe: str,
    start: datetime | None = None,
    end: datetime | None = None,
    window_bits: int = DEFAULT_WINDOW_BITS,
    params: QFHParams = DEFAULT_PARAMS,
    xp: ModuleType,
) -> MetricsRun:
    """Compute on ``xp`` and store the metrics of every candle of a pair starting in [start, end).

    The candles just before ``start`` are read too, so the first candles of the range get full
    windows and the result is the same however the range is split into runs. Rows are upserted on
    (pair, timeframe, params_version, time): running the same analysis again writes identical rows.
    """
    if window_bits < MIN_WINDOW_BITS:
        raise ValueError(f"window_bits={window_bits} is too small; expected at least 2")
    history: list[Bar] = []
    if start is not None:
        history = candles_last(pair=pair, timeframe=timeframe, count=window_bits, until=start)
    # A forming candle's close still moves, so only closed candles are analysed.
    bars = [
        bar
        for bar in candles_between(pair=pair, timeframe=timeframe, start=start, end=end)
        if bar.complete
    ]
    version = params_version(params, window_bits)
    series = history + bars
    if len(series) < 2 or not bars:
        return MetricsRun(pair, timeframe, version, len(bars), 0)
    closes = xp.asarray(np.array([float(bar.close) for bar in series], dtype=np.float64))
    result, lengths = analyze_trailing(bits_from_closes(closes), window_bits, params)
    columns = {name: to_numpy(value).reshape(-1) for name, value in result.as_dict().items()}
    columns["window_bits"] = to_numpy(lengths).reshape(-1)
    # Bit j is the move from candle j to candle j + 1, so candle j + 1's window ends at bit j.
    rows = []
    for offset, bar in enumerate(bars):
        bit = len(history) + offset - 1
        if bit < 0 or columns["window_bits"][bit] < MIN_WINDOW_BITS:
            continue
        values: dict[str, Any] = {name: columns[name][bit].item() for name in _METRIC_FIELDS}
        values["collapse"] = bool(values["collapse"])
        rows.append(
            CandleMetrics(
                pair_id=pair, timeframe=timeframe, time=bar.time, params_version=version, **values
            )
        )
    with transaction.atomic():
        for first in range(0, len(rows), _WRITE_BATCH):
            CandleMetrics.objects.bulk_create(
                rows[first : first + _WRITE_BATCH],
                update_conflicts=True,
                unique_fields=["pair", "timeframe", "params_version", "time"],
                update_fields=list(_METRIC_FIELDS),
            )
    logger.info(
        "event=qfh_metrics_stored pair=%s timeframe=%s params_version=%s candles=%d written=%d",
        pair,
        timeframe,
        version,
        len(bars),
        len(rows),
    )
    return MetricsRun(pair, timeframe, version, len(bars), len(rows))


# ---------------------------------------------------------------------------------------------
# Live signals (DESIGN.md section 4, step 2).

# A pair forced to trade without a promoted model (an audited operator decision) uses the
# published testbed rule: the section 5.1 weights and thresholds, made causal, high-confidence
# signals only, no multi-timeframe confirmation.
DEFAULT_LIVE_RULE = rules.validate_rule("testbed")
_DIRECTIONS = {rules.BUY: "BUY", rules.SELL: "SELL"}
_TIMEFRAMES = {300: "M5", 900: "M15"}


@dataclass(frozen=True)
class PairOutcome:
    """What the live analysis did for one pair at one candle."""

    pair: str
    outcome: str  # signal, hold, skipped
    reason: str = ""
    direction: str = ""
    confidence: float = 0.0
    signal_id: str = ""
    queue: str = ""
    # Why a pair was skipped, as a code (``LiveAnalysis.Skip``); the reason says it in words.
    skip: str = ""


def live_rule_for(pair: Pair) -> tuple[rules.Rule, PairModel | None] | None:
    """The rule a trading pair trades with: its promoted model's, the default rule when the pair
    is forced to trade without a model, else None. A stored rule is validated again here."""
    model = PairModel.objects.filter(pair_id=pair.symbol, promoted=True).first()
    if model is not None:
        return rules.validate_rule(model.rule_type, model.params), model
    if pair.forced_without_model:
        return DEFAULT_LIVE_RULE, None
    return None


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _metric_values(result: Any, bit: int, timeframe: str) -> dict[str, Any]:
    """The stored metric columns of window ``bit`` as ``<timeframe>.<name>`` (still on the
    analysis's array module)."""
    return {
        f"{timeframe}.{name}": getattr(result, name)[bit]
        for name in _METRIC_FIELDS
        if name != "window_bits"
    }


def _to_host(xp: ModuleType, values: dict[str, Any]) -> dict[str, float]:
    """Scalars on ``xp`` as host floats, copied in one transfer (where the results are stored).

    Counts, flags and float64 metrics are exact in float64."""
    if not values:
        return {}
    stacked = xp.stack([xp.asarray(value, dtype=xp.float64) for value in values.values()])
    return dict(zip(values, to_numpy(stacked).tolist(), strict=True))


def _metrics_row(
    *, pair: str, timeframe: str, time: datetime, values: dict[str, float], bit: int, window: int
) -> CandleMetrics:
    row: dict[str, Any] = {
        name: values[f"{timeframe}.{name}"] for name in _METRIC_FIELDS if name != "window_bits"
    }
    for name in ("null_count", "flip_count", "rupture_count"):
        row[name] = int(row[name])
    row["collapse"] = bool(row["collapse"])
    return CandleMetrics(
        pair_id=pair,
        timeframe=timeframe,
        time=time,
        params_version=params_version(TESTBED_QFH, window),
        window_bits=min(window, bit + 1),
        **row,
    )


@dataclass(frozen=True)
class _Work:
    """One pair to analyse: its rule, the promoted model (if any) and its closed candles."""

    pair: Pair
    rule: rules.Rule
    model: PairModel | None
    bars: list[Bar]


def signals_analyze_closed(
    *, pairs: list[str], time: datetime, xp: ModuleType
) -> list[PairOutcome]:
    """Analyse the M1 candle starting at ``time`` of every trading pair in ``pairs`` on ``xp``.

    For each enabled pair in state ``trading`` with a rule (``live_rule_for``): read the closed
    candles the rule needs (``history_needed``), compute the features of all pairs in one batch
    (M1 and the M5/M15 built from it), apply the rule with the same functions the evaluation
    uses, store the candle's metrics (M1, and M5/M15 when a bucket closed with this minute) and a
    TradingSignal unless the rule holds. After the commit each new signal is sent to its pair's
    execution queue. Running it again stores nothing new; a signal still ``new`` is sent again,
    which is harmless because execution claims a signal with a conditional update.
    """
    if timezone.is_naive(time):
        raise ValueError(f"time={time!r} has no time zone; expected an aware UTC time")
    work, outcomes = _live_work(pairs, time)
    metrics_rows: list[CandleMetrics] = []
    made: list[hooks.NewSignal] = []
    if work:
        requests = [_feature_request(item) for item in work]
        batch = features_batch(requests, xp=xp)
        for item, request, (features, higher) in zip(work, requests, batch, strict=True):
            rows, signal = _analysed(item, request.window, features, higher, time, xp)
            metrics_rows.extend(rows)
            if signal is None:
                outcomes.append(PairOutcome(item.pair.symbol, "hold"))
            else:
                made.append(signal)
    with transaction.atomic():
        if work:
            outcomes.extend(_live_results_store(metrics_rows, made))
        _live_analyses_record(outcomes, work, time)
    _log_outcomes(outcomes, time)
    return outcomes


def _live_work(pairs: list[str], time: datetime) -> tuple[list[_Work], list[PairOutcome]]:
    """The pairs to analyse at ``time`` with their rules and closed candles, and an outcome
    saying why for each pair left out."""
    outcomes: list[PairOutcome] = []
    # A pair on paper is analysed like a live one: only its execution differs.
    chosen = Pair.objects.filter(
        symbol__in=pairs, enabled=True, state__in=Pair.SIGNAL_STATES
    ).select_related("node")
    found = {pair.symbol: pair for pair in chosen}
    for symbol in sorted(set(pairs) - set(found)):
        outcomes.append(
            PairOutcome(
                symbol,
                "skipped",
                "not an enabled pair in state trading or paper",
                skip=LiveAnalysis.Skip.NOT_TRADING,
            )
        )
    work: list[_Work] = []
    for symbol in sorted(found):
        pair = found[symbol]
        try:
            chosen_rule = live_rule_for(pair)
        except rules.RuleError as error:
            logger.error("event=live_rule_invalid pair=%s error=%s", symbol, error)
            outcomes.append(
                PairOutcome(
                    symbol, "skipped", f"invalid rule: {error}", skip=LiveAnalysis.Skip.INVALID_RULE
                )
            )
            continue
        if chosen_rule is None:
            outcomes.append(
                PairOutcome(
                    symbol, "skipped", "no promoted pair model", skip=LiveAnalysis.Skip.NO_MODEL
                )
            )
            continue
        rule, model = chosen_rule
        count = history_needed(
            window=rule.params["window"],
            volatility_lookback=rule.params.get("volatility_lookback", 100),
            confirm=True,
        )
        bars = [
            bar
            for bar in candles_last(
                pair=symbol, timeframe="M1", count=count, until=time + timedelta(minutes=1)
            )
            if bar.complete
        ]
        if not bars or bars[-1].time != time:
            outcomes.append(
                PairOutcome(
                    symbol,
                    "skipped",
                    "the candle is not stored as closed",
                    skip=LiveAnalysis.Skip.NOT_CLOSED,
                )
            )
        elif len(bars) < count:
            outcomes.append(
                PairOutcome(
                    symbol,
                    "skipped",
                    f"{len(bars)} closed candles; {count} needed",
                    skip=LiveAnalysis.Skip.HISTORY,
                )
            )
        else:
            work.append(_Work(pair, rule, model, bars))
    return work, outcomes


def _feature_request(item: _Work) -> FeatureRequest:
    return FeatureRequest(
        candles=Candles.from_bars(item.bars, seconds=60, pip=float(item.pair.pip_size)),
        window=item.rule.params["window"],
        volatility_lookback=item.rule.params.get("volatility_lookback", 100),
        confirm=True,
    )


def _analysed(
    item: _Work,
    window: int,
    features: Any,
    higher: Any,
    time: datetime,
    xp: ModuleType,
) -> tuple[list[CandleMetrics], hooks.NewSignal | None]:
    """The metric rows of one pair's closed minute (M1, and M5/M15 when a bucket closed with
    it) and its signal, or None when the rule holds. Nothing is written here."""
    last_bit = len(item.bars) - 2
    signals = rule_signals(item.rule.rule_type, item.rule.params, features, higher)
    # Everything stored below leaves the analysis's array module in one transfer.
    close = _epoch(time) + 60
    closed = [frame for frame in higher if close % frame.seconds == 0 and len(frame.times) >= 2]
    wanted = _metric_values(features.qfh, last_bit, "M1")
    for frame in closed:
        label = _TIMEFRAMES[frame.seconds]
        wanted.update(_metric_values(frame.qfh, len(frame.times) - 2, label))
        wanted[f"{label}.time"] = frame.times[-1]
    wanted.update(
        direction=signals.direction[-1],
        confidence=signals.confidence[-1],
        high_confidence=signals.high_confidence[-1],
        coherence=features.coherence[-1],
        stability=features.stability[-1],
        entropy=features.entropy[-1],
        multiplier=features.multiplier[-1],
        volatility_multiplier=features.volatility[-1],
    )
    host = _to_host(xp, wanted)
    symbol = item.pair.symbol
    rows = [
        _metrics_row(
            pair=symbol, timeframe="M1", time=time, values=host, bit=last_bit, window=window
        )
    ]
    for frame in closed:
        label = _TIMEFRAMES[frame.seconds]
        rows.append(
            _metrics_row(
                pair=symbol,
                timeframe=label,
                time=datetime.fromtimestamp(int(host[f"{label}.time"]), UTC),
                values=host,
                bit=len(frame.times) - 2,
                window=window,
            )
        )
    direction = int(host["direction"])
    if direction == rules.HOLD:
        return rows, None
    metrics = _signal_metrics(item.rule, host, window, last_bit, item.bars)
    signal = hooks.NewSignal(
        pair=item.pair,
        model=item.model,
        time=time,
        direction=_DIRECTIONS[direction],
        confidence=metrics["confidence"],
        price=item.bars[-1].close,
        metrics=metrics,
    )
    return rows, signal


def candles_digest(bars: list[Bar]) -> str:
    """A short name for the candles an analysis read (times, prices, volumes): the parity report
    computes it again from the stored candles to tell a candle revised after its signal."""
    text = "\n".join(
        f"{bar.time.isoformat()}|{bar.open.normalize()}|{bar.high.normalize()}|"
        f"{bar.low.normalize()}|{bar.close.normalize()}|{bar.volume}"
        for bar in bars
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _signal_metrics(
    rule: rules.Rule, host: dict[str, float], window: int, last_bit: int, bars: list[Bar]
) -> dict[str, Any]:
    """What a signal records of the analysis that made it (TradingSignal.qfh_metrics): the rule
    and its parameters, and how many closed candles it read and their digest, so the day's replay
    can run the same rule on the same candles (parity/)."""
    return {
        "rule_type": rule.rule_type,
        "params_version": params_version(TESTBED_QFH, window),
        "rule_params": dict(rule.params),
        "rule_version": rule.version(),
        "candles": len(bars),
        "candles_digest": candles_digest(bars),
        "window_bits": min(window, last_bit + 1),
        "coherence": host["coherence"],
        "stability": host["stability"],
        "entropy": host["entropy"],
        "multiplier": host["multiplier"],
        "volatility_multiplier": host["volatility_multiplier"],
        "high_confidence": bool(host["high_confidence"]),
        "qfh_coherence": host["M1.coherence"],
        "qfh_entropy": host["M1.entropy"],
        "rupture_ratio": host["M1.rupture_ratio"],
        "flip_ratio": host["M1.flip_ratio"],
        "damped_value": host["M1.damped_value"],
        "trajectory_confidence": host["M1.trajectory_confidence"],
        "confidence": host["confidence"],
    }


def _live_results_store(
    metrics_rows: list[CandleMetrics], made: list[hooks.NewSignal]
) -> list[PairOutcome]:
    """Store the metric rows and hand each signal to execution (``qfh.hooks.signal_made``), in
    the caller's transaction."""
    outcomes: list[PairOutcome] = []
    CandleMetrics.objects.bulk_create(
        metrics_rows,
        update_conflicts=True,
        unique_fields=["pair", "timeframe", "params_version", "time"],
        update_fields=[name for name in _METRIC_FIELDS],
    )
    for signal in made:
        stored = hooks.signal_made(signal)
        outcomes.append(
            PairOutcome(
                signal.pair.symbol,
                "signal",
                "" if stored.created else "already stored",
                stored.direction,
                stored.confidence,
                stored.id,
                stored.queue,
            )
        )
    return outcomes


def live_analyses_requested(*, pairs: list[str], time: datetime) -> None:
    """Note that the streamer handed the minute starting at ``time`` of ``pairs`` to the
    analysis (an analysis that already ran keeps its row as it is)."""
    moment = timezone.now()
    LiveAnalysis.objects.bulk_create(
        [LiveAnalysis(pair_id=pair, time=time, requested_at=moment) for pair in pairs],
        ignore_conflicts=True,
    )


def _live_analyses_record(outcomes: list[PairOutcome], work: list[_Work], time: datetime) -> None:
    """One LiveAnalysis row per pair analysed or skipped at ``time``, with the rule that ran."""
    ran = {item.pair.symbol: item for item in work}
    moment = timezone.now()
    rows = []
    for outcome in outcomes:
        item = ran.get(outcome.pair)
        rows.append(
            LiveAnalysis(
                pair_id=outcome.pair,
                time=time,
                analysed_at=moment,
                outcome=outcome.outcome,
                skip=outcome.skip,
                reason=outcome.reason[:200],
                rule_version=item.rule.version() if item is not None else "",
                pair_model=item.model if item is not None else None,
            )
        )
    LiveAnalysis.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["pair", "time"],
        update_fields=["analysed_at", "outcome", "skip", "reason", "rule_version", "pair_model"],
    )


def _log_outcomes(outcomes: list[PairOutcome], time: datetime) -> None:
    for outcome in outcomes:
        logger.info(
            "event=live_analysis pair=%s time=%s outcome=%s reason=%r direction=%s "
            "confidence=%.4f signal_id=%s queue=%s",
            outcome.pair,
            time.isoformat(),
            outcome.outcome,
            outcome.reason,
            outcome.direction or "-",
            outcome.confidence,
            outcome.signal_id or "-",
            outcome.queue or "-",
        )
