"""The daily shadow replay's reasoning (pure: no Django, no ORM; ``parity.services`` gathers the
inputs and stores the answer).

Three steps, each a function of plain values:

1. ``match_signals``: the replayed and the live signal of every minute side by side. A minute
   where only one side has a signal, or the directions differ, or the confidences differ by more
   than ``CONFIDENCE_TOLERANCE``, is a ``Mismatch``, with its cause: what the live analysis log
   (``qfh.LiveAnalysis``) says happened to that minute, else ``unexplained``.
2. ``replay_exit`` and ``execution_rows``: each replayed trade against what live did with the
   signal (refused by a risk rule, expired, not filled, or filled, and then how its entry, exit
   and financing differ), and each live trade the replay has no signal for.
3. ``attribution``: every row's P&L difference (live minus replay, account currency) split into
   named parts that add up exactly to it, so the parts of a day add up exactly to its whole
   difference: amounts are Decimal to 4 places (the broker's precision), and the part that
   cannot be named otherwise (rounding, currency conversion) is ``other``, the remainder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from qfh.evaluation.financing import MONEY, days_charged, financing_amount
from qfh.evaluation.outcomes import bar_exits, trading_day

BUY = "BUY"
SELL = "SELL"

# Kinds of signal mismatch.
LIVE_ONLY = "live_only"
REPLAY_ONLY = "replay_only"
DIRECTION = "direction"
CONFIDENCE = "confidence"
KINDS = (LIVE_ONLY, REPLAY_ONLY, DIRECTION, CONFIDENCE)

# Why a minute differs. Each is decided from the live analysis log or the candles (README,
# "Parity report"); ``unexplained`` is what is left, and it alerts.
WORKER_DOWN = "worker_down"
CANDLE_LATE = "candle_late"
HISTORY_SHORT = "history_short"
PAIR_NOT_TRADING = "pair_not_trading"
CANDLE_REVISED = "candle_revised"
UNEXPLAINED = "unexplained"
CAUSES = (WORKER_DOWN, CANDLE_LATE, HISTORY_SHORT, PAIR_NOT_TRADING, CANDLE_REVISED, UNEXPLAINED)

# What became of a replayed trade (or of a live one the replay has no signal for).
FILLED = "filled"
RISK_REFUSED = "risk_refused"
EXPIRED = "expired"
NOT_FILLED = "not_filled"
MISSED = "missed"
OUTCOMES = (FILLED, RISK_REFUSED, EXPIRED, NOT_FILLED, MISSED, LIVE_ONLY)

# The parts of the P&L difference, in the order the report lists them: the signal causes (the
# P&L of trades one side made and the other did not), then execution.
ENTRY_SLIPPAGE = "entry_slippage"
EXIT = "exit"
FINANCING = "financing"
OTHER = "other"
BUCKETS = (
    *CAUSES,
    RISK_REFUSED,
    EXPIRED,
    NOT_FILLED,
    ENTRY_SLIPPAGE,
    EXIT,
    FINANCING,
    OTHER,
)

# The live confidence is the same float64 the replay computes; anything beyond this is a
# difference (issue #20: "confidence beyond 1e-9").
CONFIDENCE_TOLERANCE = 1e-9

# Outcomes and skip codes of ``qfh.LiveAnalysis`` (kept as text here: this module imports no
# model).
REQUESTED = "requested"
SIGNAL = "signal"
HOLD = "hold"
SKIPPED = "skipped"
SKIP_CAUSES = {
    "history": HISTORY_SHORT,
    "not_closed": CANDLE_LATE,
    "not_trading": PAIR_NOT_TRADING,
    "no_model": PAIR_NOT_TRADING,
}
ZERO = Decimal(0)


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY)


# ----- signals -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signal:
    """One side's signal at a minute."""

    direction: str
    confidence: float


@dataclass(frozen=True)
class Minute:
    """What the live analysis log says became of a minute (``qfh.LiveAnalysis``)."""

    outcome: str
    skip: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Mismatch:
    time: datetime
    kind: str
    cause: str
    detail: str
    live: Signal | None = None
    replay: Signal | None = None


def _missing_live_cause(minute: Minute | None, *, logged: bool) -> tuple[str, str]:
    """Why the live side has no signal at a minute the replay signals on."""
    if not logged:
        return UNEXPLAINED, "no live analysis is logged for this pair and day"
    if minute is None:
        return (
            CANDLE_LATE,
            "the streamer never handed this minute to the analysis: its candle was stored "
            "together with a later one (a late candle or a catch-up)",
        )
    if minute.outcome == REQUESTED:
        return (
            WORKER_DOWN,
            "handed to the analysis but never analysed: no worker took the message before it "
            "expired",
        )
    if minute.outcome == SKIPPED:
        cause = SKIP_CAUSES.get(minute.skip, UNEXPLAINED)
        return cause, f"the live analysis skipped it: {minute.reason or minute.skip}"
    if minute.outcome == HOLD:
        return UNEXPLAINED, "the live analysis ran on this minute and held"
    return UNEXPLAINED, f"the live analysis logged {minute.outcome!r} but no signal is stored"


def _replay_side_cause(time: datetime, short_history: Set[datetime], revised: Set[datetime]) -> str:
    if time in short_history:
        return HISTORY_SHORT
    if time in revised:
        return CANDLE_REVISED
    return UNEXPLAINED


_REPLAY_SIDE_DETAIL = {
    HISTORY_SHORT: "the candles stored before this minute are fewer than the rule needs, so the "
    "replay holds where the live analysis had them",
    CANDLE_REVISED: "the candles the live analysis read differ from those stored now",
}


def match_signals(
    *,
    replay: Mapping[datetime, Signal],
    live: Mapping[datetime, Signal],
    minutes: Mapping[datetime, Minute],
    logged: bool,
    short_history: Set[datetime] = frozenset(),
    revised: Set[datetime] = frozenset(),
    rule_notes: Mapping[datetime, str] | None = None,
    tolerance: float = CONFIDENCE_TOLERANCE,
) -> list[Mismatch]:
    """Every minute where the replay and live disagree, oldest first, with its cause.

    ``minutes`` is the live analysis log of the compared minutes and ``logged`` whether the day
    has one at all; ``short_history`` the minutes the replay had too few candles for (it holds
    there); ``revised`` the minutes whose live signal read other candles than those stored now
    (digest); ``rule_notes`` says, per minute, how the rule that ran live differs from the model's
    (added to an unexplained mismatch: it is the likely reason, and never an excuse).
    """
    notes = rule_notes or {}
    found: list[Mismatch] = []
    for time in sorted(set(replay) | set(live)):
        ours, theirs = replay.get(time), live.get(time)
        if ours is not None and theirs is None:
            kind = REPLAY_ONLY
            cause, detail = _missing_live_cause(minutes.get(time), logged=logged)
        elif ours is None and theirs is not None:
            kind = LIVE_ONLY
            cause = _replay_side_cause(time, short_history, revised)
            detail = _REPLAY_SIDE_DETAIL.get(
                cause, "the live analysis signalled where the replay holds"
            )
        elif ours is not None and theirs is not None:
            if ours.direction != theirs.direction:
                kind = DIRECTION
            elif abs(ours.confidence - theirs.confidence) > tolerance:
                kind = CONFIDENCE
            else:
                continue
            cause = CANDLE_REVISED if time in revised else UNEXPLAINED
            detail = _REPLAY_SIDE_DETAIL.get(cause, "the same candles gave another answer live")
        else:  # pragma: no cover - the union holds only keys of one side or both
            continue
        if cause == UNEXPLAINED and time in notes:
            detail = f"{detail}; {notes[time]}"
        found.append(Mismatch(time, kind, cause, detail, theirs, ours))
    return found


# ----- the replayed trade ------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """The stored M1 candles a replayed trade lives on (oldest first): Decimal prices for the
    money, and the same prices as float64 arrays to find the exit bar at once."""

    times: Sequence[datetime]
    open: Sequence[Decimal]
    high: Sequence[Decimal]
    low: Sequence[Decimal]
    close: Sequence[Decimal]
    arrays: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        for name in ("open", "high", "low", "close"):
            self.arrays[name] = np.array([float(v) for v in getattr(self, name)], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.times)

    def index(self) -> dict[datetime, int]:
        return {time: position for position, time in enumerate(self.times)}


@dataclass(frozen=True)
class Exit:
    """Where a replayed position leaves the path: the bar, the (mid) price and why; ``bar`` is
    None while the path ends with the position still open (then the price is the last close)."""

    bar: int | None
    price: Decimal
    reason: str  # stop_loss, take_profit, open


def replay_exit(
    path: Path,
    *,
    entry_bar: int,
    direction: str,
    entry: Decimal,
    stop_loss_pips: Decimal,
    take_profit_pips: Decimal | None,
    pip: Decimal,
) -> Exit:
    """The exit of a position entered at the close of bar ``entry_bar`` at the mid ``entry``,
    with a stop-loss and (maybe) a take-profit that many pips away, on the bars after it: the
    evaluation's path rule (``qfh.evaluation.outcomes.bar_exits``), prices back in Decimal."""
    sign = 1 if direction == BUY else -1
    stop = entry - sign * stop_loss_pips * pip
    target = entry + sign * take_profit_pips * pip if take_profit_pips else None
    start = entry_bar + 1
    if start >= len(path):
        return Exit(None, path.close[-1], "open")
    arrays = path.arrays
    touched, _ = bar_exits(
        arrays["open"][start:],
        arrays["high"][start:],
        arrays["low"][start:],
        float(stop),
        float(target) if target is not None else (np.inf if sign > 0 else -np.inf),
        long=sign > 0,
    )
    hits = np.flatnonzero(touched)
    if not len(hits):
        return Exit(None, path.close[-1], "open")
    bar = start + int(hits[0])
    opening, high, low = path.open[bar], path.high[bar], path.low[bar]
    if sign * (opening - stop) <= 0:
        return Exit(bar, opening, "stop_loss")
    if target is not None and sign * (opening - target) >= 0:
        return Exit(bar, opening, "take_profit")
    adverse, favourable = (low, high) if sign > 0 else (high, low)
    hit_stop = sign * (adverse - stop) <= 0
    hit_target = target is not None and sign * (favourable - target) >= 0
    # The nearer extreme comes first on the path (the evaluation's rule).
    adverse_first = ((opening - low) <= (high - opening)) == (sign > 0)
    if hit_stop and (adverse_first or not hit_target):
        return Exit(bar, stop, "stop_loss")
    assert target is not None
    return Exit(bar, target, "take_profit")


def rollover_financing(
    *,
    units: Decimal,
    price: Decimal,
    conversion: Decimal,
    rate: float,
    entered: datetime,
    left: datetime,
    days_by_weekday: Sequence[int],
) -> Decimal:
    """What a replayed position held from ``entered`` to ``left`` pays (negative) or receives at
    the 17:00 New York rollovers it crosses, with the evaluation's formula and rates."""
    if not rate:
        return ZERO
    days = int(
        days_charged(
            trading_day(np.array([int(entered.timestamp())])),
            trading_day(np.array([int(left.timestamp())])),
            days_by_weekday,
        )[0]
    )
    if not days:
        return ZERO
    return financing_amount(
        units=units, price=price, conversion=conversion, rate=Decimal(str(rate)), days=days
    )


@dataclass(frozen=True)
class ReplayTrade:
    """A trade the replay makes on a signal: entered at the signal candle's close and left where
    the path meets its stop or target, each price moved half the evaluation's spread against
    the position (the evaluation charges the whole spread per round trip)."""

    time: datetime
    direction: str
    units: Decimal
    entry: Decimal
    exit: Decimal
    exit_reason: str
    exit_time: datetime | None
    financing: Decimal = ZERO
    # The quote currency in the account's (1 for EUR_USD in a USD account).
    conversion: Decimal = Decimal(1)

    @property
    def sign(self) -> int:
        return 1 if self.direction == BUY else -1

    @property
    def gross(self) -> Decimal:
        return money(self.sign * (self.exit - self.entry) * self.units * self.conversion)

    @property
    def pl(self) -> Decimal:
        return self.gross + self.financing


@dataclass(frozen=True)
class LiveTrade:
    """The broker's trade a live signal opened, in our records (account currency)."""

    entry: Decimal
    units: Decimal
    exit: Decimal | None
    closed_at: datetime | None
    close_reason: str
    realized: Decimal
    unrealized: Decimal
    financing: Decimal

    @property
    def gross(self) -> Decimal:
        return self.realized + self.unrealized

    @property
    def pl(self) -> Decimal:
        return self.gross + self.financing


@dataclass(frozen=True)
class LiveSignal:
    """What live did with its signal of a minute: the signal's status, its reason, the risk
    rules that refused it (if any) and the trade it opened (if any)."""

    direction: str
    status: str
    reason: str = ""
    risk_rules: tuple[str, ...] = ()
    trade: LiveTrade | None = None


@dataclass(frozen=True)
class ExecutionRow:
    time: datetime
    direction: str
    outcome: str
    reason: str
    risk_rules: tuple[str, ...]
    replay: ReplayTrade | None
    live: LiveTrade | None
    parts: dict[str, Decimal]
    entry_slippage_pips: Decimal | None = None

    @property
    def replay_pl(self) -> Decimal:
        return self.replay.pl if self.replay is not None else ZERO

    @property
    def live_pl(self) -> Decimal:
        return self.live.pl if self.live is not None else ZERO

    @property
    def difference(self) -> Decimal:
        """Live minus replay: what live earned more (negative: less) than the replay."""
        return self.live_pl - self.replay_pl


def filled_parts(
    replay: ReplayTrade, live: LiveTrade, pip: Decimal
) -> tuple[dict[str, Decimal], Decimal]:
    """A filled trade's difference split into entry, exit, financing and the remainder, and its
    entry slippage in pips (positive: live paid more than the replay assumed)."""
    sign, units, conversion = replay.sign, replay.units, replay.conversion
    entry = money(sign * (replay.entry - live.entry) * units * conversion)
    if live.exit is not None:
        exit_part = money(sign * (live.exit - replay.exit) * units * conversion)
    else:
        # Still open at the broker: its unrealised P&L is the only exit there is.
        exit_part = live.gross - replay.gross - entry
    financing = live.financing - replay.financing
    other = (live.pl - replay.pl) - entry - exit_part - financing
    parts = {ENTRY_SLIPPAGE: entry, EXIT: exit_part, FINANCING: financing, OTHER: other}
    return parts, sign * (live.entry - replay.entry) / pip


def execution_rows(
    *,
    time: datetime,
    replay: ReplayTrade | None,
    live: LiveSignal | None,
    cause: str | None,
    pip: Decimal,
) -> list[ExecutionRow]:
    """The rows of one minute: the replayed trade against what live did with its signal, and a
    live trade the replay has no trade for. ``cause`` is the minute's mismatch cause (None when
    both sides agree); trades one side made and the other did not fall in its part."""
    rows: list[ExecutionRow] = []
    same = replay is not None and live is not None and replay.direction == live.direction
    if replay is not None and not same:
        part = cause or UNEXPLAINED
        rows.append(
            ExecutionRow(
                time,
                replay.direction,
                MISSED,
                f"no live signal in this direction ({part})",
                (),
                replay,
                None,
                {part: -replay.pl},
            )
        )
    if live is not None and not same:
        part = cause or UNEXPLAINED
        trade = live.trade
        rows.append(
            ExecutionRow(
                time,
                live.direction,
                LIVE_ONLY,
                f"live {live.status}{': ' + live.reason if live.reason else ''} ({part})",
                live.risk_rules,
                None,
                trade,
                {part: trade.pl} if trade is not None else {},
            )
        )
    if not same:
        return rows
    assert replay is not None and live is not None
    trade = live.trade
    if trade is not None:
        parts, slippage = filled_parts(replay, trade, pip)
        return [
            ExecutionRow(
                time, replay.direction, FILLED, live.reason, (), replay, trade, parts, slippage
            )
        ]
    if live.status == "expired":
        outcome = EXPIRED
    elif live.status == "rejected" and live.risk_rules:
        outcome = RISK_REFUSED
    else:
        outcome = NOT_FILLED
    reason = live.reason or f"the signal is {live.status}"
    return [
        ExecutionRow(
            time,
            replay.direction,
            outcome,
            reason,
            live.risk_rules,
            replay,
            None,
            {outcome: -replay.pl},
        )
    ]


def attribution(rows: Iterable[ExecutionRow]) -> dict[str, Decimal]:
    """The day's difference (live minus replay) by part, every part listed; the parts add up
    exactly to the sum of the rows' differences."""
    totals = dict.fromkeys(BUCKETS, ZERO)
    for row in rows:
        for name, amount in row.parts.items():
            totals[name] += amount
    return totals


def slippage_figures(rows: Iterable[ExecutionRow]) -> tuple[Decimal | None, Decimal | None]:
    """Mean and largest entry slippage in pips of the filled trades (None without any)."""
    pips = [row.entry_slippage_pips for row in rows if row.entry_slippage_pips is not None]
    if not pips:
        return None, None
    return sum(pips, ZERO) / len(pips), max(pips)


def equity_curves(rows: Iterable[ExecutionRow], *, end: datetime) -> list[dict[str, Any]]:
    """Replayed and live P&L, cumulative, at each moment a trade of either side closed (an open
    trade counts at ``end``, marked to market)."""
    events: list[tuple[datetime, Decimal, Decimal]] = []
    for row in rows:
        if row.replay is not None:
            events.append((row.replay.exit_time or end, row.replay.pl, ZERO))
        if row.live is not None:
            events.append((row.live.closed_at or end, ZERO, row.live.pl))
    points: list[dict[str, Any]] = []
    replay_total = live_total = ZERO
    for moment, replayed, lived in sorted(events, key=lambda event: event[0]):
        replay_total += replayed
        live_total += lived
        if points and points[-1]["time"] == moment:
            points[-1].update(replay=replay_total, live=live_total)
        else:
            points.append({"time": moment, "replay": replay_total, "live": live_total})
    return points
