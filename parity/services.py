"""Writes of the parity app: the daily shadow replay (issue #20, item 1; README "Parity report").

``parity_run(day=..., pairs=...)`` replays a finished New York trading day of each pair through
the evaluation code with the rule its promoted model holds, compares it minute by minute and
trade by trade with what live did (``parity.replay`` holds the reasoning), and stores one
``ParityReport`` per pair and day; a rerun replaces the day's report. Then the pair's parity
alerts follow its newest report.
"""

from __future__ import annotations

import bisect
import logging
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketdata.models import Candle, Pair, pair_symbol_problem
from marketdata.selectors import Bar, broker_now, candles_between, candles_last
from monitoring.models import Severity
from monitoring.services import alert_raise, alert_resolve
from parity import replay
from parity.models import ParityExecution, ParityMismatch, ParityReport
from qfh import rules
from qfh.evaluation.candles import Candles
from qfh.evaluation.evaluate import host_signals
from qfh.evaluation.features import history_needed
from qfh.evaluation.outcomes import Costs
from qfh.evaluation.services import pair_costs
from qfh.models import LiveAnalysis, PairModel
from qfh.services import DEFAULT_LIVE_RULE, candles_digest
from septrader.models import AuditLog
from septrader.selectors import config_values
from septrader.services import audit_record
from trading.execution import stop_distances
from trading.models import AccountSnapshot, Order, Trade, TradingSignal
from trading.risk import refusing_rules
from trading.schedule import trading_day, trading_day_bounds

logger = logging.getLogger(__name__)

# How long after its day a replayed trade may run on the stored candles to meet its stop or
# target; one still open then is marked at the last close, as the live trade is by the broker.
PATH_DAYS = 7
# The units of a replayed trade that live never sized (no order, no risk figures) when the day
# has no live entry to take them from: the evaluation's default size.
DEFAULT_UNITS = Decimal(str(Costs().units))
MINUTE = timedelta(minutes=1)
# The audit action of a prune of the live analysis log; its details say where it cut.
PRUNE_ACTION = "parity.live_analyses_pruned"


class ParityError(ValueError):
    """Bad input to the parity report; names the field, the value and what was expected."""

    def __init__(self, field: str, value: Any, expected: str) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.message = f"{field}={value!r} is not valid; expected {expected}."
        super().__init__(self.message)


# ----- input -------------------------------------------------------------------------------------


def parity_day_check(day: date, *, now: datetime | None = None) -> None:
    """Refuse a trading day that has not ended on the market's clock (``broker_now``: the real
    clock live, the simulator's in the demo), or whose live analysis log has been pruned."""
    moment = now or broker_now()
    end = trading_day_bounds(day)[1]
    if end > moment:
        raise ParityError(
            "day",
            day.isoformat(),
            f"a trading day that has ended: {day.isoformat()} ends at 17:00 New York "
            f"({end:%Y-%m-%d %H:%M} UTC) and the market's clock reads {moment:%Y-%m-%d %H:%M} UTC "
            f"(the last finished day is {(trading_day(moment) - timedelta(days=1)).isoformat()})",
        )
    pruned = live_analyses_pruned_before()
    if pruned is not None and trading_day_bounds(day)[0] < pruned:
        raise ParityError(
            "day",
            day.isoformat(),
            f"a trading day from {trading_day(pruned).isoformat()} on: the live analysis log "
            f"before {pruned:%Y-%m-%d %H:%M} UTC was pruned (SystemConfig "
            f"parity.live_analysis_days), so a replay could no longer tell why live differed; "
            f"the day's stored report, if any, stays readable",
        )


def live_analyses_pruned_before() -> datetime | None:
    """Where the newest prune of the live analysis log cut it (None: never pruned)."""
    entry = AuditLog.objects.filter(action=PRUNE_ACTION).order_by("-time").values("details").first()
    return datetime.fromisoformat(entry["details"]["before"]) if entry else None


def live_analyses_prune(*, now: datetime | None = None) -> int:
    """Delete the live analysis log of the trading days more than SystemConfig
    ``parity.live_analysis_days`` before ``now`` (the market's clock); one pair at a time, so
    each delete walks the (pair, time) index. A prune that deleted rows is audited with its cut,
    and reruns of the days before it are refused (``parity_day_check``). Returns the count."""
    moment = now or broker_now()
    days = int(config_values("parity.live_analysis_days")["parity.live_analysis_days"])
    cutoff = trading_day_bounds(trading_day(moment) - timedelta(days=days))[0]
    deleted = 0
    for symbol in Pair.objects.order_by("symbol").values_list("symbol", flat=True):
        count, _ = LiveAnalysis.objects.filter(pair_id=symbol, time__lt=cutoff).delete()
        deleted += count
    if deleted:
        audit_record(
            actor="system:parity",
            action=PRUNE_ACTION,
            target="qfh_live_analyses",
            details={"before": cutoff.isoformat(), "rows": deleted, "days_kept": days},
        )
        logger.info("event=live_analyses_pruned before=%s rows=%d", cutoff.isoformat(), deleted)
    return deleted


def parity_pairs_check(pairs: Iterable[str]) -> list[str]:
    """The pairs asked for, each a well-formed symbol of a pair the system knows."""
    chosen = list(dict.fromkeys(pairs))
    for symbol in chosen:
        problem = pair_symbol_problem(symbol, field="pair")
        if problem is not None:
            raise ParityError("pair", symbol, problem.split("; expected ", 1)[-1].rstrip("."))
    known = set(Pair.objects.filter(symbol__in=chosen).values_list("symbol", flat=True))
    for symbol in chosen:
        if symbol not in known:
            every = sorted(Pair.objects.values_list("symbol", flat=True))
            raise ParityError(
                "pair",
                symbol,
                f"one of the {len(every)} pairs the system knows, such as "
                f"{', '.join(every[:5])} (GET /api/pairs/status lists them)",
            )
    return chosen


def pairs_of_day(day: date) -> list[str]:
    """The pairs that were live on ``day``: those the live analysis handled or signalled for,
    and, on a day anything was live, every pair enabled now."""
    start, end = trading_day_bounds(day)
    # The pair columns hold the symbol (django-stubs types a foreign key's id as an int).
    active = {
        str(symbol)
        for rows in (
            LiveAnalysis.objects.filter(time__gte=start, time__lt=end),
            TradingSignal.objects.filter(time__gte=start, time__lt=end),
        )
        for symbol in rows.values_list("pair_id", flat=True).distinct()
    }
    if active:
        active |= set(Pair.objects.filter(enabled=True).values_list("symbol", flat=True))
    return sorted(active)


def _reported(day: date) -> set[str]:
    return {
        str(symbol)
        for symbol in ParityReport.objects.filter(day=day).values_list("pair_id", flat=True)
    }


# ----- the run -----------------------------------------------------------------------------------


def parity_run(
    *, day: date, pairs: Sequence[str] | None = None, now: datetime | None = None
) -> list[ParityReport]:
    """Replay ``day`` for ``pairs`` (default: the pairs live that day) and store a report per
    pair, replacing any earlier one; then raise or resolve each pair's parity alerts."""
    parity_day_check(day, now=now)
    chosen = parity_pairs_check(pairs) if pairs else pairs_of_day(day)
    reports = [_pair_report(day, symbol) for symbol in chosen]
    for symbol in chosen:
        parity_alerts_update(pair=symbol)
    return reports


def parity_run_due(*, now: datetime | None = None) -> list[ParityReport]:
    """The beat's call: the last finished trading day's reports of the pairs that lack one, then
    the recent reports whose live trades have closed since (``reports_to_complete``)."""
    moment = now or broker_now()
    day = trading_day(moment) - timedelta(days=1)
    done = _reported(day)
    missing = [symbol for symbol in pairs_of_day(day) if symbol not in done]
    reports = parity_run(day=day, pairs=missing, now=moment) if missing else []
    for earlier, symbols in sorted(reports_to_complete(moment).items()):
        reports += parity_run(day=earlier, pairs=symbols, now=moment)
    return reports


def reports_to_complete(now: datetime) -> dict[date, list[str]]:
    """Reports of the last ``PATH_DAYS`` days computed while one of their live trades was open,
    whose trade has closed (or changed) since: run again, their exit, financing and P&L become
    the broker's final figures rather than the open trade's unrealised P&L. A trade changes
    after its close rarely (a late financing correction), so each is rerun about once."""
    since = trading_day(now) - timedelta(days=PATH_DAYS)
    rows = (
        ParityExecution.objects.filter(
            report__day__gte=since,
            outcome__in=[ParityExecution.Outcome.FILLED, ParityExecution.Outcome.LIVE_ONLY],
            live_closed_at__isnull=True,
            signal__order__trade__state=Trade.State.CLOSED,
            signal__order__trade__updated_at__gt=F("report__computed_at"),
        )
        .values_list("report__day", "report__pair_id")
        .distinct()
    )
    due: dict[date, list[str]] = {}
    for day, symbol in rows:
        due.setdefault(day, []).append(str(symbol))
    return {day: sorted(symbols) for day, symbols in due.items()}


def parity_day_summary(day: date) -> dict[str, Any]:
    """The daily summary's parity figures for a finished day (``monitoring.hooks``), running
    the day's missing reports first."""
    done = _reported(day)
    missing = [symbol for symbol in pairs_of_day(day) if symbol not in done]
    if missing and trading_day_bounds(day)[1] <= broker_now():
        parity_run(day=day, pairs=missing)
    reports = list(ParityReport.objects.filter(day=day).order_by("pair"))
    return {
        "reports": len(reports),
        "mismatches": sum(report.mismatches for report in reports),
        "unexplained": sum(report.unexplained for report in reports),
        "pl_difference": str(sum((report.pl_difference for report in reports), Decimal(0))),
        "pairs": {
            report.pair_id: {
                "mismatches": report.mismatches,
                "unexplained": report.unexplained,
                "pl_difference": str(report.pl_difference),
            }
            for report in reports
        },
    }


@dataclass(frozen=True)
class _Reference:
    """A rule the replay runs: the model's (None: the default rule of a forced pair)."""

    rule: rules.Rule
    model: PairModel | None

    @property
    def label(self) -> str:
        return f"model #{self.model.pk}" if self.model is not None else "the default rule"

    @property
    def history(self) -> int:
        """Closed candles the live analysis reads for this rule (``qfh.services``)."""
        return history_needed(
            window=self.rule.params["window"],
            volatility_lookback=self.rule.params.get("volatility_lookback", 100),
            confirm=True,
        )


def _references(
    pair: Pair, minutes: Mapping[datetime, LiveAnalysis], signals: Mapping[datetime, TradingSignal]
) -> tuple[list[datetime], list[_Reference]]:
    """The rule in force from each moment on: the model the live analysis (or a signal) names
    at that minute, validated afresh from the model's own row. Without any, the pair's promoted
    model, else the default rule for a pair forced to trade, else nothing."""
    named: dict[datetime, int | None] = {}
    for time, minute in minutes.items():
        if minute.rule_version:
            named[time] = minute.pair_model_id
    for time, signal in signals.items():
        named[time] = signal.pair_model_id
    models = PairModel.objects.in_bulk({value for value in named.values() if value is not None})

    def reference(model_id: int | None) -> _Reference:
        model = models.get(model_id) if model_id is not None else None
        if model is None:
            return _Reference(DEFAULT_LIVE_RULE, None)
        return _Reference(rules.validate_rule(model.rule_type, model.params), model)

    if named:
        times = sorted(named)
        return times, [reference(named[time]) for time in times]
    promoted = PairModel.objects.filter(pair_id=pair.symbol, promoted=True).first()
    if promoted is not None:
        return [datetime.min.replace(tzinfo=UTC)], [reference(promoted.pk)]
    if pair.forced_without_model:
        return [datetime.min.replace(tzinfo=UTC)], [reference(None)]
    return [], []


def _in_force(times: list[datetime], references: list[_Reference], moment: datetime) -> _Reference:
    position = bisect.bisect_right(times, moment) - 1
    return references[max(position, 0)]


def _rule_difference(live: Mapping[str, Any], reference: _Reference) -> str:
    """How the parameters a live signal recorded differ from the reference rule's."""
    wanted = dict(reference.rule.params)
    changed = [
        f"{name}={live.get(name)!r} ({reference.label}: {wanted.get(name)!r})"
        for name in sorted(set(live) | set(wanted))
        if live.get(name) != wanted.get(name)
    ]
    return "the live rule had " + ", ".join(changed) if changed else ""


def _account_currency() -> str:
    currency = AccountSnapshot.objects.order_by("-time").values_list("currency", flat=True).first()
    return currency or "USD"


def _conversion(pair: Pair, currency: str, price: Decimal, at: datetime) -> Decimal | None:
    """The factor from the pair's quote currency to the account's at ``at`` (None: unknown)."""
    if pair.quote_currency == currency:
        return Decimal(1)
    if pair.base_currency == currency:
        return Decimal(1) / price
    for symbol, invert in (
        (f"{pair.quote_currency}_{currency}", False),
        (f"{currency}_{pair.quote_currency}", True),
    ):
        close = (
            Candle.objects.filter(pair_id=symbol, timeframe="M1", time__lte=at)
            .order_by("-time")
            .values_list("close", flat=True)
            .first()
        )
        if close:
            return Decimal(1) / close if invert else close
    return None


def _live_trade(trade: Trade) -> replay.LiveTrade:
    closed = trade.state == Trade.State.CLOSED
    return replay.LiveTrade(
        entry=trade.open_price,
        units=abs(trade.initial_units),
        exit=trade.close_price if closed else None,
        closed_at=trade.closed_at if closed else None,
        close_reason=trade.close_reason,
        realized=trade.realized_pl,
        unrealized=Decimal(0) if closed else trade.unrealized_pl,
        financing=trade.financing,
    )


def _live_signal(signal: TradingSignal, order: Order | None) -> replay.LiveSignal:
    trade = getattr(order, "trade", None) if order is not None else None
    refused = signal.status == TradingSignal.Status.REJECTED
    return replay.LiveSignal(
        direction=signal.direction,
        status=signal.status,
        reason=signal.status_reason,
        risk_rules=refusing_rules(signal.status_reason) if refused else (),
        trade=_live_trade(trade) if trade is not None else None,
    )


def _sized_units(signal: TradingSignal | None, order: Order | None) -> Decimal | None:
    """The units live gave (or would have given) the signal: its order's, else the size the
    risk rules computed before refusing it."""
    if order is not None and order.units:
        return abs(order.units)
    figures = (signal.result or {}).get("risk", {}) if signal is not None else {}
    try:
        units = abs(Decimal(str(figures.get("units", "0"))))
    except ArithmeticError:
        return None
    return units or None


@dataclass
class _Comparison:
    """Everything one pair's day produced, ready to be stored."""

    live_from: datetime | None = None
    live_to: datetime | None = None
    reference: _Reference | None = None
    rule_note: str = ""
    candles: int = 0
    replay_signals: int = 0
    live_signals: int = 0
    mismatches: tuple[replay.Mismatch, ...] = ()
    rows: tuple[replay.ExecutionRow, ...] = ()
    signal_ids: Mapping[datetime, Any] | None = None
    currency: str = "USD"
    note: str = ""


def _compare(day: date, pair: Pair) -> _Comparison:
    start, end = trading_day_bounds(day)
    symbol = pair.symbol
    signals = {
        signal.time: signal
        for signal in TradingSignal.objects.filter(
            pair_id=symbol, timeframe="M1", time__gte=start, time__lt=end
        ).select_related("pair_model")
    }
    minutes = {
        row.time: row
        for row in LiveAnalysis.objects.filter(pair_id=symbol, time__gte=start, time__lt=end)
    }
    moments = set(signals) | set(minutes)
    currency = _account_currency()
    if not moments:
        return _Comparison(currency=currency, note="no live analysis and no signal on this day")
    live_from, live_to = min(moments), max(moments)
    times, references = _references(pair, minutes, signals)
    if not references:
        return _Comparison(
            live_from=live_from,
            live_to=live_to,
            currency=currency,
            note="no rule to replay: the pair had no promoted model and was not forced to trade",
        )
    history = max(reference.history for reference in references)
    before = [
        bar
        for bar in candles_last(pair=symbol, timeframe="M1", count=history, until=live_from)
        if bar.complete
    ]
    after = [
        bar
        for bar in candles_between(
            pair=symbol, timeframe="M1", start=live_from, end=end + timedelta(days=PATH_DAYS)
        )
        if bar.complete
    ]
    compared = [bar for bar in after if bar.time <= live_to]
    series = before + compared
    index = {bar.time: position for position, bar in enumerate(series)}

    replayed, short_history = _replay_signals(pair, series, len(before), times, references)
    live = {
        time: replay.Signal(signal.direction, signal.confidence) for time, signal in signals.items()
    }
    revised = _revised(signals, series, index)
    notes, rule_note = _rule_notes(minutes, signals, times, references)
    mismatches = replay.match_signals(
        replay=replayed,
        live=live,
        minutes={
            time: replay.Minute(row.outcome, row.skip, row.reason) for time, row in minutes.items()
        },
        logged=bool(minutes),
        short_history=short_history,
        revised=revised,
        rule_notes=notes,
    )
    rows = _execution_rows(
        pair, signals, replayed, mismatches, after, times, references, currency, live_to
    )
    note = ""
    if _conversion(pair, currency, Decimal(1), live_to) is None:
        note = (
            f"no stored {pair.quote_currency}_{currency} or {currency}_{pair.quote_currency} "
            f"candles convert the replay's {pair.quote_currency} amounts into {currency}: they are "
            f"left in {pair.quote_currency}, and the difference mixes the two"
        )
    return _Comparison(
        live_from=live_from,
        live_to=live_to,
        reference=_in_force(times, references, live_to),
        rule_note=rule_note,
        candles=len(compared),
        replay_signals=len(replayed),
        live_signals=len(live),
        mismatches=tuple(mismatches),
        rows=tuple(rows),
        signal_ids={time: signal.pk for time, signal in signals.items()},
        currency=currency,
        note=note,
    )


def _replay_signals(
    pair: Pair,
    series: list[Bar],
    first: int,
    times: list[datetime],
    references: list[_Reference],
) -> tuple[dict[datetime, replay.Signal], set[datetime]]:
    """The replay's signal of every compared minute (from index ``first`` of ``series``), each by
    the rule in force then, through the evaluation code on NumPy; and the minutes it holds for
    want of history (fewer closed candles than the live analysis reads)."""
    replayed: dict[datetime, replay.Signal] = {}
    short: set[datetime] = set()
    if len(series) <= first:
        return replayed, short
    candles = Candles.from_bars(series, seconds=60, pip=float(pair.pip_size))
    by_version: dict[str, Any] = {}
    names = {rules.BUY: replay.BUY, rules.SELL: replay.SELL}
    for position in range(first, len(series)):
        time = series[position].time
        reference = _in_force(times, references, time)
        if position + 1 < reference.history:
            short.add(time)
            continue
        version = reference.rule.version()
        if version not in by_version:
            # The parity report runs on the droplet, which has no GPU: NumPy.
            by_version[version] = host_signals(candles, reference.rule, xp=np)
        signals = by_version[version]
        direction = int(signals.direction[position])
        if direction != rules.HOLD:
            replayed[time] = replay.Signal(names[direction], float(signals.confidence[position]))
    return replayed, short


def _revised(
    signals: Mapping[datetime, TradingSignal], series: list[Bar], index: Mapping[datetime, int]
) -> set[datetime]:
    """The live signals whose candles (their digest, recorded at signal time) are not those
    stored now."""
    found: set[datetime] = set()
    for time, signal in signals.items():
        metrics = signal.qfh_metrics or {}
        digest, count = metrics.get("candles_digest"), metrics.get("candles")
        if not digest or not count:
            continue
        position = index.get(time)
        if position is None:
            found.add(time)
            continue
        bars = series[max(0, position + 1 - int(count)) : position + 1]
        if candles_digest(bars) != digest:
            found.add(time)
    return found


def _rule_notes(
    minutes: Mapping[datetime, LiveAnalysis],
    signals: Mapping[datetime, TradingSignal],
    times: list[datetime],
    references: list[_Reference],
) -> tuple[dict[datetime, str], str]:
    """Per minute, how the rule that ran live differs from the one replayed; and the day's
    first such note with a count (the report's)."""
    notes: dict[datetime, str] = {}
    for time, minute in minutes.items():
        reference = _in_force(times, references, time)
        if minute.rule_version and minute.rule_version != reference.rule.version():
            notes[time] = (
                f"the live rule (version {minute.rule_version}) is not {reference.label}'s "
                f"(version {reference.rule.version()})"
            )
    for time, signal in signals.items():
        recorded = (signal.qfh_metrics or {}).get("rule_params")
        if isinstance(recorded, dict):
            difference = _rule_difference(recorded, _in_force(times, references, time))
            if difference:
                notes[time] = difference
    if not notes:
        return notes, ""
    first = notes[min(notes)]
    return notes, f"{first} (at {len(notes)} minute(s), the first {min(notes):%H:%M} UTC)"[:500]


def _execution_rows(
    pair: Pair,
    signals: Mapping[datetime, TradingSignal],
    replayed: Mapping[datetime, replay.Signal],
    mismatches: Sequence[replay.Mismatch],
    after: list[Bar],
    times: list[datetime],
    references: list[_Reference],
    currency: str,
    live_to: datetime,
) -> list[replay.ExecutionRow]:
    """Every replayed trade against what live did with its signal, and every live signal the
    replay has none for."""
    path = replay.Path(
        times=[bar.time for bar in after],
        open=[bar.open for bar in after],
        high=[bar.high for bar in after],
        low=[bar.low for bar in after],
        close=[bar.close for bar in after],
    )
    on_path = path.index()
    orders = {
        order.signal_id: order
        for order in Order.objects.filter(
            signal__in=list(signals.values()), kind=Order.Kind.ENTRY
        ).select_related("trade")
    }
    sized = [abs(order.units) for order in orders.values() if order.units]
    typical = Decimal(statistics.median(sized)) if sized else DEFAULT_UNITS
    costs = pair_costs(pair.symbol)
    pip = pair.pip_size
    half_spread = Decimal(str(costs.spread_pips)) / 2 * pip
    settings = config_values("execution.")
    causes = {mismatch.time: mismatch.cause for mismatch in mismatches}
    rows: list[replay.ExecutionRow] = []
    for time in sorted(set(replayed) | set(signals)):
        signal = signals.get(time)
        order = orders.get(signal.pk) if signal is not None else None
        ours = replayed.get(time)
        trade = None
        if ours is not None and time in on_path:
            reference = _in_force(times, references, time)
            stop_pips, take_pips = stop_distances(
                signal or TradingSignal(pair=pair, pair_model=reference.model), settings
            )
            units = _sized_units(signal, order) if signal is not None else None
            trade = _replay_trade(
                pair,
                path,
                on_path[time],
                ours.direction,
                units or typical,
                stop_pips,
                take_pips,
                half_spread,
                costs,
                currency,
            )
        live = _live_signal(signal, order) if signal is not None else None
        rows.extend(
            replay.execution_rows(
                time=time, replay=trade, live=live, cause=causes.get(time), pip=pip
            )
        )
    return rows


def _replay_trade(
    pair: Pair,
    path: replay.Path,
    bar: int,
    direction: str,
    units: Decimal,
    stop_pips: Decimal,
    take_pips: Decimal | None,
    half_spread: Decimal,
    costs: Costs,
    currency: str,
) -> replay.ReplayTrade:
    """The trade the replay makes on its signal at ``bar`` (see ``replay.ReplayTrade``)."""
    mid = path.close[bar]
    leave = replay.replay_exit(
        path,
        entry_bar=bar,
        direction=direction,
        entry=mid,
        stop_loss_pips=stop_pips,
        take_profit_pips=take_pips,
        pip=pair.pip_size,
    )
    sign = 1 if direction == replay.BUY else -1
    exit_time = path.times[leave.bar] if leave.bar is not None else None
    conversion = _conversion(pair, currency, leave.price, exit_time or path.times[-1])
    rates = costs.financing
    financing = replay.rollover_financing(
        units=units,
        price=mid,
        conversion=conversion or Decimal(1),
        rate=rates.rate(long=sign > 0),
        entered=path.times[bar] + MINUTE,
        left=(exit_time or path.times[-1]) + MINUTE,
        days_by_weekday=rates.days_by_weekday,
    )
    return replay.ReplayTrade(
        time=path.times[bar],
        direction=direction,
        units=units,
        entry=mid + sign * half_spread,
        exit=leave.price - sign * half_spread,
        exit_reason=leave.reason,
        exit_time=exit_time,
        financing=financing,
        conversion=conversion or Decimal(1),
    )


# ----- storing -----------------------------------------------------------------------------------


def _text(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {name: str(amount) for name, amount in amounts.items()}


def _pair_report(day: date, symbol: str) -> ParityReport:
    pair = Pair.objects.get(symbol=symbol)
    found = _compare(day, pair)
    rows = list(found.rows)
    totals = replay.attribution(rows)
    replay_pl = sum((row.replay_pl for row in rows), Decimal(0))
    live_pl = sum((row.live_pl for row in rows), Decimal(0))
    difference = live_pl - replay_pl
    # The parts are built to add up; a report that did not would be worse than none.
    assert sum(totals.values(), Decimal(0)) == difference, (totals, difference)
    mean, largest = replay.slippage_figures(rows)
    causes = dict.fromkeys(replay.CAUSES, 0)
    for mismatch in found.mismatches:
        causes[mismatch.cause] += 1
    reference = found.reference
    pips = Decimal("0.01")
    end = trading_day_bounds(day)[1]
    defaults: dict[str, Any] = {
        "live_from": found.live_from,
        "live_to": found.live_to,
        "pair_model": reference.model if reference else None,
        "rule_type": reference.rule.rule_type if reference else "",
        "rule_params": dict(reference.rule.params) if reference else {},
        "rule_version": reference.rule.version() if reference else "",
        "rule_note": found.rule_note,
        "candles": found.candles,
        "replay_signals": found.replay_signals,
        "live_signals": found.live_signals,
        "matched_signals": len(
            set(found.signal_ids or {}) - {mismatch.time for mismatch in found.mismatches}
        ),
        "mismatches": len(found.mismatches),
        "unexplained": causes[replay.UNEXPLAINED],
        "causes": causes,
        "replay_trades": sum(1 for row in rows if row.replay is not None),
        "live_trades": sum(1 for row in rows if row.live is not None),
        "currency": found.currency,
        "replay_pl": replay_pl,
        "live_pl": live_pl,
        "pl_difference": difference,
        "attribution": _text(totals),
        "slippage_mean_pips": mean.quantize(pips) if mean is not None else None,
        "slippage_max_pips": largest.quantize(pips) if largest is not None else None,
        "equity": [
            {
                "time": point["time"].isoformat(),
                "replay": str(point["replay"]),
                "live": str(point["live"]),
            }
            for point in replay.equity_curves(rows, end=end)
        ],
        "note": found.note,
        "computed_at": timezone.now(),
    }
    signal_ids = found.signal_ids or {}
    with transaction.atomic():
        report, _ = ParityReport.objects.update_or_create(pair=pair, day=day, defaults=defaults)
        report.mismatch_rows.all().delete()
        report.execution_rows.all().delete()
        ParityMismatch.objects.bulk_create(
            [_mismatch_row(report, mismatch, signal_ids) for mismatch in found.mismatches]
        )
        ParityExecution.objects.bulk_create(
            [_execution_row(report, row, signal_ids) for row in rows]
        )
    logger.info(
        "event=parity_report pair=%s day=%s replay_signals=%d live_signals=%d mismatches=%d "
        "unexplained=%d replay_pl=%s live_pl=%s difference=%s",
        symbol,
        day.isoformat(),
        report.replay_signals,
        report.live_signals,
        report.mismatches,
        report.unexplained,
        replay_pl,
        live_pl,
        difference,
    )
    return report


def _mismatch_row(
    report: ParityReport, mismatch: replay.Mismatch, signal_ids: Mapping[datetime, Any]
) -> ParityMismatch:
    return ParityMismatch(
        report=report,
        time=mismatch.time,
        kind=mismatch.kind,
        cause=mismatch.cause,
        detail=mismatch.detail[:500],
        live_direction=mismatch.live.direction if mismatch.live else "",
        live_confidence=mismatch.live.confidence if mismatch.live else None,
        replay_direction=mismatch.replay.direction if mismatch.replay else "",
        replay_confidence=mismatch.replay.confidence if mismatch.replay else None,
        signal_id=signal_ids.get(mismatch.time),
    )


def _execution_row(
    report: ParityReport, row: replay.ExecutionRow, signal_ids: Mapping[datetime, Any]
) -> ParityExecution:
    ours, theirs = row.replay, row.live
    return ParityExecution(
        report=report,
        time=row.time,
        direction=row.direction,
        outcome=row.outcome,
        reason=row.reason[:500],
        risk_rules=list(row.risk_rules),
        signal_id=signal_ids.get(row.time) if row.outcome != replay.MISSED else None,
        units=(ours.units if ours is not None else theirs.units if theirs is not None else 0),
        replay_entry=ours.entry if ours else None,
        replay_exit=ours.exit if ours else None,
        replay_exit_reason=ours.exit_reason if ours else "",
        replay_exit_time=ours.exit_time if ours else None,
        live_entry=theirs.entry if theirs else None,
        live_exit=theirs.exit if theirs else None,
        live_close_reason=theirs.close_reason if theirs else "",
        live_closed_at=theirs.closed_at if theirs else None,
        entry_slippage_pips=(
            row.entry_slippage_pips.quantize(Decimal("0.01"))
            if row.entry_slippage_pips is not None
            else None
        ),
        entry_slippage=row.parts.get(replay.ENTRY_SLIPPAGE, Decimal(0)),
        exit_difference=row.parts.get(replay.EXIT, Decimal(0)),
        financing=row.parts.get(replay.FINANCING, Decimal(0)),
        replay_pl=row.replay_pl,
        live_pl=row.live_pl,
        pl_difference=row.difference,
        parts=_text(row.parts),
    )


# ----- alerts ------------------------------------------------------------------------------------


def parity_alerts_update(*, pair: str, now: datetime | None = None) -> None:
    """Raise or resolve ``parity.unexplained:<pair>`` and ``parity.slippage:<pair>`` from the
    pair's newest report (a rerun of an older day leaves the newer verdict standing)."""
    report = ParityReport.objects.filter(pair_id=pair).order_by("-day").first()
    if report is None:
        return
    day = report.day.isoformat()
    unexplained = f"parity.unexplained:{pair}"
    if report.unexplained:
        first = report.mismatch_rows.filter(cause=replay.UNEXPLAINED).order_by("time").first()
        assert first is not None
        alert_raise(
            condition=unexplained,
            severity=Severity.CRITICAL,
            message=(
                f"Live differs from its replay: {pair} on {day} has {report.unexplained} "
                f"unexplained signal mismatch(es), the first at {first.time:%H:%M} UTC "
                f"({first.kind}): {first.detail}"
            ),
            details={
                "pair": pair,
                "day": day,
                "report": report.pk,
                "unexplained": report.unexplained,
                "rule_note": report.rule_note,
            },
            now=now,
        )
    else:
        alert_resolve(condition=unexplained, now=now)
    limits = config_values("parity.")
    mean_limit = Decimal(str(limits["parity.slippage_alert_pips"]))
    max_limit = Decimal(str(limits["parity.slippage_max_alert_pips"]))
    slippage = f"parity.slippage:{pair}"
    mean, largest = report.slippage_mean_pips, report.slippage_max_pips
    over = []
    if mean is not None and mean > mean_limit:
        over.append(f"mean {mean} pips above parity.slippage_alert_pips={mean_limit}")
    if largest is not None and largest > max_limit:
        over.append(f"largest {largest} pips above parity.slippage_max_alert_pips={max_limit}")
    if over:
        alert_raise(
            condition=slippage,
            severity=Severity.WARNING,
            message=f"Entry slippage against the replay: {pair} on {day}: " + "; ".join(over),
            details={
                "pair": pair,
                "day": day,
                "report": report.pk,
                "mean_pips": str(mean),
                "max_pips": str(largest),
            },
            now=now,
        )
    else:
        alert_resolve(condition=slippage, now=now)
