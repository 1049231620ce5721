"""Writes of the trading app: pair lifecycle, trading mode and kill switch, manual broker actions.

Every operator action takes ``actor`` (a username or ``system:<component>``) and ``address`` and
is written to the AuditLog. Broker actions go through ``marketdata.oanda`` and their answers
through ``trading.ledger``, like every other transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from marketdata import oanda
from marketdata.models import Pair
from marketdata.selectors import broker_now
from qfh.models import PairModel
from septrader.config import CONFIG_KEYS, ConfigValueError, validate_config_value
from septrader.decimals import parse_decimal
from septrader.models import AuditLog, Node
from septrader.selectors import config_get, config_values
from septrader.services import audit_record
from trading import risk
from trading.demotion import DemotionSettings, DemotionVerdict, ModelFigures, should_demote
from trading.execution import (
    ENTRY_DRAIN_SECONDS,
    broker_client,
    entry_lock,
    fetch_quote,
    late_fills_close,
)
from trading.ledger import response_transactions_apply
from trading.market import market_holidays, market_status_at, pair_schedule
from trading.models import (
    MaintenanceWindow,
    MarketSchedule,
    Order,
    PairSchedule,
    Trade,
    TradingState,
)
from trading.schedule import MarketStatus, should_flatten
from trading.selectors import demotion_trades

logger = logging.getLogger(__name__)


class TradingError(Exception):
    """An operator action that cannot be done as asked; the message says why."""

    code = "invalid"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(TradingError):
    code = "not_found"


class Conflict(TradingError):
    code = "conflict"


# ----- stops win their race with entries ------------------------------------------------------


# What a stop reports when an entry held the entry lock longer than it waits.
DRAIN_TIMEOUT = (
    f"an entry was still in flight after {ENTRY_DRAIN_SECONDS:.0f} s; it closes its own fill "
    "when the order's answer comes"
)


@contextmanager
def entries_quiet(failures: list[str]) -> Iterator[bool]:
    """Hold the entry lock once the entry in flight, if any, is done (yields False, with
    ``DRAIN_TIMEOUT`` added to ``failures``, when it was still running after the wait).

    Every stop (kill switch, disable, reducing or halted mode) enters this once its change is
    committed: an entry checks the world again under the entry lock immediately before its order
    leaves, so once this holds the lock no entry that saw the world before the stop is still in
    flight, and one whose fill landed after it was marked by the ledger.
    """
    with entry_lock(timeout=ENTRY_DRAIN_SECONDS) as drained:
        if not drained:
            failures.append(DRAIN_TIMEOUT)
            logger.warning("event=entries_drain_timeout seconds=%s", ENTRY_DRAIN_SECONDS)
        yield drained


def entries_drain() -> None:
    """Wait for the entry in flight, if any, then close what it opened after the stop."""
    with entries_quiet([]) as drained:
        if not drained:
            return
        try:
            late_fills_close()
        except oanda.OandaError as error:
            # Reconciliation closes it on its next pass (late fills stay marked).
            logger.error("event=late_fills_close_failed error=%r", str(error))


# ----- pairs -------------------------------------------------------------------------------------

# The original's PairManager lifecycle: untrained → training → ready ⇄ trading, plus disabled and
# error reachable from anywhere and left only towards untrained or ready.
PAIR_TRANSITIONS: dict[str, set[str]] = {
    Pair.State.UNTRAINED: {Pair.State.TRAINING, Pair.State.DISABLED, Pair.State.ERROR},
    Pair.State.TRAINING: {
        Pair.State.READY,
        Pair.State.UNTRAINED,
        Pair.State.ERROR,
        Pair.State.DISABLED,
    },
    Pair.State.READY: {
        Pair.State.TRADING,
        Pair.State.TRAINING,
        Pair.State.DISABLED,
        Pair.State.ERROR,
    },
    Pair.State.TRADING: {
        Pair.State.READY,
        Pair.State.REDUCING,
        Pair.State.DISABLED,
        Pair.State.ERROR,
    },
    # Demoted automatically (``pair_demotion_check``); ``pair_enable`` puts it back to trading.
    Pair.State.REDUCING: {
        Pair.State.READY,
        Pair.State.TRAINING,
        Pair.State.DISABLED,
        Pair.State.ERROR,
    },
    Pair.State.DISABLED: {Pair.State.UNTRAINED, Pair.State.READY},
    Pair.State.ERROR: {Pair.State.UNTRAINED, Pair.State.READY, Pair.State.DISABLED},
}


def _pair(symbol: str, *, lock: bool = True) -> Pair:
    query = Pair.objects.select_for_update() if lock else Pair.objects
    try:
        return query.get(symbol=symbol)
    except Pair.DoesNotExist:
        raise NotFound(f"pair={symbol!r} is not a known pair.", field="pair") from None


def _has_promoted_model(symbol: str) -> bool:
    return PairModel.objects.filter(pair_id=symbol, promoted=True).exists()


def pair_transition(
    *, symbol: str, to_state: str, actor: str, reason: str = "", address: str | None = None
) -> Pair:
    """Move a pair to another lifecycle state; only the legal transitions are allowed.

    Leaving ``trading`` waits for an entry in flight on it (``entries_drain``)."""
    pair = _pair_transition_write(
        symbol=symbol, to_state=to_state, actor=actor, reason=reason, address=address
    )
    if pair.state != Pair.State.TRADING:
        entries_drain()
    return pair


@transaction.atomic
def _pair_transition_write(
    *, symbol: str, to_state: str, actor: str, reason: str, address: str | None
) -> Pair:
    pair = _pair(symbol)
    if to_state not in Pair.State.values:
        raise TradingError(
            f"state={to_state!r} is not valid; expected one of {', '.join(Pair.State.values)}.",
            field="state",
        )
    if to_state == pair.state:
        return pair
    if to_state not in PAIR_TRANSITIONS[pair.state]:
        raise Conflict(
            f"{symbol} cannot go from {pair.state} to {to_state}; allowed: "
            f"{', '.join(sorted(PAIR_TRANSITIONS[pair.state]))}.",
            field="state",
        )
    previous = pair.state
    pair.state = to_state
    pair.state_reason = reason[:500]
    pair.enabled = to_state == Pair.State.TRADING
    pair.save(update_fields=["state", "state_reason", "enabled", "updated_at"])
    audit_record(
        actor=actor,
        action="pair.state",
        target=symbol,
        details={"from": previous, "to": to_state, "reason": reason},
        address=address,
    )
    return pair


@transaction.atomic
def pair_enable(
    *, symbol: str, actor: str, address: str | None = None, force: bool = False
) -> Pair:
    """Start trading a pair. Without a promoted pair model only ``force`` allows it (audited)."""
    pair = _pair(symbol)
    if pair.state == Pair.State.TRADING and pair.enabled:
        return pair
    has_model = _has_promoted_model(symbol)
    if not has_model and not force:
        raise Conflict(
            f"{symbol} has no promoted pair model; promote one first, or enable with force=true "
            "to trade it on the default rule.",
            field="force",
        )
    if pair.state == Pair.State.TRAINING:
        raise Conflict(f"{symbol} is training; enable it when training ends.", field="pair")
    model = PairModel.objects.filter(pair_id=symbol, promoted=True).first()
    problem = risk.instrument_settings_problem(
        symbol=symbol,
        instrument_type=pair.instrument_type,
        pip_location=pair.pip_location,
        overrides=pair.risk_overrides or {},
        model_params=dict(model.params or {}) if model else {},
    )
    if problem:
        raise Conflict(problem + ".", field="risk_overrides")
    previous = pair.state
    pair.state = Pair.State.TRADING
    pair.enabled = True
    pair.forced_without_model = not has_model
    pair.state_reason = "enabled by the operator" + (
        " without a pair model" if not has_model else ""
    )
    pair.save()
    audit_record(
        actor=actor,
        action="pair.enable",
        target=symbol,
        details={"from": previous, "forced": not has_model},
        address=address,
    )
    return pair


def pair_disable(*, symbol: str, actor: str, address: str | None = None, reason: str = "") -> Pair:
    """Stop entries on a pair (its open trades keep their broker-side stops).

    Answers once no entry on it can still be in flight; a trade that an entry in flight opened
    after the disable is closed at once (``entries_drain``)."""
    pair = _pair_disable_write(symbol=symbol, actor=actor, address=address, reason=reason)
    entries_drain()
    return pair


@transaction.atomic
def _pair_disable_write(*, symbol: str, actor: str, address: str | None, reason: str) -> Pair:
    pair = _pair(symbol)
    previous = pair.state
    pair.enabled = False
    pair.forced_without_model = False
    pair.state = Pair.State.DISABLED
    pair.state_reason = reason or "disabled by the operator"
    pair.save()
    audit_record(
        actor=actor,
        action="pair.disable",
        target=symbol,
        details={"from": previous, "reason": reason},
        address=address,
    )
    return pair


DEMOTION_ACTOR = "system:demotion"


@dataclass(frozen=True)
class DemotionCheck:
    pair: str
    demoted: bool
    # The figures compared; None when the check did not get that far (see ``skipped``).
    verdict: DemotionVerdict | None = None
    # Why the pair was not judged: not trading, no promoted model, demotion switched off.
    skipped: str = ""


def pair_demotion_check(*, symbol: str) -> DemotionCheck:
    """Demote a live pair to reducing-only when its results since its model was promoted have
    fallen far below the model's out-of-sample results (method: trading/demotion.py).

    Run after every trade close and by beat; safe to run any number of times, from several
    processes: the pair row is locked and only a pair still trading is demoted, so a demotion
    is written and audited once. Like a disable, it answers once no entry on the pair can still
    be in flight.
    """
    check = _pair_demotion_write(symbol=symbol)
    if check.demoted:
        entries_drain()
    return check


@transaction.atomic
def _pair_demotion_write(*, symbol: str) -> DemotionCheck:
    pair = _pair(symbol)
    if not pair.enabled or pair.state != Pair.State.TRADING:
        return DemotionCheck(symbol, False, skipped=f"{symbol} is not trading ({pair.state})")
    values = config_values("demotion.")
    if not values["demotion.enabled"]:
        return DemotionCheck(symbol, False, skipped="demotion.enabled is off")
    model = PairModel.objects.filter(pair_id=symbol, promoted=True).first()
    if model is None or model.promoted_at is None:
        return DemotionCheck(symbol, False, skipped=f"{symbol} has no promoted pair model")
    # An operator who enables a demoted pair again gives it a fresh record: the count starts at
    # the later of the promotion and the last demotion.
    since = model.promoted_at
    last_demotion = (
        AuditLog.objects.filter(action="pair.demote", target=symbol)
        .values_list("time", flat=True)
        .first()
    )
    if last_demotion is not None and last_demotion > since:
        since = last_demotion
    settings = DemotionSettings(
        min_trades=int(values["demotion.min_trades"]),
        confidence_percent=Decimal(str(values["demotion.confidence_percent"])),
        drawdown_multiple=Decimal(str(values["demotion.drawdown_multiple"])),
    )
    verdict = should_demote(
        demotion_trades(pair=symbol, pair_model_id=model.pk, since=since),
        ModelFigures(
            trades=model.oos_trades,
            hit_rate=model.oos_hit_rate,
            max_drawdown_pips=model.oos_max_drawdown_pips,
        ),
        settings,
    )
    if not verdict.demote:
        return DemotionCheck(symbol, False, verdict)
    pair.state = Pair.State.REDUCING
    pair.enabled = False
    pair.state_reason = f"demoted: {verdict.reason}"[:500]
    pair.save(update_fields=["state", "enabled", "state_reason", "updated_at"])
    audit_record(
        actor=DEMOTION_ACTOR,
        action="pair.demote",
        target=symbol,
        details={
            "from": Pair.State.TRADING,
            "to": Pair.State.REDUCING,
            "pair_model": model.pk,
            "since": since.isoformat(),
            "reason": verdict.reason,
            "figures": verdict.figures(),
            "settings": {
                "min_trades": settings.min_trades,
                "confidence_percent": str(settings.confidence_percent),
                "drawdown_multiple": str(settings.drawdown_multiple),
            },
        },
    )
    logger.warning(
        "event=pair_demoted pair=%s pair_model=%s failed=%s reason=%r",
        symbol,
        model.pk,
        ",".join(verdict.failed),
        verdict.reason,
    )
    return DemotionCheck(symbol, True, verdict)


def pairs_demotion_check() -> list[DemotionCheck]:
    """Check every live pair (beat: a safety net for closes the ledger hook did not see)."""
    symbols = Pair.objects.filter(enabled=True, state=Pair.State.TRADING).values_list(
        "symbol", flat=True
    )
    return [pair_demotion_check(symbol=symbol) for symbol in symbols]


@transaction.atomic
def pair_assign_node(
    *, symbol: str, node_name: str | None, actor: str, address: str | None = None
) -> Pair:
    pair = _pair(symbol)
    node = None
    if node_name:
        node = Node.objects.filter(name=node_name).first()
        if node is None:
            raise NotFound(f"node={node_name!r} is not a known node.", field="node")
        if not node.serves(pair.instrument_type):
            raise Conflict(
                f"node={node_name!r} trades {', '.join(node.markets)} only; {symbol} is a "
                f"{pair.instrument_type} instrument.",
                field="node",
            )
    previous = pair.node.name if pair.node else None
    pair.node = node
    pair.save(update_fields=["node", "updated_at"])
    audit_record(
        actor=actor,
        action="pair.assign_node",
        target=symbol,
        details={"from": previous, "to": node_name},
        address=address,
    )
    return pair


@transaction.atomic
def pair_set_risk_overrides(
    *, symbol: str, overrides: dict[str, Any], actor: str, address: str | None = None
) -> Pair:
    """Per-pair risk limits: names of ``risk.*`` settings without the prefix, validated alike,
    and the pair's own stop distances (``stop_loss_pips``, ``take_profit_pips``) in its pips."""
    pair = _pair(symbol)
    if not isinstance(overrides, dict):
        raise TradingError(
            "risk_overrides must be an object of risk settings.", field="risk_overrides"
        )
    clean: dict[str, Any] = {}
    for name, value in overrides.items():
        if name in risk.STOP_OVERRIDES:
            clean[name] = _stop_override(name, value)
            continue
        key = f"risk.{name}"
        if key not in CONFIG_KEYS:
            known = sorted(
                [k.removeprefix("risk.") for k in CONFIG_KEYS if k.startswith("risk.")]
                + list(risk.STOP_OVERRIDES)
            )
            raise TradingError(
                f"risk_overrides.{name} is not a risk setting; expected one of {', '.join(known)}.",
                field=f"risk_overrides.{name}",
            )
        try:
            clean[name] = validate_config_value(key, value)
        except ConfigValueError as error:
            raise TradingError(str(error), field=f"risk_overrides.{name}") from None
    previous = pair.risk_overrides
    pair.risk_overrides = clean
    pair.save(update_fields=["risk_overrides", "updated_at"])
    audit_record(
        actor=actor,
        action="pair.risk_overrides",
        target=symbol,
        details={"from": previous, "to": clean},
        address=address,
    )
    return pair


# A stop in the pair's own pips: up to 100,000 (XAG_USD's pip is 0.0001 dollars on a 30-dollar
# price, so a one-dollar stop is already 10,000 of them).
STOP_OVERRIDE_MAXIMUM = Decimal(100_000)


def _stop_override(name: str, value: Any) -> str:
    field = f"risk_overrides.{name}"
    least = Decimal(0) if name == "take_profit_pips" else Decimal("0.1")
    expected = f"a number of the pair's own pips from {least} to {STOP_OVERRIDE_MAXIMUM}"
    if isinstance(value, bool):
        raise TradingError(f"{field}={value!r} is not valid; expected {expected}.", field=field)
    try:
        number = parse_decimal(value)
    except (InvalidOperation, ValueError):
        raise TradingError(
            f"{field}={value!r} is not valid; expected {expected}.", field=field
        ) from None
    if not number.is_finite() or not least <= number <= STOP_OVERRIDE_MAXIMUM:
        raise TradingError(f"{field}={value!r} is not valid; expected {expected}.", field=field)
    return str(number)


def pair_settings_set(
    *, symbol: str, changes: dict[str, Any], actor: str, address: str | None = None
) -> None:
    """An operator's change of a pair's settings, by the API or the console: ``node`` (a node
    name, or None for none) then ``risk_overrides``, each set and audited by its own service
    above; a setting absent from ``changes`` is left as it is."""
    if "node" in changes:
        pair_assign_node(symbol=symbol, node_name=changes["node"], actor=actor, address=address)
    if "risk_overrides" in changes:
        pair_set_risk_overrides(
            symbol=symbol, overrides=changes["risk_overrides"], actor=actor, address=address
        )


# ----- maintenance windows ------------------------------------------------------------------------


@transaction.atomic
def maintenance_window_save(
    *,
    window: MaintenanceWindow,
    changed: list[str],
    created: bool,
    actor: str,
    address: str | None = None,
) -> MaintenanceWindow:
    """Store a maintenance window as the console's form edited it (``changed``: the names of the
    fields it changed), audited as ``maintenance.add`` (its creator is ``actor``) or
    ``maintenance.change``."""
    if created:
        window.created_by = actor
    window.save()
    audit_record(
        actor=actor,
        action="maintenance.add" if created else "maintenance.change",
        target=str(window),
        details={"changed": changed, "pairs": window.pairs},
        address=address,
    )
    return window


def market_schedule_saved(
    *, schedule: MarketSchedule, created: bool, actor: str, address: str | None = None
) -> None:
    """Audit a schedule as the console saved it with its sessions and breaks, as
    ``schedule.add`` or ``schedule.change`` (the rows' ``clean`` validated them)."""
    audit_record(
        actor=actor,
        action="schedule.add" if created else "schedule.change",
        target=schedule.name,
        details={
            "instrument_type": schedule.instrument_type,
            "time_zone": schedule.time_zone,
            "holidays": schedule.holidays,
            "sessions": [str(session) for session in schedule.sessions.all()],
            "breaks": [str(item) for item in schedule.breaks.all()],
        },
        address=address,
    )


def pair_schedule_save(
    *, override: PairSchedule, created: bool, actor: str, address: str | None = None
) -> PairSchedule:
    """Put a pair on another schedule than its class's, audited as ``schedule.pair``."""
    override.save()
    audit_record(
        actor=actor,
        action="schedule.pair",
        target=str(override.pair_id),
        details={"schedule": override.schedule.name, "created": created},
        address=address,
    )
    return override


@transaction.atomic
def maintenance_window_delete(
    *, window: MaintenanceWindow, actor: str, address: str | None = None
) -> None:
    """Delete a maintenance window, audited as ``maintenance.delete``."""
    audit_record(actor=actor, action="maintenance.delete", target=str(window), address=address)
    window.delete()


# ----- trading mode and kill switch ---------------------------------------------------------------


def trading_mode_set(
    *, mode: str, actor: str, reason: str = "", address: str | None = None
) -> TradingState:
    """The operator's switch between trading, reducing-only and halted.

    Stopping entries (reducing or halted) answers once no entry can still be in flight."""
    state = _trading_mode_write(mode=mode, actor=actor, reason=reason, address=address)
    if mode != TradingState.Mode.TRADING:
        entries_drain()
    return state


@transaction.atomic
def _trading_mode_write(*, mode: str, actor: str, reason: str, address: str | None) -> TradingState:
    if mode not in TradingState.Mode.values:
        raise TradingError(
            f"mode={mode!r} is not valid; expected one of {', '.join(TradingState.Mode.values)}.",
            field="mode",
        )
    state, _ = TradingState.objects.select_for_update().get_or_create(pk=1)
    previous = state.mode
    state.mode = mode
    state.reason = reason or f"set to {mode} by {actor}"
    state.changed_by = actor
    if mode == TradingState.Mode.TRADING:
        state.tripped_day = None
    state.save()
    audit_record(
        actor=actor,
        action="trading.mode",
        target=mode,
        details={"from": previous, "reason": reason},
        address=address,
    )
    return state


@dataclass
class KillSwitchResult:
    orders_cancelled: int
    trades_closed: int
    failures: list[str]
    # Entry orders whose outcome the broker has not told us yet (an answer lost to a timeout):
    # if one fills, its trade is closed at once (``execution.late_fills_close``).
    entries_unsettled: list[str] = field(default_factory=list)


def kill_switch_engage(
    *,
    actor: str,
    address: str | None = None,
    close_trades: bool | None = None,
    client: oanda.OandaClient | None = None,
) -> KillSwitchResult:
    """Halt entries, cancel every pending order and (by default) close every trade.

    The halt is committed first, so every entry's last check refuses from then on; then the
    entry lock is taken, so an entry already past its last check finishes (and is closed
    like every other trade, or at once as a late fill) before this answers.
    """
    _trading_mode_write(
        mode=TradingState.Mode.HALTED, actor=actor, reason="kill switch", address=address
    )
    if close_trades is None:
        close_trades = bool(config_values("execution.")["execution.kill_switch_closes_trades"])
    client = client or broker_client()
    failures: list[str] = []
    cancelled = 0
    closed = 0
    with entries_quiet(failures):
        unsettled = list(
            Order.objects.filter(
                account_id=client.account_id, kind=Order.Kind.ENTRY, status=Order.Status.PENDING
            ).values_list("client_id", flat=True)
        )
        pending = client.request(oanda.OrdersPending(client.account_id)).get("orders", [])
        for order in pending:
            if order.get("type") in ("STOP_LOSS", "TAKE_PROFIT", "TRAILING_STOP_LOSS"):
                # Dependent orders go with their trades; trades left open keep their stops.
                continue
            try:
                response_transactions_apply(
                    client.account_id,
                    client.request(oanda.OrderCancel(client.account_id, str(order["id"]))),
                )
                cancelled += 1
            except oanda.OandaError as error:
                failures.append(f"order {order['id']}: {error}")
        if close_trades:
            result = trades_close_all(actor=actor, address=address, client=client, audit=False)
            closed = result.trades_closed
            failures.extend(result.failures)
        closed += len(late_fills_close(client=client))
    audit_record(
        actor=actor,
        action="trading.kill_switch",
        target="all",
        details={
            "orders_cancelled": cancelled,
            "trades_closed": closed,
            "close_trades": close_trades,
            "entries_unsettled": unsettled,
            "failures": failures,
        },
        address=address,
    )
    return KillSwitchResult(cancelled, closed, failures, unsettled)


# ----- manual broker actions ---------------------------------------------------------------------


def _trade(trade_id: int | str) -> Trade:
    trade = Trade.objects.filter(pk=trade_id).first() if str(trade_id).isdigit() else None
    if trade is None:
        raise NotFound(f"trade={trade_id!r} is not a known trade.", field="trade")
    return trade


def _units(value: str | Decimal | None, trade: Trade) -> str:
    if value in (None, "", "ALL"):
        return "ALL"
    try:
        units = parse_decimal(value)
    except InvalidOperation:
        units = Decimal(-1)
    if not units.is_finite() or units <= 0 or units > abs(trade.current_units):
        raise TradingError(
            f"units={value!r} is not valid; expected a positive number up to "
            f"{abs(trade.current_units)} (the trade's open units), or ALL.",
            field="units",
        )
    return format(units.normalize(), "f")


def trade_close(
    *,
    trade_id: int | str,
    actor: str,
    units: str | Decimal | None = None,
    address: str | None = None,
    client: oanda.OandaClient | None = None,
    audit: bool = True,
) -> Trade:
    """Close a trade at the broker, fully or by ``units``; our row follows the fill."""
    trade = _trade(trade_id)
    if trade.state != Trade.State.OPEN:
        raise Conflict(f"trade {trade.pk} is already closed.", field="trade")
    amount = _units(units, trade)
    client = client or broker_client()
    try:
        response = client.request(
            oanda.TradeClose(client.account_id, trade.broker_trade_id, data={"units": amount})
        )
    except oanda.OandaError as error:
        raise TradingError(f"the broker refused to close trade {trade.pk}: {error}") from error
    response_transactions_apply(client.account_id, response)
    if audit:
        audit_record(
            actor=actor,
            action="trade.close",
            target=f"{trade.pair_id} trade {trade.broker_trade_id}",
            details={"units": amount},
            address=address,
        )
    trade.refresh_from_db()
    return trade


def _stops_side_check(
    trade: Trade, data: dict[str, dict[str, str]], client: oanda.OandaClient
) -> None:
    """Refuse a stop-loss or take-profit on the wrong side of the market, which the broker would
    trigger at once (a long's stop-loss at 5.0 with the market at 1.177 closes it now).

    A long closes at the bid, a short at the ask: the stop-loss must be beyond that price on the
    losing side and the take-profit on the winning side.
    """
    try:
        quote, _ = fetch_quote(client, trade.pair_id)
    except oanda.OandaError as error:
        raise TradingError(
            f"the current price of {trade.pair_id} could not be read to check the new stops: "
            f"{error}"
        ) from error
    long = trade.current_units > 0
    market, side = (quote.bid, "bid") if long else (quote.ask, "ask")
    for name, key, losing in (
        ("stop_loss", "stopLoss", True),
        ("take_profit", "takeProfit", False),
    ):
        if key not in data:
            continue
        price = Decimal(data[key]["price"])
        below = losing == long
        if (price >= market) if below else (price <= market):
            raise TradingError(
                f"{name}={data[key]['price']} is on the wrong side of the market: on a "
                f"{'long' if long else 'short'} trade it must be {'below' if below else 'above'} "
                f"the current {side} {market}, or the broker would close the trade at once.",
                field=name,
            )


def trade_amend(
    *,
    trade_id: int | str,
    actor: str,
    stop_loss: Decimal | str | None = None,
    take_profit: Decimal | str | None = None,
    address: str | None = None,
    client: oanda.OandaClient | None = None,
) -> Trade:
    """Move a trade's stop-loss and/or take-profit at the broker."""
    trade = _trade(trade_id)
    if trade.state != Trade.State.OPEN:
        raise Conflict(f"trade {trade.pk} is closed.", field="trade")
    if stop_loss is None and take_profit is None:
        raise TradingError("give stop_loss, take_profit or both.", field="stop_loss")
    data: dict[str, dict[str, str]] = {}
    for name, key, value in (
        ("stop_loss", "stopLoss", stop_loss),
        ("take_profit", "takeProfit", take_profit),
    ):
        if value is None:
            continue
        try:
            price = parse_decimal(value)
        except InvalidOperation:
            price = Decimal(-1)
        if not price.is_finite() or price <= 0:
            raise TradingError(
                f"{name}={value!r} is not valid; expected a positive price.", field=name
            )
        data[key] = {"price": format(price.normalize(), "f"), "timeInForce": "GTC"}
    client = client or broker_client()
    _stops_side_check(trade, data, client)
    try:
        response = client.request(
            oanda.TradeCRCDO(client.account_id, trade.broker_trade_id, data=data)
        )
    except oanda.OandaError as error:
        raise TradingError(
            f"the broker refused the new stops for trade {trade.pk}: {error}"
        ) from error
    response_transactions_apply(client.account_id, response)
    audit_record(
        actor=actor,
        action="trade.amend",
        target=f"{trade.pair_id} trade {trade.broker_trade_id}",
        details={"stop_loss": str(stop_loss), "take_profit": str(take_profit)},
        address=address,
    )
    trade.refresh_from_db()
    return trade


@dataclass
class CloseAllResult:
    trades_closed: int
    failures: list[str]


def trades_close_all(
    *,
    actor: str,
    pair: str | None = None,
    reason: str = "",
    address: str | None = None,
    client: oanda.OandaClient | None = None,
    audit: bool = True,
) -> CloseAllResult:
    """Close every open trade at the broker (of one pair when given), from the broker's list."""
    if pair is not None:
        _pair(pair, lock=False)
    client = client or broker_client()
    closed = 0
    failures = []
    for wire in client.request(oanda.OpenTrades(client.account_id)).get("trades", []):
        if pair is not None and wire.get("instrument") != pair:
            continue
        try:
            response = client.request(
                oanda.TradeClose(client.account_id, str(wire["id"]), data={"units": "ALL"})
            )
            response_transactions_apply(client.account_id, response)
            closed += 1
        except oanda.OandaError as error:
            failures.append(f"trade {wire['id']}: {error}")
    if audit:
        audit_record(
            actor=actor,
            action="trades.close_all",
            target=pair or "all",
            details={"closed": closed, "failures": failures, "reason": reason},
            address=address,
        )
    logger.info("event=trades_close_all pair=%s closed=%d failures=%d", pair, closed, len(failures))
    return CloseAllResult(closed, failures)


# ----- the market clock (beat, every minute) -----------------------------------------------------

SCHEDULE_ACTOR = "system:schedule"
FLATTEN_REASON = "flatten before the weekend"


@dataclass(frozen=True)
class MarketRefresh:
    status: MarketStatus
    # Whether this refresh moved the market between open and closed (and wrote an audit entry).
    changed: bool
    flattened: bool


def market_state_refresh(*, now: datetime | None = None) -> MarketRefresh:
    """Record whether the market is open in ``TradingState`` (row 1, created if missing), audit
    each move between open and closed once, and flatten before the weekend when configured.

    Safe to run from several processes: the move is a conditional update that changes the row
    only for the first of them, so the audit entry is written once. ``now`` defaults to the
    broker's clock (the replayed market's time in the demo and the simulator).
    """
    now = now or broker_now()
    status = market_status_at(now)
    summary = status.summary()[: TradingState._meta.get_field("market_reason").max_length]
    with transaction.atomic():
        TradingState.objects.get_or_create(pk=1)
        changed = (
            TradingState.objects.filter(pk=1, market_open=not status.open).update(
                market_open=status.open, market_reason=summary, market_checked_at=now
            )
            == 1
        )
        if changed:
            AuditLog.objects.create(
                actor=SCHEDULE_ACTOR,
                action="market.open" if status.open else "market.close",
                target="market",
                details={
                    "reason": status.reason,
                    "next_change": status.next_change.isoformat(),
                    "checked_at": now.isoformat(),
                },
            )
            logger.info(
                "event=market_state_changed open=%s reason=%r next_change=%s",
                status.open,
                status.reason,
                status.next_change.isoformat(),
            )
        else:
            TradingState.objects.filter(pk=1).update(market_reason=summary, market_checked_at=now)
    flattened = False
    minutes = config_get("market.flatten_before_weekend_minutes")
    holidays = market_holidays(range(now.year - 1, now.year + 2))
    # The pair column holds the symbol (django-stubs types a foreign key's id as an int).
    open_pairs = (
        {
            str(pair)
            for pair in Trade.objects.filter(state=Trade.State.OPEN).values_list(
                "pair_id", flat=True
            )
        }
        if minutes > 0
        else set()
    )
    # Only pairs whose schedule closes for the weekend are flattened (crypto trades through it).
    due = {
        pair for pair in open_pairs if should_flatten(now, minutes, holidays, pair_schedule(pair))
    }
    if due:
        # Outside the transaction: closing trades talks to the broker.
        logger.info("event=flatten_before_weekend pairs=%s", ",".join(sorted(due)))
        if due == open_pairs:
            trades_close_all(actor=SCHEDULE_ACTOR, reason=FLATTEN_REASON)
        else:
            for pair in sorted(due):
                trades_close_all(actor=SCHEDULE_ACTOR, pair=pair, reason=FLATTEN_REASON)
        flattened = True
    return MarketRefresh(status=status, changed=changed, flattened=flattened)
