"""OANDA v20 JSON shapes: the account, orders, trades, positions, prices, fills and errors."""

from __future__ import annotations

from decimal import Decimal

from oandasim.instruments import INSTRUMENTS, Instrument
from oandasim.market import Market, Quote
from oandasim.models import DEPENDENTS, ZERO, Body, Order, Trade, money
from oandasim.state import USER_ID, Account
from oandasim.timeutil import format_time
from oandasim.units import format_units
from oandasim.valuation import Valuation

Response = tuple[int, Body]

REJECT_MESSAGES = {
    "PRICE_PRECISION_EXCEEDED": (
        "The price specified contains more precision than is allowed for the instrument"
    ),
    "PRICE_INVALID": "The price specified is invalid",
    "PRICE_MISSING": "The Order requires a price but none was specified",
    "PRICE_BOUND_PRECISION_EXCEEDED": (
        "The price bound specified contains more precision than is allowed for the instrument"
    ),
    "UNITS_INVALID": "Order units specified are invalid",
    "UNITS_MISSING": "Order units were not specified",
    "UNITS_PRECISION_EXCEEDED": "Order units specified exceed the precision allowed",
    "UNITS_LIMIT_EXCEEDED": "Order units specified exceed the maximum allowed for the instrument",
    # The misspelling is OANDA's: its v20 TransactionRejectReason names it so.
    "UNITS_MIMIMUM_NOT_MET": (
        "The units specified is less than the minimum number of units required"
    ),
    "INSTRUMENT_MISSING": "The instrument was not specified",
    "INSTRUMENT_UNKNOWN": "The instrument specified is unknown",
    "TIME_IN_FORCE_INVALID": "The time-in-force specified is invalid for this Order type",
    "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING": "A GTD Order was specified without a GTD time",
    "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST": "The GTD time specified is in the past",
    "POSITION_FILL_INVALID": "The position fill option specified is invalid",
    "CLIENT_ORDER_ID_ALREADY_EXISTS": "The client Order ID specified is already assigned",
    "CLIENT_TRADE_ID_ALREADY_EXISTS": "The client Trade ID specified is already assigned",
    "TAKE_PROFIT_ON_FILL_PRICE_MISSING": "The Take Profit on fill specified no price",
    "TAKE_PROFIT_ON_FILL_PRICE_PRECISION_EXCEEDED": (
        "The Take Profit on fill price specified contains more precision than is allowed"
    ),
    "STOP_LOSS_ON_FILL_PRICE_MISSING": "The Stop Loss on fill specified neither price nor distance",
    "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED": (
        "The Stop Loss on fill price specified contains more precision than is allowed"
    ),
    "STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED": (
        "The Stop Loss on fill specified both a price and a distance"
    ),
    "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET": (
        "The Trailing Stop Loss on fill distance is smaller than the instrument's minimum"
    ),
    "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED": (
        "The Trailing Stop Loss on fill distance is larger than the instrument's maximum"
    ),
    "TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MISSING": (
        "The Trailing Stop Loss on fill specified no distance"
    ),
    "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE": "The units specified exceed the Trade's current units",
    "CLOSE_TRADE_PARTIAL_UNITS_MISSING": "The units specified to close the Trade are invalid",
    "CLOSEOUT_POSITION_DOESNT_EXIST": "The Position requested to be closed out does not exist",
    "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE": (
        "The units specified exceed the Position's current units"
    ),
    "CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION": (
        "The request to close out a Position was specified incompletely"
    ),
    "ORDER_DOESNT_EXIST": "The Order specified does not exist",
    "TRADE_DOESNT_EXIST": "The Trade specified does not exist",
}

NO_FEE = "0.0000"
# The charges the simulator never makes, as the account and a position list them (financing is
# charged at the daily rollover, so those shapes override it with the amount charged).
NO_FEES = {
    "financing": NO_FEE,
    "commission": NO_FEE,
    "dividendAdjustment": NO_FEE,
    "guaranteedExecutionFees": NO_FEE,
}
LIQUIDITY = 10000000


class RejectError(Exception):
    """A request that OANDA answers with a reject transaction and an errorCode."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ===== errors ===================================================================================


def error(reason: str) -> Body:
    return {"errorCode": reason, "errorMessage": REJECT_MESSAGES.get(reason, reason)}


def not_found(account: Account, code: str, message: str) -> Response:
    """OANDA's 404 for an unknown trade or order: no transaction is used for it."""
    return 404, {
        "errorCode": code,
        "errorMessage": REJECT_MESSAGES[message],
        "lastTransactionID": account.last_transaction_id,
    }


def rejected(account: Account, response: Body, reason: str, status: int = 400) -> Response:
    """End the batch that holds a reject and answer with it and the reason."""
    account.finish(response)
    response.update(error(reason))
    return status, response


# ===== prices ===================================================================================


def price(market: Market, name: str, when: float) -> Body:
    quote = market.quote(name, when)
    instrument = quote.instrument
    return {
        "type": "PRICE",
        "instrument": name,
        "time": format_time(quote.time),
        "status": "tradeable" if quote.tradeable else "non-tradeable",
        "tradeable": quote.tradeable,
        "bids": [{"price": instrument.format(quote.bid), "liquidity": LIQUIDITY}],
        "asks": [{"price": instrument.format(quote.ask), "liquidity": LIQUIDITY}],
        "closeoutBid": instrument.format(quote.closeout_bid),
        "closeoutAsk": instrument.format(quote.closeout_ask),
    }


def full_price(quote: Quote) -> Body:
    """The price a fill transaction names; OANDA writes its liquidity as a string here."""
    instrument = quote.instrument
    return {
        "type": "PRICE",
        "bids": [{"price": instrument.format(quote.bid), "liquidity": str(LIQUIDITY)}],
        "asks": [{"price": instrument.format(quote.ask), "liquidity": str(LIQUIDITY)}],
        "closeoutBid": instrument.format(quote.closeout_bid),
        "closeoutAsk": instrument.format(quote.closeout_ask),
        "timestamp": format_time(quote.time),
    }


# ===== transactions' parts ======================================================================


def order_create_fields(order: Order) -> Body:
    """An order as its create transaction describes it."""
    wire = order.to_wire()
    for key in ("id", "createTime", "type", "state", "replacesOrderID"):
        wire.pop(key, None)
    return wire


def dependent_create_fields(
    order: Order, trade: Trade, reason: str, fill_id: int | None, replaces: Order | None
) -> Body:
    """A take-profit, stop-loss or trailing stop as its create transaction describes it."""
    instrument = INSTRUMENTS[trade.instrument]
    fields: Body = {
        "tradeID": str(trade.id),
        "clientTradeID": trade.client_id,
        "timeInForce": order.time_in_force,
        "gtdTime": format_time(order.gtd_time)
        if order.gtd_time is not None and order.time_in_force == "GTD"
        else None,
        "triggerCondition": "DEFAULT",
        "reason": reason,
        "orderFillTransactionID": str(fill_id) if fill_id is not None else None,
        "replacesOrderID": str(replaces.id) if replaces else None,
        "clientExtensions": order.client_extensions,
    }
    if order.type == "TRAILING_STOP_LOSS":
        fields["distance"] = instrument.format(order.distance or 0)
    else:
        assert order.price is not None
        fields["price"] = instrument.format(order.price)
        if order.distance is not None:
            fields["distance"] = instrument.format(order.distance)
    return fields


def trade_closed(
    instrument: Instrument,
    trade: Trade,
    units: Decimal,
    price: int,
    realized: Decimal,
    cost: Decimal,
) -> Body:
    """A fill's TradeReduce: `units` of `trade` closed (signed as the trade's) at `price`."""
    return {
        "tradeID": str(trade.id),
        "units": format_units(-units),
        "price": instrument.format(price),
        "realizedPL": money(realized),
        "financing": NO_FEE,
        "guaranteedExecutionFee": NO_FEE,
        "halfSpreadCost": money(cost),
    }


def trade_opened(instrument: Instrument, trade: Trade, cost: Decimal) -> Body:
    """A fill's TradeOpen."""
    opened: Body = {
        "tradeID": str(trade.id),
        "units": format_units(trade.initial_units),
        "price": instrument.format(trade.price),
        "guaranteedExecutionFee": NO_FEE,
        "halfSpreadCost": money(cost),
        "initialMarginRequired": money(trade.initial_margin_required),
    }
    if trade.client_extensions:
        opened["clientExtensions"] = trade.client_extensions
    return opened


# ===== the account, its orders, trades and positions ============================================


class AccountWire:
    """The account's GET shapes, valued at the account's current moment."""

    def __init__(self, account: Account, valuation: Valuation) -> None:
        self.account = account
        self.valuation = valuation

    def summary(self) -> Body:
        account = self.account
        trades = account.open_trades()
        unrealized = sum((self.valuation.unrealized(t) for t in trades), ZERO)
        position_value = sum(
            (
                self.valuation.position_value(INSTRUMENTS[t.instrument], t.current_units)
                for t in trades
            ),
            ZERO,
        )
        margin_used = sum((self.valuation.trade_margin(t) for t in trades), ZERO)
        nav = account.balance + unrealized
        available = nav - margin_used
        closeout_percent = margin_used / nav / 2 if nav > 0 else Decimal(0)
        margin_call_percent = margin_used / nav if nav > 0 else Decimal(0)
        summary: Body = {
            "id": account.account_id,
            "alias": "oandasim",
            "currency": account.currency,
            "balance": money(account.balance),
            "createdByUserID": USER_ID,
            "createdTime": format_time(account.created_time),
            "guaranteedStopLossOrderMode": "DISABLED",
            "pl": money(account.pl),
            "resettablePL": money(account.pl),
            "resettablePLTime": "0",
            **NO_FEES,
            "financing": money(account.financing),
            "marginRate": str(account.margin_rate),
            "openTradeCount": len(trades),
            "openPositionCount": len({t.instrument for t in trades}),
            "pendingOrderCount": len(account.pending),
            "hedgingEnabled": False,
            "unrealizedPL": money(unrealized),
            "NAV": money(nav),
            "marginUsed": money(margin_used),
            "marginAvailable": money(available),
            "positionValue": money(position_value),
            "marginCloseoutUnrealizedPL": money(unrealized),
            "marginCloseoutNAV": money(nav),
            "marginCloseoutMarginUsed": money(margin_used),
            "marginCloseoutPercent": str(closeout_percent.quantize(Decimal("0.00001"))),
            "marginCloseoutPositionValue": money(position_value),
            "withdrawalLimit": money(max(available, ZERO)),
            "marginCallMarginUsed": money(margin_used),
            "marginCallPercent": str(margin_call_percent.quantize(Decimal("0.00001"))),
            "lastTransactionID": account.last_transaction_id,
        }
        if account.last_fill_time is not None:
            summary["lastOrderFillTimestamp"] = format_time(account.last_fill_time)
        return summary

    def details(self) -> Body:
        account = self.summary()
        account["trades"] = [self.trade_summary(t) for t in self.account.open_trades()]
        account["positions"] = self.positions(open_only=False)
        account["orders"] = [self.order(o) for o in self.account.pending_orders()]
        return account

    def order(self, order: Order) -> Body:
        client_trade_id = None
        if order.trade_id is not None and order.trade_id in self.account.trades:
            client_trade_id = self.account.trades[order.trade_id].client_id
        return order.to_wire(client_trade_id)

    def trade_summary(self, trade: Trade) -> Body:
        """The TradeSummary shape, which names an open trade's dependent orders by id."""
        is_open = trade.state == "OPEN"
        wire = trade.summary(
            self.valuation.unrealized(trade) if is_open else ZERO,
            self.valuation.trade_margin(trade) if is_open else ZERO,
        )
        if is_open:
            for dependent in DEPENDENTS:
                order_id = trade.dependent_id(dependent)
                if order_id is not None:
                    wire[f"{dependent.prefix}OrderID"] = str(order_id)
        return wire

    def trade(self, trade: Trade) -> Body:
        """The Trade shape, which holds an open trade's dependent orders whole."""
        wire = self.trade_summary(trade)
        for dependent in DEPENDENTS:
            wire.pop(f"{dependent.prefix}OrderID", None)
        if trade.state == "OPEN":
            for dependent in DEPENDENTS:
                order_id = trade.dependent_id(dependent)
                if order_id is not None:
                    wire[f"{dependent.prefix}Order"] = self.order(self.account.orders[order_id])
        return wire

    def positions(self, *, open_only: bool) -> list[Body]:
        names = list(self.account.position_pl)
        for trade in self.account.open_trades():
            if trade.instrument not in names:
                names.append(trade.instrument)
        result = [self.position(name) for name in names]
        if open_only:
            result = [
                p for p in result if Decimal(p["long"]["units"]) or Decimal(p["short"]["units"])
            ]
        return result

    def position(self, name: str) -> Body:
        instrument = INSTRUMENTS[name]
        realized = self.account.position_pl.get(name, {"long": ZERO, "short": ZERO})
        financing = self.account.position_financing.get(name, {"long": ZERO, "short": ZERO})
        sides: dict[str, Body] = {}
        total_unrealized = ZERO
        total_margin = ZERO
        for side in ("long", "short"):
            trades = self.account.side_trades(name, side == "long")
            unrealized = sum((self.valuation.unrealized(t) for t in trades), ZERO)
            total_unrealized += unrealized
            total_margin += sum((self.valuation.trade_margin(t) for t in trades), ZERO)
            sides[side] = _position_side(
                instrument, trades, realized[side], unrealized, financing[side]
            )
        total_pl = realized["long"] + realized["short"]
        return {
            "instrument": name,
            "pl": money(total_pl),
            "unrealizedPL": money(total_unrealized),
            "marginUsed": money(total_margin),
            "resettablePL": money(total_pl),
            **NO_FEES,
            "financing": money(financing["long"] + financing["short"]),
            "long": sides["long"],
            "short": sides["short"],
        }


def _position_side(
    instrument: Instrument,
    trades: list[Trade],
    realized: Decimal,
    unrealized: Decimal,
    financing: Decimal,
) -> Body:
    units = sum((t.current_units for t in trades), ZERO)
    wire: Body = {
        "units": format_units(units),
        "pl": money(realized),
        "unrealizedPL": money(unrealized),
        "resettablePL": money(realized),
        "financing": money(financing),
        "dividendAdjustment": NO_FEE,
        "guaranteedExecutionFees": NO_FEE,
    }
    if units:
        weighted = sum((t.price * t.current_units for t in trades), ZERO) / units
        wire["averagePrice"] = str(
            (weighted / instrument.scale).quantize(
                Decimal(1).scaleb(-instrument.display_precision - 1)
            )
        )
        wire["tradeIDs"] = [str(t.id) for t in trades]
    return wire
