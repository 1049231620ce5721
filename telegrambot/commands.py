"""What each Telegram command does, in plain synchronous Django: parse the words, check the role,
call the one service or selector the REST API calls, and write the answer as text.

Every write goes through the service the API view calls (``trading.services``,
``monitoring.services``, ``septrader.services``), which writes the AuditLog; the actor is the
Telegram user and the project user they act as (``Actor.audit_name``). The asyncio side
(``telegrambot.bot``) only carries messages to and from Telegram.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from marketdata import oanda
from marketdata.models import Pair, pair_symbol_problem
from monitoring.selectors import alerts_unresolved
from monitoring.services import AlertNotFound, alert_acknowledge
from septrader.api.permissions import OPERATOR, VIEWER
from septrader.formatting import money, price, significant
from septrader.services import config_reload
from telegrambot.selectors import Actor
from trading import selectors as overview
from trading import services
from trading.api import trading_status_payload
from trading.models import Trade, TradingState
from trading.performance import daily_performance

logger = logging.getLogger(__name__)

# How many rows a list answers with; Telegram caps a message at 4096 characters.
MAX_ROWS = 20
MAX_MESSAGE = 4000
DEFAULT_PROFIT_DAYS = 7
DEFAULT_DAILY_DAYS = 7
MAX_DAYS = 366


class CommandError(Exception):
    """Words a command cannot act on; the message says what was expected."""


@dataclass(frozen=True)
class Confirmation:
    """An action the user must confirm with a button before it runs."""

    action: str
    button: str


@dataclass(frozen=True)
class Reply:
    text: str
    confirm: Confirmation | None = None


@dataclass(frozen=True)
class Command:
    name: str
    role: str
    usage: str
    summary: str
    run: Callable[[Actor, list[str]], Reply] = field(repr=False)


# ----- helpers -----------------------------------------------------------------------------------


def _currency() -> str:
    account = overview.account_latest()
    return account.currency if account is not None else ""


def _pair_symbol(word: str) -> str:
    """``eur_usd``, ``EURUSD`` and ``EUR/USD`` all name EUR_USD; ``xau_usd`` names XAU_USD."""
    symbol = word.strip().upper().replace("/", "_")
    if re.fullmatch(r"[A-Z]{6}", symbol):
        symbol = f"{symbol[:3]}_{symbol[3:]}"
    problem = pair_symbol_problem(symbol, field="pair")
    if problem is not None:
        raise CommandError(problem)
    return symbol


def _one_pair(args: list[str], usage: str) -> str:
    if not args:
        raise CommandError(f"Which pair? Usage: {usage}")
    return _pair_symbol(args[0])


def _days(args: list[str], default: int, usage: str) -> int:
    if not args:
        return default
    if not args[0].isascii() or not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_DAYS:
        raise CommandError(
            f"days={args[0]!r} is not valid; expected a whole number from 1 to {MAX_DAYS}. "
            f"Usage: {usage}"
        )
    return int(args[0])


def _precisions() -> dict[str, int]:
    return dict(Pair.objects.values_list("symbol", "display_precision"))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _truncated(lines: list[str], total: int) -> str:
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more")
    text = "\n".join(lines)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


# ----- reads (viewer) ----------------------------------------------------------------------------


def status(actor: Actor, args: list[str]) -> Reply:
    payload = trading_status_payload()
    currency = payload["account"].currency if payload["account"] is not None else ""
    lines = [
        f"Trading: {payload['mode']}" + (f" ({payload['reason']})" if payload["reason"] else ""),
        "Market: "
        + ("open" if payload["market_open"] else "closed")
        + (f" ({payload['market_reason']})" if payload["market_reason"] else ""),
    ]
    account = payload["account"]
    if account is not None:
        lines.append(
            f"NAV {money(account.nav, currency)}, balance {money(account.balance, currency)}, "
            f"margin used {money(account.margin_used, currency)}"
        )
    lines.append(
        f"Open trades: {payload['open_trades']} "
        f"(unrealized {money(payload['unrealized_pl'], currency, signed=True)}), "
        f"pending orders: {payload['pending_orders']}"
    )
    today = payload["today"]
    lines.append(
        f"Today ({today['day']:%Y-%m-%d}): {money(today['pl'], currency, signed=True)} "
        f"(realized {money(today['realized_pl'], currency, signed=True)})"
    )
    return Reply("\n".join(lines))


def pairs(actor: Actor, args: list[str]) -> Reply:
    rows = overview.pairs_status()
    if not rows:
        return Reply("No pairs.")
    precision = _precisions()
    currency = _currency()
    lines = []
    for row in rows[:MAX_ROWS]:
        places = precision.get(row["pair"], 5)
        line = f"{row['pair']} {row['state']}" + ("" if row["enabled"] else " (disabled)")
        quote = row["last_price"]
        if quote is not None and quote["bid"] is not None and quote["ask"] is not None:
            line += f", {price(quote['bid'], places)}/{price(quote['ask'], places)}"
        position = row["open_position"]
        if position is not None:
            line += (
                f", {position['trades']} open "
                f"{money(position['unrealized_pl'], currency, signed=True)}"
            )
        paper = row["paper_position"]
        if paper is not None:
            line += (
                f", {paper['trades']} paper open "
                f"{money(paper['unrealized_pl'], currency, signed=True)}"
            )
        signal = row["last_signal"]
        if signal is not None:
            line += (
                f", last {signal['direction']} {significant(signal['confidence'])} "
                f"({signal['status']})"
            )
        lines.append(line)
    return Reply(_truncated(lines, len(rows)))


def trades(actor: Actor, args: list[str]) -> Reply:
    open_trades = overview.trades_listed(state=Trade.State.OPEN)
    total = open_trades.count()
    if not total:
        return Reply("No open trades.")
    precision = _precisions()
    currency = _currency()
    lines = []
    for trade in open_trades[:MAX_ROWS]:
        places = precision.get(trade.pair_id, 5)
        side = "BUY" if trade.initial_units > 0 else "SELL"
        line = (
            f"#{trade.pk} {trade.pair_id} {'paper ' if trade.paper else ''}{side} "
            f"{abs(trade.current_units):,.0f} @ {price(trade.open_price, places)}"
        )
        if trade.stop_loss_price is not None:
            line += f" SL {price(trade.stop_loss_price, places)}"
        if trade.take_profit_price is not None:
            line += f" TP {price(trade.take_profit_price, places)}"
        line += f", {money(trade.unrealized_pl, currency, signed=True)}"
        lines.append(line)
    return Reply(_truncated(lines, total))


def profit(actor: Actor, args: list[str]) -> Reply:
    days = _days(args, DEFAULT_PROFIT_DAYS, "/profit [days]")
    end = overview.performance_today()
    start = end - timedelta(days=days - 1)
    performance = daily_performance(start, end)
    currency = _currency()
    realized = sum((day.realized_pl for day in performance), Decimal(0))
    closed = sum(day.trades_closed for day in performance)
    wins = sum(day.wins for day in performance)
    losses = sum(day.losses for day in performance)
    realized_line = f"Realized {money(realized, currency, signed=True)} on " + _count(
        closed, "closed trade"
    )
    if closed:
        win_rate = significant(100 * wins / closed)
        realized_line += f" ({wins} won, {losses} lost, win rate {win_rate}%)"
    lines = [
        f"Profit {start:%Y-%m-%d} to {end:%Y-%m-%d} ({_count(days, 'day')}):",
        realized_line,
        f"Unrealized {money(overview.open_trades_unrealized(), currency, signed=True)}",
    ]
    return Reply("\n".join(lines))


def daily(actor: Actor, args: list[str]) -> Reply:
    days = _days(args, DEFAULT_DAILY_DAYS, "/daily [days]")
    end = overview.performance_today()
    performance = daily_performance(end - timedelta(days=days - 1), end)
    currency = _currency()
    lines = ["Day (17:00 New York)    P&L    trades"]
    for day in reversed(performance):
        lines.append(
            f"{day.day:%Y-%m-%d %a}  {money(day.realized_pl, currency, signed=True)}  "
            f"{day.trades_closed}" + (f" ({day.wins} won)" if day.trades_closed else "")
        )
    return Reply(_truncated(lines, len(lines)))


def alerts(actor: Actor, args: list[str]) -> Reply:
    rows = alerts_unresolved()
    total = rows.count()
    if not total:
        return Reply("No unresolved alerts.")
    lines = [
        f"#{alert.id} [{alert.severity}] {alert.state}: {alert.message}"
        + (f" (x{alert.count})" if alert.count > 1 else "")
        for alert in rows[:MAX_ROWS]
    ]
    return Reply(_truncated(lines, total) + "\nAcknowledge one with /ack ID.")


# ----- control (operator) ------------------------------------------------------------------------


def enable(actor: Actor, args: list[str]) -> Reply:
    symbol = _one_pair(args, "/enable PAIR [force]")
    force = len(args) > 1 and args[1].lower() == "force"
    pair = services.pair_enable(symbol=symbol, actor=actor.audit_name, force=force)
    return Reply(f"{pair.symbol} enabled ({pair.state}).")


def advance(actor: Actor, args: list[str]) -> Reply:
    symbol = _one_pair(args, "/advance PAIR")
    pair = services.pair_advance(symbol=symbol, actor=actor.audit_name)
    return Reply(f"{pair.symbol} advanced from paper to live ({pair.state}).")


def disable(actor: Actor, args: list[str]) -> Reply:
    symbol = _one_pair(args, "/disable PAIR [reason]")
    reason = " ".join(args[1:]) or "disabled from Telegram"
    pair = services.pair_disable(symbol=symbol, actor=actor.audit_name, reason=reason)
    return Reply(f"{pair.symbol} disabled: no new entries; its open trades keep their stops.")


def close(actor: Actor, args: list[str]) -> Reply:
    if not args:
        raise CommandError("Which trade? Usage: /close TRADE [units] (the # in /trades)")
    trade_id = args[0].lstrip("#")
    units = args[1] if len(args) > 1 else None
    trade = services.trade_close(trade_id=trade_id, actor=actor.audit_name, units=units)
    precision = _precisions().get(trade.pair_id, 5)
    if trade.state == Trade.State.CLOSED:
        return Reply(
            f"Trade #{trade.pk} {trade.pair_id} closed at {price(trade.close_price, precision)}: "
            f"{money(trade.realized_pl, _currency(), signed=True)}"
        )
    return Reply(f"Trade #{trade.pk} {trade.pair_id} reduced to {abs(trade.current_units)} units.")


def flatten(actor: Actor, args: list[str]) -> Reply:
    symbol = _one_pair(args, "/flatten PAIR")
    result = services.trades_close_all(
        actor=actor.audit_name, pair=symbol, reason="flattened from Telegram"
    )
    text = (
        f"{symbol}: {result.trades_closed} trade{'s' if result.trades_closed != 1 else ''} closed."
    )
    if result.failures:
        text += "\nFailed: " + "; ".join(result.failures)
    return Reply(text)


def stop(actor: Actor, args: list[str]) -> Reply:
    reason = " ".join(args) or "stopped from Telegram"
    services.trading_mode_set(
        mode=TradingState.Mode.REDUCING, actor=actor.audit_name, reason=reason
    )
    return Reply("Reducing only: no new entries; open trades keep their stops. /start resumes.")


def start(actor: Actor, args: list[str]) -> Reply:
    state = overview.trading_state_current()
    return Reply(
        f"Trading is {state.mode}. Resume trading (new entries allowed)?",
        confirm=Confirmation(action="start", button="Resume trading"),
    )


def kill(actor: Actor, args: list[str]) -> Reply:
    return Reply(
        "Kill switch: halt trading, cancel every pending order and close the trades "
        "(as execution.kill_switch_closes_trades says). Sure?",
        confirm=Confirmation(action="kill", button="KILL"),
    )


def ack(actor: Actor, args: list[str]) -> Reply:
    if not args or not args[0].lstrip("#").isdigit() or not args[0].isascii():
        raise CommandError("Which alert? Usage: /ack ID (the # in /alerts)")
    alert = alert_acknowledge(alert_id=int(args[0].lstrip("#")), actor=actor.audit_name)
    return Reply(f"Alert #{alert.id} {alert.state}: {alert.message}")


def reload(actor: Actor, args: list[str]) -> Reply:
    generation = config_reload(actor=actor.audit_name)
    return Reply(f"Every process reads its settings again (generation {generation}).")


def help_(actor: Actor, args: list[str]) -> Reply:
    lines = [f"You act as {actor.username} ({actor.role or 'no role'}). Commands:"]
    lines += [
        f"{command.usage} - {command.summary}"
        for command in COMMANDS.values()
        if actor.may(command.role)
    ]
    return Reply("\n".join(lines))


# ----- confirmed actions (the button under /start and /kill) -------------------------------------


def confirmed_start(actor: Actor) -> str:
    state = services.trading_mode_set(
        mode=TradingState.Mode.TRADING, actor=actor.audit_name, reason="started from Telegram"
    )
    return f"Trading is {state.mode}: new entries allowed."


def confirmed_kill(actor: Actor) -> str:
    result = services.kill_switch_engage(actor=actor.audit_name)
    text = (
        f"Kill switch engaged: trading halted, {_count(result.orders_cancelled, 'pending order')} "
        f"cancelled, {_count(result.trades_closed, 'trade')} closed."
    )
    if result.failures:
        text += "\nFailed: " + "; ".join(result.failures)
    return text


CONFIRMED: dict[str, Callable[[Actor], str]] = {
    "start": confirmed_start,
    "kill": confirmed_kill,
}


def _commands(*commands: Command) -> dict[str, Command]:
    return {command.name: command for command in commands}


COMMANDS = _commands(
    Command("help", VIEWER, "/help", "the commands you may use", help_),
    Command("status", VIEWER, "/status", "trading mode, market, account, today's P&L", status),
    Command("pairs", VIEWER, "/pairs", "every pair's state, price and last signal", pairs),
    Command("trades", VIEWER, "/trades", "the open trades", trades),
    Command("profit", VIEWER, "/profit [days]", "realized P&L over the last days (7)", profit),
    Command("daily", VIEWER, "/daily [days]", "P&L per trading day (7)", daily),
    Command("alerts", VIEWER, "/alerts", "the unresolved alerts", alerts),
    Command("enable", OPERATOR, "/enable PAIR [force]", "trade a pair (on paper first)", enable),
    Command("advance", OPERATOR, "/advance PAIR", "move a paper pair to live (gates)", advance),
    Command("disable", OPERATOR, "/disable PAIR [reason]", "no new entries on a pair", disable),
    Command("close", OPERATOR, "/close TRADE [units]", "close a trade", close),
    Command("flatten", OPERATOR, "/flatten PAIR", "close every trade of a pair", flatten),
    Command("stop", OPERATOR, "/stop [reason]", "reducing only: no new entries", stop),
    Command("start", OPERATOR, "/start", "resume trading (asks to confirm)", start),
    Command("kill", OPERATOR, "/kill", "kill switch (asks to confirm)", kill),
    Command("ack", OPERATOR, "/ack ID", "acknowledge an alert", ack),
    Command("reload", OPERATOR, "/reload", "every process reads its settings again", reload),
)

# What a failed command answers: the services' own messages, which name the field and value.
ANSWERED_ERRORS: tuple[type[Exception], ...] = (
    CommandError,
    services.TradingError,
    AlertNotFound,
    oanda.OandaError,
)


def refusal(actor: Actor, command: Command) -> str:
    return (
        f"/{command.name} needs the {command.role} role; {actor.username} is "
        f"{actor.role or 'without a role'}."
    )


def run_command(actor: Actor, name: str, args: list[str]) -> Reply:
    """Run the command ``name`` for ``actor``, answering a refusal or an error as text."""
    command = COMMANDS.get(name)
    if command is None:
        return Reply(f"/{name} is not a command here; /help lists them.")
    if not actor.may(command.role):
        logger.info(
            "event=telegram_refused telegram_id=%s user=%s command=%s role=%s",
            actor.telegram_id,
            actor.username,
            name,
            actor.role,
        )
        return Reply(refusal(actor, command))
    try:
        return command.run(actor, args)
    except ANSWERED_ERRORS as error:
        return Reply(f"/{name}: {error}")


def run_confirmed(actor: Actor, action: str) -> str:
    """Run a confirmed action (the operator pressed the button), checking the role again."""
    command = COMMANDS[action]
    if not actor.may(command.role):
        return refusal(actor, command)
    try:
        return CONFIRMED[action](actor)
    except ANSWERED_ERRORS as error:
        return f"/{action}: {error}"
