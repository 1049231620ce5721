"""The simulated OANDA account: orders, trades, positions, transactions, margin and P&L.

Every public method takes the already-parsed request and returns `(status, body)` with the body
shaped exactly as OANDA's. The broker runs on the server's single event-loop thread, so it needs
no locks. One counter numbers orders, trades and transactions, as on OANDA: an order's id is its
creating transaction's id, a trade's id is its opening fill's id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from oandasim.clock import SimClock
from oandasim.instruments import INSTRUMENTS, MAXIMUM_ORDER_UNITS, Instrument
from oandasim.market import Market, Quote
from oandasim.models import ZERO, Order, Trade, money
from oandasim.timeutil import TimeFormatError, format_time, next_ny_close, parse_time

Body = dict[str, Any]
Response = tuple[int, Body]
USER_ID = 1000001

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


class RejectError(Exception):
    """A request that OANDA answers with a reject transaction and an errorCode."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Trigger:
    time: float
    order: Order
    fill_price: int | None  # None for an expiry


ON_FILL_KEYS = {
    "take_profit": "takeProfitOnFill",
    "stop_loss": "stopLossOnFill",
    "trailing_stop_loss": "trailingStopLossOnFill",
}
DEPENDENT_TYPE = {
    "take_profit": "TAKE_PROFIT",
    "stop_loss": "STOP_LOSS",
    "trailing_stop_loss": "TRAILING_STOP_LOSS",
}
FILL_REASON = {
    "LIMIT": "LIMIT_ORDER",
    "STOP": "STOP_ORDER",
    "TAKE_PROFIT": "TAKE_PROFIT_ORDER",
    "STOP_LOSS": "STOP_LOSS_ORDER",
    "TRAILING_STOP_LOSS": "TRAILING_STOP_LOSS_ORDER",
}


class Broker:
    def __init__(
        self,
        *,
        market: Market,
        clock: SimClock,
        account_id: str,
        currency: str = "USD",
        balance: Decimal = Decimal("100000"),
        margin_rate: Decimal = Decimal("0.02"),
    ) -> None:
        self.market = market
        self.clock = clock
        self.account_id = account_id
        self.currency = currency
        self.margin_rate = margin_rate
        self.balance = ZERO
        self.pl = ZERO
        self.transactions: list[Body] = []
        self.orders: dict[int, Order] = {}
        self.trades: dict[int, Trade] = {}
        # Open trades and pending orders are also indexed on their own, because the full maps
        # keep every trade and order ever made and scanning them would slow every request.
        self._open: dict[int, Trade] = {}
        self._pending: dict[int, Order] = {}
        self.client_ids: dict[str, tuple[str, int]] = {}
        self.position_pl: dict[str, dict[str, Decimal]] = {}
        self.created_time = clock.now()
        self.cursor = self.created_time
        self.last_fill_time: float | None = None
        self.listeners: list[Callable[[Body], None]] = []
        self.dirty = False
        self._batch: list[Body] | None = None
        self._now = self.created_time
        self._pending_instruments: set[str] = set()
        self._begin(self.created_time)
        self._transaction(
            "CREATE",
            divisionID=1,
            siteID=101,
            accountUserID=USER_ID,
            accountNumber=1,
            homeCurrency=currency,
        )
        self.balance = balance
        self._transaction(
            "TRANSFER_FUNDS",
            amount=money(balance),
            fundingReason="CLIENT_FUNDING",
            accountBalance=money(balance),
        )
        self._end()

    # ===== transactions =========================================================================

    @property
    def last_transaction_id(self) -> str:
        return str(len(self.transactions))

    def _begin(self, when: float) -> None:
        self._batch = []
        self._now = when

    def _end(self) -> list[Body]:
        batch = self._batch or []
        self._batch = None
        if batch:
            self.dirty = True
            for transaction in batch:
                for listener in list(self.listeners):
                    listener(transaction)
        return batch

    def _transaction(self, kind: str, **fields: Any) -> Body:
        assert self._batch is not None
        transaction_id = len(self.transactions) + 1
        batch_id = self._batch[0]["id"] if self._batch else str(transaction_id)
        transaction: Body = {
            "id": str(transaction_id),
            "time": format_time(self._now),
            "userID": USER_ID,
            "accountID": self.account_id,
            "batchID": batch_id,
            "type": kind,
        }
        transaction.update({key: value for key, value in fields.items() if value is not None})
        self.transactions.append(transaction)
        self._batch.append(transaction)
        return transaction

    def _related(self, batch: list[Body]) -> list[str]:
        return [transaction["id"] for transaction in batch]

    # ===== prices and conversion ================================================================

    def quote(self, name: str, when: float | None = None) -> Quote:
        return self.market.quote(name, self._now if when is None else when)

    def conversion(self, currency: str, when: float | None = None) -> tuple[Decimal, Decimal]:
        """The (gain, loss) factors that turn an amount of `currency` into the home currency.

        Each is the less favourable side: for USD_JPY in a USD account a JPY gain is worth
        1/ask dollars and a JPY loss costs 1/bid dollars. Crosses go through one other currency.
        """
        return self._factors(currency, self.currency, when, depth=2)

    def _factors(
        self, source: str, target: str, when: float | None, depth: int
    ) -> tuple[Decimal, Decimal]:
        if source == target:
            return Decimal(1), Decimal(1)
        direct = f"{target}_{source}"
        if direct in self.market.series:
            quote = self.quote(direct, when)
            instrument = quote.instrument
            return (
                Decimal(1) / instrument.to_decimal(quote.ask),
                Decimal(1) / instrument.to_decimal(quote.bid),
            )
        inverse = f"{source}_{target}"
        if inverse in self.market.series:
            quote = self.quote(inverse, when)
            instrument = quote.instrument
            return instrument.to_decimal(quote.bid), instrument.to_decimal(quote.ask)
        if depth > 1:
            for via in ("USD", "EUR", "GBP", "JPY"):
                if via in (source, target):
                    continue
                try:
                    first = self._factors(source, via, when, depth - 1)
                    second = self._factors(via, target, when, depth - 1)
                except LookupError:
                    continue
                return first[0] * second[0], first[1] * second[1]
        raise LookupError(f"no conversion from {source} to {target}")

    def mid_rate(self, currency: str) -> Decimal:
        gain, loss = self.conversion(currency)
        return (gain + loss) / 2

    def _home(self, amount: Decimal, currency: str) -> Decimal:
        gain, loss = self.conversion(currency)
        return amount * (gain if amount >= 0 else loss)

    def _position_value(self, instrument: Instrument, units: int) -> Decimal:
        return abs(units) * self.mid_rate(instrument.base)

    def _margin_rate(self, instrument: Instrument) -> Decimal:
        return max(self.margin_rate, instrument.margin_rate)

    def _unrealized(self, trade: Trade) -> Decimal:
        quote = self.quote(trade.instrument)
        instrument = quote.instrument
        close = quote.bid if trade.is_long else quote.ask
        amount = instrument.to_decimal(close - trade.price) * trade.current_units
        return self._home(amount, instrument.quote)

    def _trade_margin(self, trade: Trade) -> Decimal:
        instrument = INSTRUMENTS[trade.instrument]
        return self._position_value(instrument, trade.current_units) * self._margin_rate(instrument)

    # ===== the account ==========================================================================

    def open_trades(self) -> list[Trade]:
        return list(self._open.values())

    def pending_orders(self) -> list[Order]:
        return list(self._pending.values())

    def account_summary(self) -> Body:
        trades = self.open_trades()
        unrealized = sum((self._unrealized(t) for t in trades), ZERO)
        position_value = sum(
            (self._position_value(INSTRUMENTS[t.instrument], t.current_units) for t in trades),
            ZERO,
        )
        margin_used = sum((self._trade_margin(t) for t in trades), ZERO)
        nav = self.balance + unrealized
        available = nav - margin_used
        closeout_percent = margin_used / nav / 2 if nav > 0 else Decimal(0)
        margin_call_percent = margin_used / nav if nav > 0 else Decimal(0)
        positions = {t.instrument for t in trades}
        summary: Body = {
            "id": self.account_id,
            "alias": "oandasim",
            "currency": self.currency,
            "balance": money(self.balance),
            "createdByUserID": USER_ID,
            "createdTime": format_time(self.created_time),
            "guaranteedStopLossOrderMode": "DISABLED",
            "pl": money(self.pl),
            "resettablePL": money(self.pl),
            "resettablePLTime": "0",
            "financing": "0.0000",
            "commission": "0.0000",
            "dividendAdjustment": "0.0000",
            "guaranteedExecutionFees": "0.0000",
            "marginRate": str(self.margin_rate),
            "openTradeCount": len(trades),
            "openPositionCount": len(positions),
            "pendingOrderCount": len(self.pending_orders()),
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
            "lastTransactionID": self.last_transaction_id,
        }
        if self.last_fill_time is not None:
            summary["lastOrderFillTimestamp"] = format_time(self.last_fill_time)
        return summary

    def account_details(self) -> Body:
        account = self.account_summary()
        account["trades"] = [self.trade_summary(t) for t in self.open_trades()]
        account["positions"] = self.positions(open_only=False)
        account["orders"] = [self.order_wire(o) for o in self.pending_orders()]
        return account

    def available_margin(self) -> Decimal:
        """NAV minus margin used, computed without building the whole summary."""
        unrealized = ZERO
        margin_used = ZERO
        for trade in self._open.values():
            unrealized += self._unrealized(trade)
            margin_used += self._trade_margin(trade)
        return self.balance + unrealized - margin_used

    # ===== shapes ===============================================================================

    def order_wire(self, order: Order) -> Body:
        client_trade_id = None
        if order.trade_id is not None and order.trade_id in self.trades:
            client_trade_id = self.trades[order.trade_id].client_id
        return order.to_wire(client_trade_id)

    def trade_summary(self, trade: Trade) -> Body:
        is_open = trade.state == "OPEN"
        wire = trade.summary(
            self._unrealized(trade) if is_open else ZERO,
            self._trade_margin(trade) if is_open else ZERO,
        )
        if is_open:
            for key, order_id in (
                ("takeProfitOrderID", trade.take_profit_order_id),
                ("stopLossOrderID", trade.stop_loss_order_id),
                ("trailingStopLossOrderID", trade.trailing_stop_loss_order_id),
            ):
                if order_id is not None:
                    wire[key] = str(order_id)
        return wire

    def trade_wire(self, trade: Trade) -> Body:
        wire = self.trade_summary(trade)
        for key in ("takeProfitOrderID", "stopLossOrderID", "trailingStopLossOrderID"):
            wire.pop(key, None)
        if trade.state == "OPEN":
            for key, order_id in (
                ("takeProfitOrder", trade.take_profit_order_id),
                ("stopLossOrder", trade.stop_loss_order_id),
                ("trailingStopLossOrder", trade.trailing_stop_loss_order_id),
            ):
                if order_id is not None:
                    wire[key] = self.order_wire(self.orders[order_id])
        return wire

    def positions(self, *, open_only: bool) -> list[Body]:
        names = list(self.position_pl)
        for trade in self.open_trades():
            if trade.instrument not in names:
                names.append(trade.instrument)
        result = [self.position(name) for name in names]
        if open_only:
            result = [p for p in result if p["long"]["units"] != "0" or p["short"]["units"] != "0"]
        return result

    def position(self, name: str) -> Body:
        instrument = INSTRUMENTS[name]
        realized = self.position_pl.get(name, {"long": ZERO, "short": ZERO})
        sides: dict[str, Body] = {}
        total_unrealized = ZERO
        total_margin = ZERO
        for side in ("long", "short"):
            trades = [
                t
                for t in self.open_trades()
                if t.instrument == name and t.is_long == (side == "long")
            ]
            units = sum(t.current_units for t in trades)
            unrealized = sum((self._unrealized(t) for t in trades), ZERO)
            total_unrealized += unrealized
            total_margin += sum((self._trade_margin(t) for t in trades), ZERO)
            wire: Body = {
                "units": str(units),
                "pl": money(realized[side]),
                "unrealizedPL": money(unrealized),
                "resettablePL": money(realized[side]),
                "financing": "0.0000",
                "dividendAdjustment": "0.0000",
                "guaranteedExecutionFees": "0.0000",
            }
            if units:
                weighted = sum((Decimal(t.price) * t.current_units for t in trades), ZERO) / units
                wire["averagePrice"] = str(
                    (weighted / instrument.scale).quantize(
                        Decimal(1).scaleb(-instrument.display_precision - 1)
                    )
                )
                wire["tradeIDs"] = [str(t.id) for t in trades]
            sides[side] = wire
        total_pl = realized["long"] + realized["short"]
        return {
            "instrument": name,
            "pl": money(total_pl),
            "unrealizedPL": money(total_unrealized),
            "marginUsed": money(total_margin),
            "resettablePL": money(total_pl),
            "financing": "0.0000",
            "commission": "0.0000",
            "dividendAdjustment": "0.0000",
            "guaranteedExecutionFees": "0.0000",
            "long": sides["long"],
            "short": sides["short"],
        }

    def price_wire(self, name: str, when: float) -> Body:
        quote = self.market.quote(name, when)
        instrument = quote.instrument
        return {
            "type": "PRICE",
            "instrument": name,
            "time": format_time(quote.time),
            "status": "tradeable" if quote.tradeable else "non-tradeable",
            "tradeable": quote.tradeable,
            "bids": [{"price": instrument.format(quote.bid), "liquidity": 10000000}],
            "asks": [{"price": instrument.format(quote.ask), "liquidity": 10000000}],
            "closeoutBid": instrument.format(quote.closeout_bid),
            "closeoutAsk": instrument.format(quote.closeout_ask),
        }

    def _full_price(self, quote: Quote) -> Body:
        instrument = quote.instrument
        return {
            "type": "PRICE",
            "bids": [{"price": instrument.format(quote.bid), "liquidity": "10000000"}],
            "asks": [{"price": instrument.format(quote.ask), "liquidity": "10000000"}],
            "closeoutBid": instrument.format(quote.closeout_bid),
            "closeoutAsk": instrument.format(quote.closeout_ask),
            "timestamp": format_time(quote.time),
        }

    # ===== lookups ==============================================================================

    def find_order(self, specifier: str) -> Order | None:
        if specifier.startswith("@"):
            kind, found = self.client_ids.get(specifier[1:], ("", 0))
            return self.orders.get(found) if kind == "order" else None
        return self.orders.get(int(specifier)) if specifier.isdigit() else None

    def find_trade(self, specifier: str) -> Trade | None:
        if specifier.startswith("@"):
            kind, found = self.client_ids.get(specifier[1:], ("", 0))
            return self.trades.get(found) if kind == "trade" else None
        return self.trades.get(int(specifier)) if specifier.isdigit() else None

    # ===== parsing helpers ======================================================================

    @staticmethod
    def _parse_price(instrument: Instrument, value: Any, precision_reason: str) -> int:
        try:
            price = Decimal(str(value))
        except InvalidOperation:
            raise RejectError("PRICE_INVALID") from None
        if not price.is_finite() or price <= 0:
            raise RejectError("PRICE_INVALID")
        scaled = price * instrument.scale
        # oandapyV20's PriceValue always writes five decimals, so only non-zero extra digits count.
        if scaled != scaled.to_integral_value():
            raise RejectError(precision_reason)
        return int(scaled)

    @staticmethod
    def _parse_units(value: Any) -> int:
        if value is None:
            raise RejectError("UNITS_MISSING")
        try:
            units = Decimal(str(value))
        except InvalidOperation:
            raise RejectError("UNITS_INVALID") from None
        if not units.is_finite() or units == 0:
            raise RejectError("UNITS_INVALID")
        if units != units.to_integral_value():
            raise RejectError("UNITS_PRECISION_EXCEEDED")
        if abs(units) > MAXIMUM_ORDER_UNITS:
            raise RejectError("UNITS_LIMIT_EXCEEDED")
        return int(units)

    def _parse_gtd(self, request: Body, reason_missing: str) -> float | None:
        time_in_force = request.get("timeInForce")
        if time_in_force == "GTD":
            if not request.get("gtdTime"):
                raise RejectError(reason_missing)
            try:
                gtd = parse_time(str(request["gtdTime"]))
            except TimeFormatError:
                raise RejectError(reason_missing) from None
            if gtd <= self._now:
                raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST")
            return gtd
        if time_in_force == "GFD":
            return next_ny_close(self._now)
        return None

    def _check_client_ids(self, request: Body) -> None:
        for key, reason in (
            ("clientExtensions", "CLIENT_ORDER_ID_ALREADY_EXISTS"),
            ("tradeClientExtensions", "CLIENT_TRADE_ID_ALREADY_EXISTS"),
        ):
            extensions = request.get(key)
            client_id = extensions.get("id") if isinstance(extensions, dict) else None
            if client_id and str(client_id) in self.client_ids:
                raise RejectError(reason)

    def _normalize_on_fill(self, instrument: Instrument, request: Body) -> dict[str, Any]:
        """Validate the *OnFill details and return them in their wire form for the order."""
        on_fill: dict[str, Any] = {}
        take_profit = request.get("takeProfitOnFill")
        if isinstance(take_profit, dict):
            if "price" not in take_profit:
                raise RejectError("TAKE_PROFIT_ON_FILL_PRICE_MISSING")
            points = self._parse_price(
                instrument, take_profit["price"], "TAKE_PROFIT_ON_FILL_PRICE_PRECISION_EXCEEDED"
            )
            on_fill["takeProfitOnFill"] = self._dependent_details(instrument, take_profit, points)
        stop_loss = request.get("stopLossOnFill")
        if isinstance(stop_loss, dict):
            has_price = stop_loss.get("price") is not None
            has_distance = stop_loss.get("distance") is not None
            if not has_price and not has_distance:
                raise RejectError("STOP_LOSS_ON_FILL_PRICE_MISSING")
            if has_price and has_distance:
                raise RejectError("STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED")
            details: dict[str, Any]
            if has_price:
                points = self._parse_price(
                    instrument, stop_loss["price"], "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"
                )
                details = self._dependent_details(instrument, stop_loss, points)
            else:
                distance = self._parse_price(
                    instrument, stop_loss["distance"], "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"
                )
                details = self._dependent_details(instrument, stop_loss, None)
                details["distance"] = instrument.format(distance)
            on_fill["stopLossOnFill"] = details
        trailing = request.get("trailingStopLossOnFill")
        if isinstance(trailing, dict):
            on_fill["trailingStopLossOnFill"] = self._trailing_details(
                instrument, trailing, "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"
            )
        return on_fill

    def _dependent_details(
        self, instrument: Instrument, request: Body, price: int | None
    ) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if price is not None:
            details["price"] = instrument.format(price)
        time_in_force = request.get("timeInForce", "GTC")
        if time_in_force not in ("GTC", "GTD", "GFD"):
            raise RejectError("TIME_IN_FORCE_INVALID")
        details["timeInForce"] = time_in_force
        if time_in_force == "GTD":
            if not request.get("gtdTime"):
                raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING")
            details["gtdTime"] = format_time(parse_time(str(request["gtdTime"])))
        if isinstance(request.get("clientExtensions"), dict):
            details["clientExtensions"] = request["clientExtensions"]
        return details

    # ===== order creation =======================================================================

    def create_order(self, body: Body, replaces: Order | None = None) -> Response:
        request = body.get("order")
        if not isinstance(request, dict):
            return 400, {"errorMessage": "Invalid value specified for 'order'"}
        order_type = request.get("type", "MARKET")
        if order_type not in ("MARKET", "LIMIT", "STOP"):
            return 400, {"errorMessage": "Invalid value specified for 'order.type'"}
        now = self.clock.now()
        self.sync(now)
        self._begin(now)
        try:
            order = self._validate_order(order_type, request)
        except RejectError as error:
            echo = {k: v for k, v in request.items() if k != "type"}
            reject = self._transaction(
                f"{order_type}_ORDER_REJECT",
                **echo,
                reason="CLIENT_ORDER" if replaces is None else "REPLACEMENT",
                rejectReason=error.reason,
            )
            batch = self._end()
            return 400, {
                "orderRejectTransaction": reject,
                "relatedTransactionIDs": self._related(batch),
                "lastTransactionID": self.last_transaction_id,
                "errorCode": error.reason,
                "errorMessage": REJECT_MESSAGES.get(error.reason, error.reason),
            }
        response: Body = {}
        if replaces is not None:
            # The successor's id is the one after the cancel's.
            replaces.replaced_by_order_id = len(self.transactions) + 2
            cancel = self._cancel(replaces, "CLIENT_REQUEST_REPLACED")
            response["orderCancelTransaction"] = cancel
        order.id = len(self.transactions) + 1
        if replaces is not None:
            order.replaces_order_id = replaces.id
            replaces.replaced_by_order_id = order.id
        create = self._transaction(
            f"{order_type}_ORDER",
            **self._order_create_fields(order),
            reason="CLIENT_ORDER" if replaces is None else "REPLACEMENT",
            replacesOrderID=str(replaces.id) if replaces is not None else None,
        )
        self.orders[order.id] = order
        for key in ("clientExtensions", "tradeClientExtensions"):
            extensions = request.get(key)
            if isinstance(extensions, dict) and extensions.get("id"):
                kind = "order" if key == "clientExtensions" else "trade-reserved"
                self.client_ids[str(extensions["id"])] = (kind, order.id)
        response["orderCreateTransaction"] = create
        if order_type == "MARKET":
            quote = self.quote(order.instrument)
            outcome = self._execute(order, quote, None, "MARKET_ORDER")
            response.update(outcome)
        else:
            self._pending[order.id] = order
            self._pending_instruments.add(order.instrument)
            quote = self.quote(order.instrument)
            if quote.tradeable and self._entry_condition(order, quote.bid, quote.ask):
                response.update(self._execute(order, quote, None, FILL_REASON[order_type]))
            elif order.time_in_force in ("FOK", "IOC"):
                response["orderCancelTransaction"] = self._cancel(order, "TIME_IN_FORCE_EXPIRED")
        batch = self._end()
        response["relatedTransactionIDs"] = self._related(batch)
        response["lastTransactionID"] = self.last_transaction_id
        return 201, response

    def _validate_order(self, order_type: str, request: Body) -> Order:
        name = request.get("instrument")
        if not name:
            raise RejectError("INSTRUMENT_MISSING")
        if name not in self.market.series:
            raise RejectError("INSTRUMENT_UNKNOWN")
        instrument = INSTRUMENTS[name]
        units = self._parse_units(request.get("units"))
        price = None
        if order_type != "MARKET":
            if request.get("price") is None:
                raise RejectError("PRICE_MISSING")
            price = self._parse_price(instrument, request["price"], "PRICE_PRECISION_EXCEEDED")
        price_bound = None
        if request.get("priceBound") is not None:
            price_bound = self._parse_price(
                instrument, request["priceBound"], "PRICE_BOUND_PRECISION_EXCEEDED"
            )
        allowed = ("FOK", "IOC") if order_type == "MARKET" else ("GTC", "GTD", "GFD", "FOK", "IOC")
        time_in_force = request.get("timeInForce", "FOK" if order_type == "MARKET" else "GTC")
        if time_in_force not in allowed:
            raise RejectError("TIME_IN_FORCE_INVALID")
        gtd = self._parse_gtd(request, "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING")
        position_fill = request.get("positionFill", "DEFAULT")
        if position_fill not in ("DEFAULT", "REDUCE_FIRST", "REDUCE_ONLY", "OPEN_ONLY"):
            raise RejectError("POSITION_FILL_INVALID")
        self._check_client_ids(request)
        on_fill = self._normalize_on_fill(instrument, request)
        return Order(
            id=0,
            type=order_type,
            create_time=self._now,
            instrument=name,
            units=units,
            price=price,
            price_bound=price_bound,
            time_in_force=time_in_force,
            gtd_time=gtd,
            position_fill=position_fill,
            client_extensions=request.get("clientExtensions")
            if isinstance(request.get("clientExtensions"), dict)
            else None,
            trade_client_extensions=request.get("tradeClientExtensions")
            if isinstance(request.get("tradeClientExtensions"), dict)
            else None,
            on_fill=on_fill,
        )

    def _order_create_fields(self, order: Order) -> dict[str, Any]:
        wire = order.to_wire()
        for key in ("id", "createTime", "type", "state", "replacesOrderID"):
            wire.pop(key, None)
        return wire

    # ===== execution ============================================================================

    def _entry_condition(self, order: Order, bid: int, ask: int) -> bool:
        assert order.price is not None
        if order.type == "LIMIT":
            return ask <= order.price if order.units > 0 else bid >= order.price
        return ask >= order.price if order.units > 0 else bid <= order.price

    def _execute(
        self, order: Order, quote: Quote, trigger_price: int | None, fill_reason: str
    ) -> Body:
        """Fill an entry order (market, or a triggered limit/stop) against the netting account.

        Returns the response keys it produced: an orderFillTransaction or orderCancelTransaction.
        """
        instrument = quote.instrument
        if not quote.tradeable:
            return {"orderCancelTransaction": self._cancel(order, "MARKET_HALTED")}
        buying = order.units > 0
        market_price = quote.ask if buying else quote.bid
        price = market_price if trigger_price is None else trigger_price
        if order.type == "LIMIT" and order.price is not None:
            price = min(price, order.price) if buying else max(price, order.price)
        if order.price_bound is not None and (
            (buying and price > order.price_bound) or (not buying and price < order.price_bound)
        ):
            return {"orderCancelTransaction": self._cancel(order, "BOUNDS_VIOLATION")}
        opposite = [
            t
            for t in self.open_trades()
            if t.instrument == order.instrument and t.is_long != buying
        ]
        reducible = sum(abs(t.current_units) for t in opposite)
        opening = max(0, abs(order.units) - reducible)
        if order.position_fill == "REDUCE_ONLY":
            if reducible == 0:
                return {"orderCancelTransaction": self._cancel(order, "POSITION_CLOSEOUT_FAILED")}
            opening = 0
        if order.position_fill == "OPEN_ONLY" and reducible:
            return {"orderCancelTransaction": self._cancel(order, "FIFO_VIOLATION")}
        if opening:
            loss = self._on_fill_loss(order, instrument, price, quote)
            if loss:
                return {"orderCancelTransaction": self._cancel(order, loss)}
            required = self._position_value(instrument, opening) * self._margin_rate(instrument)
            if required > self.available_margin():
                return {"orderCancelTransaction": self._cancel(order, "INSUFFICIENT_MARGIN")}
        units_to_fill = order.units
        if order.position_fill == "REDUCE_ONLY":
            amount = min(abs(order.units), reducible)
            units_to_fill = amount if buying else -amount
        fill = self._fill(
            order=order,
            quote=quote,
            price=price,
            units_to_fill=units_to_fill,
            close_trades=opposite,
            open_remainder=order.position_fill != "REDUCE_ONLY",
            reason=fill_reason,
        )
        return {"orderFillTransaction": fill}

    def _on_fill_loss(
        self, order: Order, instrument: Instrument, price: int, quote: Quote
    ) -> str | None:
        buying = order.units > 0
        take_profit = order.on_fill.get("takeProfitOnFill")
        if take_profit:
            target = instrument.to_points(Decimal(take_profit["price"]))
            if (buying and target <= price) or (not buying and target >= price):
                return "TAKE_PROFIT_ON_FILL_LOSS"
        stop_loss = order.on_fill.get("stopLossOnFill")
        if stop_loss and "price" in stop_loss:
            stop = instrument.to_points(Decimal(stop_loss["price"]))
            closing_side = quote.bid if buying else quote.ask
            if (buying and stop >= closing_side) or (not buying and stop <= closing_side):
                return "STOP_LOSS_ON_FILL_LOSS"
        return None

    def _fill(
        self,
        *,
        order: Order,
        quote: Quote,
        price: int,
        units_to_fill: int,
        close_trades: list[Trade],
        open_remainder: bool,
        reason: str,
    ) -> Body:
        """Record an ORDER_FILL: close trades oldest first, then open a trade with the rest."""
        instrument = quote.instrument
        gain, loss = self.conversion(instrument.quote)
        remaining = abs(units_to_fill)
        closed: list[Body] = []
        reduced: Body | None = None
        total_pl = ZERO
        fill_id = len(self.transactions) + 1
        half_spread = instrument.to_decimal(quote.ask - quote.bid) / 2
        for trade in sorted(close_trades, key=lambda t: t.id):
            if remaining == 0:
                break
            amount = min(remaining, abs(trade.current_units))
            remaining -= amount
            signed = amount if trade.is_long else -amount
            quote_pl = instrument.to_decimal(price - trade.price) * signed
            realized = (quote_pl * (gain if quote_pl >= 0 else loss)).quantize(Decimal("0.0001"))
            total_pl += realized
            detail = {
                "tradeID": str(trade.id),
                "units": str(-signed),
                "price": instrument.format(price),
                "realizedPL": money(realized),
                "financing": "0.0000",
                "guaranteedExecutionFee": "0.0000",
                "halfSpreadCost": money(half_spread * amount * loss),
            }
            self._reduce_trade(trade, amount, price, realized, fill_id)
            if trade.state == "CLOSED":
                closed.append(detail)
            else:
                reduced = detail
        opened: Body | None = None
        if remaining and open_remainder:
            units = remaining if units_to_fill > 0 else -remaining
            margin = self._position_value(instrument, units) * self._margin_rate(instrument)
            trade = Trade(
                id=fill_id,
                instrument=instrument.name,
                price=price,
                open_time=self._now,
                initial_units=units,
                current_units=units,
                initial_margin_required=margin,
                client_extensions=order.trade_client_extensions,
            )
            self.trades[trade.id] = trade
            self._open[trade.id] = trade
            if trade.client_id:
                self.client_ids[trade.client_id] = ("trade", trade.id)
            opened = {
                "tradeID": str(trade.id),
                "units": str(units),
                "price": instrument.format(price),
                "guaranteedExecutionFee": "0.0000",
                "halfSpreadCost": money(half_spread * remaining * loss),
                "initialMarginRequired": money(margin),
            }
            if trade.client_extensions:
                opened["clientExtensions"] = trade.client_extensions
        self.balance += total_pl
        self.pl += total_pl
        self.last_fill_time = self._now
        filled_units = abs(units_to_fill) - (remaining if not open_remainder else 0)
        signed_units = filled_units if units_to_fill > 0 else -filled_units
        fill = self._transaction(
            "ORDER_FILL",
            orderID=str(order.id),
            clientOrderID=(order.client_extensions or {}).get("id"),
            instrument=instrument.name,
            units=str(signed_units),
            requestedUnits=str(order.units) if order.units else None,
            price=instrument.format(price),
            fullVWAP=instrument.format(price),
            fullPrice=self._full_price(quote),
            reason=reason,
            pl=money(total_pl),
            financing="0.0000",
            commission="0.0000",
            guaranteedExecutionFee="0.0000",
            accountBalance=money(self.balance),
            halfSpreadCost=money(half_spread * filled_units * loss),
            gainQuoteHomeConversionFactor=str(gain.quantize(Decimal("0.0000000001"))),
            lossQuoteHomeConversionFactor=str(loss.quantize(Decimal("0.0000000001"))),
            tradeOpened=opened,
            tradeReduced=reduced,
            tradesClosed=closed or None,
        )
        order.state = "FILLED"
        self._pending.pop(order.id, None)
        order.filling_transaction_id = fill_id
        order.filled_time = self._now
        order.trade_opened_id = fill_id if opened else None
        order.trade_reduced_id = int(reduced["tradeID"]) if reduced else None
        order.trade_closed_ids = [int(c["tradeID"]) for c in closed]
        if instrument.name not in self.position_pl:
            self.position_pl[instrument.name] = {"long": ZERO, "short": ZERO}
        if opened:
            trade = self.trades[fill_id]
            for key, on_fill_key in ON_FILL_KEYS.items():
                details = order.on_fill.get(on_fill_key)
                if details:
                    self._create_dependent(key, trade, details, "ON_FILL", fill_id)
        return fill

    def _reduce_trade(
        self, trade: Trade, amount: int, price: int, realized: Decimal, fill_id: int
    ) -> None:
        side = "long" if trade.is_long else "short"
        self.position_pl.setdefault(trade.instrument, {"long": ZERO, "short": ZERO})
        self.position_pl[trade.instrument][side] += realized
        trade.realized_pl += realized
        trade.closed_units += amount
        trade.closed_units_price_sum += amount * price
        trade.closing_transaction_ids.append(fill_id)
        trade.current_units += -amount if trade.is_long else amount
        if trade.current_units == 0:
            trade.state = "CLOSED"
            self._open.pop(trade.id, None)
            trade.close_time = self._now
            for order_id in trade.dependent_ids():
                dependent = self.orders[order_id]
                if dependent.state == "PENDING":
                    self._cancel(dependent, "LINKED_TRADE_CLOSED", closed_trade_id=trade.id)

    def _cancel(self, order: Order, reason: str, closed_trade_id: int | None = None) -> Body:
        transaction = self._transaction(
            "ORDER_CANCEL",
            orderID=str(order.id),
            clientOrderID=(order.client_extensions or {}).get("id"),
            reason=reason,
            closedTradeID=str(closed_trade_id) if closed_trade_id is not None else None,
            tradeCloseTransactionID=None,
            replacedByOrderID=str(order.replaced_by_order_id)
            if reason == "CLIENT_REQUEST_REPLACED" and order.replaced_by_order_id
            else None,
        )
        order.state = "CANCELLED"
        self._pending.pop(order.id, None)
        order.cancelling_transaction_id = int(transaction["id"])
        order.cancelled_time = self._now
        if order.is_dependent and order.trade_id in self.trades:
            trade = self.trades[order.trade_id]
            for attribute in (
                "take_profit_order_id",
                "stop_loss_order_id",
                "trailing_stop_loss_order_id",
            ):
                if getattr(trade, attribute) == order.id:
                    setattr(trade, attribute, None)
        return transaction

    def _create_dependent(
        self,
        key: str,
        trade: Trade,
        details: Body,
        reason: str,
        fill_id: int | None = None,
        replaces: Order | None = None,
    ) -> Body:
        instrument = INSTRUMENTS[trade.instrument]
        kind = DEPENDENT_TYPE[key]
        order = Order(
            id=len(self.transactions) + 1,
            type=kind,
            create_time=self._now,
            instrument=trade.instrument,
            trade_id=trade.id,
            time_in_force=details.get("timeInForce", "GTC"),
            client_extensions=details.get("clientExtensions"),
            replaces_order_id=replaces.id if replaces else None,
        )
        if details.get("timeInForce") == "GTD" and details.get("gtdTime"):
            order.gtd_time = parse_time(details["gtdTime"])
        elif details.get("timeInForce") == "GFD":
            order.gtd_time = next_ny_close(self._now)
        if details.get("distance") is not None:
            order.distance = instrument.to_points(Decimal(str(details["distance"])))
        if kind == "TRAILING_STOP_LOSS":
            quote = self.quote(trade.instrument)
            assert order.distance is not None
            order.trailing_stop_value = (
                quote.bid - order.distance if trade.is_long else quote.ask + order.distance
            )
        elif details.get("price") is not None:
            order.price = instrument.to_points(Decimal(str(details["price"])))
        else:
            assert order.distance is not None
            order.price = (
                trade.price - order.distance if trade.is_long else trade.price + order.distance
            )
        if replaces is not None:
            replaces.replaced_by_order_id = order.id
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
        if kind == "TRAILING_STOP_LOSS":
            fields["distance"] = instrument.format(order.distance or 0)
        else:
            assert order.price is not None
            fields["price"] = instrument.format(order.price)
            if order.distance is not None:
                fields["distance"] = instrument.format(order.distance)
        transaction = self._transaction(f"{kind}_ORDER", **fields)
        self.orders[order.id] = order
        self._pending[order.id] = order
        if order.client_extensions and order.client_extensions.get("id"):
            self.client_ids[order.client_extensions["id"]] = ("order", order.id)
        setattr(trade, f"{key}_order_id", order.id)
        self._pending_instruments.add(trade.instrument)
        return transaction

    # ===== triggers =============================================================================

    def sync(self, now: float | None = None) -> list[Body]:
        """Process every trigger and expiry on the price path up to `now`, in time order."""
        now = self.clock.now() if now is None else now
        produced: list[Body] = []
        if now < self.cursor:
            return produced
        if not self._pending_instruments:
            self.cursor = self._now = now
            return produced
        while True:
            pending = self.pending_orders()
            if not pending:
                self._pending_instruments.clear()
                self.cursor = now
                break
            earliest: Trigger | None = None
            for order in pending:
                found = self._scan(order, self.cursor, now)
                if found is not None and (earliest is None or found.time < earliest.time):
                    earliest = found
            if earliest is None:
                self._commit_trailing(pending, now)
                self.cursor = now
                break
            self._commit_trailing([o for o in pending if o is not earliest.order], earliest.time)
            self.cursor = earliest.time
            self._begin(earliest.time)
            self._process(earliest)
            produced.extend(self._end())
        # Reads that follow (account, positions, prices) are valued at this moment.
        self._now = now
        return produced

    def _thresholds(self, order: Order) -> tuple[str, int, bool] | None:
        """Which side (bid or ask) an order watches, its level, and whether it fires at or above."""
        if order.is_dependent:
            trade = self.trades.get(order.trade_id or 0)
            if trade is None or trade.state != "OPEN":
                return None
            side = "bid" if trade.is_long else "ask"
            if order.type == "TAKE_PROFIT":
                assert order.price is not None
                return side, order.price, trade.is_long
            if order.type == "STOP_LOSS":
                assert order.price is not None
                return side, order.price, not trade.is_long
            assert order.trailing_stop_value is not None
            return side, order.trailing_stop_value, not trade.is_long
        assert order.price is not None
        buying = order.units > 0
        side = "ask" if buying else "bid"
        if order.type == "LIMIT":
            return side, order.price, not buying
        return side, order.price, buying

    def _scan(self, order: Order, start: float, end: float) -> Trigger | None:
        expiry: Trigger | None = None
        if order.gtd_time is not None and order.gtd_time <= end:
            expiry = Trigger(max(order.gtd_time, start), order, None)
            end = expiry.time
        found, _ = self._scan_path(order, start, end)
        if found is not None and (expiry is None or found.time < expiry.time):
            return found
        return expiry

    def _scan_path(self, order: Order, start: float, end: float) -> tuple[Trigger | None, int]:
        """Find the first moment in [start, end] the order fires; also the trailing value then."""
        watched = self._thresholds(order)
        trailing = order.trailing_stop_value or 0
        if watched is None:
            return None, trailing
        side, level, at_or_above = watched
        series = self.market.series[order.instrument]
        is_trailing = order.type == "TRAILING_STOP_LOSS"
        distance = order.distance or 0
        long_trade = not at_or_above if is_trailing else False
        for t0, t1, p0, p1 in series.segments(start, end):
            spread = series.spread_at(int(t0 // 60), True)
            offset = -(spread // 2) if side == "bid" else spread - spread // 2
            v0, v1 = p0 + offset, p1 + offset
            if is_trailing:
                if long_trade:
                    trailing = max(trailing, v0 - distance)
                else:
                    trailing = min(trailing, v0 + distance)
                level = trailing
            if (v0 >= level) if at_or_above else (v0 <= level):
                return Trigger(t0, order, v0), trailing
            crosses = (v1 >= level) if at_or_above else (v1 <= level)
            if crosses and v1 != v0:
                moment = t0 + (t1 - t0) * (level - v0) / (v1 - v0)
                return Trigger(moment, order, level), trailing
            if is_trailing:
                trailing = (
                    max(trailing, v1 - distance) if long_trade else min(trailing, v1 + distance)
                )
        return None, trailing

    def _commit_trailing(self, orders: list[Order], until: float) -> None:
        for order in orders:
            if order.type == "TRAILING_STOP_LOSS" and order.state == "PENDING":
                _, value = self._scan_path(order, self.cursor, until)
                order.trailing_stop_value = value

    def _process(self, trigger: Trigger) -> None:
        order = trigger.order
        if trigger.fill_price is None:
            self._cancel(order, "TIME_IN_FORCE_EXPIRED")
            return
        quote = self.quote(order.instrument)
        if not order.is_dependent:
            self._execute(order, quote, trigger.fill_price, FILL_REASON[order.type])
            return
        trade = self.trades[order.trade_id or 0]
        self._close_trade_units(order, trade, abs(trade.current_units), quote, trigger.fill_price)

    def _close_trade_units(
        self, order: Order, trade: Trade, amount: int, quote: Quote, price: int | None
    ) -> Body:
        if price is None:
            price = quote.bid if trade.is_long else quote.ask
        units = -amount if trade.is_long else amount
        return self._fill(
            order=order,
            quote=quote,
            price=price,
            units_to_fill=units,
            close_trades=[trade],
            open_remainder=False,
            reason=FILL_REASON[order.type] if order.is_dependent else "MARKET_ORDER_TRADE_CLOSE",
        )

    # ===== trade and position operations ========================================================

    def _market_close_order(self, instrument: str, units: int, **extra: Any) -> Order:
        order = Order(
            id=len(self.transactions) + 1,
            type="MARKET",
            create_time=self._now,
            instrument=instrument,
            units=units,
            time_in_force="FOK",
            position_fill="REDUCE_ONLY",
        )
        fields = self._order_create_fields(order)
        fields.update(extra)
        transaction = self._transaction("MARKET_ORDER", **fields)
        self.orders[order.id] = order
        self._last_create = transaction
        return order

    def close_trade(self, specifier: str, body: Body) -> Response:
        now = self.clock.now()
        self.sync(now)
        trade = self.find_trade(specifier)
        if trade is None or trade.state != "OPEN":
            return self._not_found("NO_SUCH_TRADE", "TRADE_DOESNT_EXIST")
        requested = str(body.get("units", "ALL")) if body else "ALL"
        self._begin(now)
        try:
            if requested == "ALL":
                amount = abs(trade.current_units)
            else:
                try:
                    amount = int(Decimal(requested))
                except (InvalidOperation, ValueError):
                    raise RejectError("CLOSE_TRADE_PARTIAL_UNITS_MISSING") from None
                if amount <= 0 or Decimal(requested) != amount:
                    raise RejectError("CLOSE_TRADE_PARTIAL_UNITS_MISSING")
                if amount > abs(trade.current_units):
                    raise RejectError("CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE")
        except RejectError as error:
            reject = self._transaction(
                "MARKET_ORDER_REJECT",
                instrument=trade.instrument,
                units=str(-trade.current_units),
                timeInForce="FOK",
                positionFill="REDUCE_ONLY",
                reason="TRADE_CLOSE",
                tradeClose={"tradeID": str(trade.id), "units": requested},
                rejectReason=error.reason,
            )
            batch = self._end()
            return 400, {
                "orderRejectTransaction": reject,
                "relatedTransactionIDs": self._related(batch),
                "lastTransactionID": self.last_transaction_id,
                "errorCode": error.reason,
                "errorMessage": REJECT_MESSAGES[error.reason],
            }
        units = -amount if trade.is_long else amount
        trade_close: Body = {"tradeID": str(trade.id), "units": requested}
        if trade.client_id:
            trade_close["clientTradeID"] = trade.client_id
        order = self._market_close_order(
            trade.instrument, units, reason="TRADE_CLOSE", tradeClose=trade_close
        )
        response: Body = {"orderCreateTransaction": self._last_create}
        quote = self.quote(trade.instrument)
        if not quote.tradeable:
            response["orderCancelTransaction"] = self._cancel(order, "MARKET_HALTED")
        else:
            response["orderFillTransaction"] = self._close_trade_units(
                order, trade, amount, quote, None
            )
        batch = self._end()
        response["relatedTransactionIDs"] = self._related(batch)
        response["lastTransactionID"] = self.last_transaction_id
        return 200, response

    def close_position(self, name: str, body: Body) -> Response:
        now = self.clock.now()
        self.sync(now)
        if name not in self.market.series:
            return 404, {"errorMessage": "Invalid value specified for 'instrument'"}
        if not body or ("longUnits" not in body and "shortUnits" not in body):
            return 400, {
                "errorCode": "CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION",
                "errorMessage": REJECT_MESSAGES["CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION"],
            }
        self._begin(now)
        response: Body = {}
        plans: list[tuple[str, list[Trade], int, str]] = []
        for side in ("long", "short"):
            requested = str(body.get(f"{side}Units", "NONE"))
            if requested == "NONE":
                continue
            trades = sorted(
                (
                    t
                    for t in self.open_trades()
                    if t.instrument == name and t.is_long == (side == "long")
                ),
                key=lambda t: t.id,
            )
            held = sum(abs(t.current_units) for t in trades)
            reason = None
            amount = held
            if held == 0:
                reason = "CLOSEOUT_POSITION_DOESNT_EXIST"
            elif requested != "ALL":
                try:
                    amount = int(Decimal(requested))
                except (InvalidOperation, ValueError):
                    amount = -1
                if amount <= 0:
                    reason = "CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION"
                elif amount > held:
                    reason = "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE"
            if reason:
                reject = self._transaction(
                    "MARKET_ORDER_REJECT",
                    instrument=name,
                    units=str(-held if side == "long" else held),
                    timeInForce="FOK",
                    positionFill="REDUCE_ONLY",
                    reason="POSITION_CLOSEOUT",
                    **{f"{side}PositionCloseout": {"instrument": name, "units": requested}},
                    rejectReason=reason,
                )
                response[f"{side}OrderRejectTransaction"] = reject
                response["errorCode"] = reason
                response["errorMessage"] = REJECT_MESSAGES[reason]
                continue
            plans.append((side, trades, amount, requested))
        if "errorCode" in response:
            batch = self._end()
            response["relatedTransactionIDs"] = self._related(batch)
            response["lastTransactionID"] = self.last_transaction_id
            return 400, response
        quote = self.quote(name)
        for side, trades, amount, requested in plans:
            units = -amount if side == "long" else amount
            extensions = body.get(f"{side}ClientExtensions")
            order = self._market_close_order(
                name,
                units,
                reason="POSITION_CLOSEOUT",
                **{f"{side}PositionCloseout": {"instrument": name, "units": requested}},
            )
            if isinstance(extensions, dict):
                order.client_extensions = extensions
            response[f"{side}OrderCreateTransaction"] = self._last_create
            if not quote.tradeable:
                response[f"{side}OrderCancelTransaction"] = self._cancel(order, "MARKET_HALTED")
                continue
            price = quote.bid if side == "long" else quote.ask
            response[f"{side}OrderFillTransaction"] = self._fill(
                order=order,
                quote=quote,
                price=price,
                units_to_fill=units,
                close_trades=trades,
                open_remainder=False,
                reason="MARKET_ORDER_POSITION_CLOSEOUT",
            )
        batch = self._end()
        response["relatedTransactionIDs"] = self._related(batch)
        response["lastTransactionID"] = self.last_transaction_id
        return 200, response

    def _not_found(self, code: str, message: str) -> Response:
        """OANDA's 404 for an unknown trade or order: no transaction is used for it."""
        return 404, {
            "errorCode": code,
            "errorMessage": REJECT_MESSAGES[message],
            "lastTransactionID": self.last_transaction_id,
        }

    def set_dependent_orders(self, specifier: str, body: Body) -> Response:
        """TradeCRCDO: create, replace or cancel a trade's take-profit, stop-loss, trailing stop."""
        now = self.clock.now()
        self.sync(now)
        trade = self.find_trade(specifier)
        if trade is None or trade.state != "OPEN":
            return self._not_found("NO_SUCH_TRADE", "TRADE_DOESNT_EXIST")
        instrument = INSTRUMENTS[trade.instrument]
        prefixes = {
            "take_profit": ("takeProfit", "TAKE_PROFIT"),
            "stop_loss": ("stopLoss", "STOP_LOSS"),
            "trailing_stop_loss": ("trailingStopLoss", "TRAILING_STOP_LOSS"),
        }
        self._begin(now)
        validated: dict[str, Body | None] = {}
        rejects: Body = {}
        for key, (field_name, kind) in prefixes.items():
            if field_name not in body:
                continue
            request = body[field_name]
            if request is None:
                validated[key] = None
                continue
            try:
                if not isinstance(request, dict):
                    raise RejectError("PRICE_MISSING")
                validated[key] = self._validate_dependent(instrument, kind, request)
            except RejectError as error:
                reject = self._transaction(
                    f"{kind}_ORDER_REJECT",
                    tradeID=str(trade.id),
                    **(request if isinstance(request, dict) else {}),
                    reason="CLIENT_ORDER",
                    rejectReason=error.reason,
                )
                rejects[f"{field_name}OrderRejectTransaction"] = reject
                rejects["errorCode"] = error.reason
                rejects["errorMessage"] = REJECT_MESSAGES.get(error.reason, error.reason)
        if rejects:
            batch = self._end()
            rejects["relatedTransactionIDs"] = self._related(batch)
            rejects["lastTransactionID"] = self.last_transaction_id
            return 400, rejects
        response: Body = {}
        created: dict[str, Order] = {}
        for key, details in validated.items():
            field_name = prefixes[key][0]
            existing_id = getattr(trade, f"{key}_order_id")
            existing = self.orders.get(existing_id) if existing_id is not None else None
            if details is None:
                if existing is not None:
                    response[f"{field_name}OrderCancelTransaction"] = self._cancel(
                        existing, "CLIENT_REQUEST"
                    )
                continue
            if existing is not None:
                existing.replaced_by_order_id = len(self.transactions) + 2
                response[f"{field_name}OrderCancelTransaction"] = self._cancel(
                    existing, "CLIENT_REQUEST_REPLACED"
                )
            response[f"{field_name}OrderTransaction"] = self._create_dependent(
                key,
                trade,
                details,
                "REPLACEMENT" if existing is not None else "CLIENT_ORDER",
                replaces=existing,
            )
            created[field_name] = self.orders[len(self.transactions)]
        batch = self._end()
        # A new take-profit or stop-loss already on the wrong side of the price fills at once.
        for transaction in self.sync(now):
            for field_name, order in created.items():
                if (
                    transaction.get("orderID") == str(order.id)
                    and transaction["type"] == "ORDER_FILL"
                ):
                    response[f"{field_name}OrderFillTransaction"] = transaction
                    batch.append(transaction)
        response["relatedTransactionIDs"] = self._related(batch)
        response["lastTransactionID"] = self.last_transaction_id
        return 200, response

    def _trailing_details(
        self, instrument: Instrument, request: Body, precision_error: str
    ) -> Body:
        """A trailing stop's distance checked against the instrument's bounds, in wire form."""
        if request.get("distance") is None:
            raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MISSING")
        distance = self._parse_price(instrument, request["distance"], precision_error)
        minimum, maximum = instrument.trailing_bounds()
        if distance < instrument.to_points(minimum):
            raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET")
        if distance > instrument.to_points(maximum):
            raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED")
        details = self._dependent_details(instrument, request, None)
        details["distance"] = instrument.format(distance)
        return details

    def _validate_dependent(self, instrument: Instrument, kind: str, request: Body) -> Body:
        if kind == "TRAILING_STOP_LOSS":
            return self._trailing_details(instrument, request, "PRICE_PRECISION_EXCEEDED")
        if request.get("price") is not None:
            price = self._parse_price(instrument, request["price"], "PRICE_PRECISION_EXCEEDED")
            return self._dependent_details(instrument, request, price)
        if kind == "STOP_LOSS" and request.get("distance") is not None:
            distance = self._parse_price(
                instrument, request["distance"], "PRICE_PRECISION_EXCEEDED"
            )
            details = self._dependent_details(instrument, request, None)
            details["distance"] = instrument.format(distance)
            return details
        raise RejectError("PRICE_MISSING")

    # ===== order cancel and replace =============================================================

    def cancel_order(self, specifier: str) -> Response:
        now = self.clock.now()
        self.sync(now)
        order = self.find_order(specifier)
        self._begin(now)
        if order is None or order.state != "PENDING":
            reject = self._transaction(
                "ORDER_CANCEL_REJECT",
                orderID=specifier if not specifier.startswith("@") else None,
                clientOrderID=specifier[1:] if specifier.startswith("@") else None,
                rejectReason="ORDER_DOESNT_EXIST",
            )
            batch = self._end()
            return 404, {
                "orderCancelRejectTransaction": reject,
                "relatedTransactionIDs": self._related(batch),
                "lastTransactionID": self.last_transaction_id,
                "errorCode": "ORDER_DOESNT_EXIST",
                "errorMessage": REJECT_MESSAGES["ORDER_DOESNT_EXIST"],
            }
        cancel = self._cancel(order, "CLIENT_REQUEST")
        batch = self._end()
        return 200, {
            "orderCancelTransaction": cancel,
            "relatedTransactionIDs": self._related(batch),
            "lastTransactionID": self.last_transaction_id,
        }

    def replace_order(self, specifier: str, body: Body) -> Response:
        now = self.clock.now()
        self.sync(now)
        order = self.find_order(specifier)
        if order is None or order.state != "PENDING":
            return self._not_found("ORDER_DOESNT_EXIST", "ORDER_DOESNT_EXIST")
        request = body.get("order")
        if order.is_dependent and isinstance(request, dict):
            key = {v: k for k, v in DEPENDENT_TYPE.items()}[order.type]
            field_name = {"take_profit": "takeProfit", "stop_loss": "stopLoss"}.get(
                key, "trailingStopLoss"
            )
            status, response = self.set_dependent_orders(str(order.trade_id), {field_name: request})
            if status == 200:
                renamed = {
                    "orderCancelTransaction": response.pop(
                        f"{field_name}OrderCancelTransaction", None
                    ),
                    "orderCreateTransaction": response.pop(f"{field_name}OrderTransaction", None),
                }
                response = {**{k: v for k, v in renamed.items() if v}, **response}
                return 201, response
            return status, response
        return self.create_order(body, replaces=order)

    # ===== persistence ==========================================================================

    def to_state(self) -> Body:
        return {
            "account_id": self.account_id,
            "currency": self.currency,
            "margin_rate": str(self.margin_rate),
            "balance": str(self.balance),
            "pl": str(self.pl),
            "created_time": self.created_time,
            "cursor": self.cursor,
            "clock": self.clock.now(),
            "last_fill_time": self.last_fill_time,
            "transactions": self.transactions,
            "orders": [o.to_state() for o in self.orders.values()],
            "trades": [t.to_state() for t in self.trades.values()],
            "client_ids": {k: list(v) for k, v in self.client_ids.items()},
            "position_pl": {
                name: {side: str(v) for side, v in sides.items()}
                for name, sides in self.position_pl.items()
            },
        }

    def load_state(self, data: Body) -> None:
        self.currency = data["currency"]
        self.margin_rate = Decimal(data["margin_rate"])
        self.balance = Decimal(data["balance"])
        self.pl = Decimal(data["pl"])
        self.created_time = data["created_time"]
        self.cursor = data["cursor"]
        self.last_fill_time = data["last_fill_time"]
        self.transactions = data["transactions"]
        self.orders = {o["id"]: Order.from_state(o) for o in data["orders"]}
        self.trades = {t["id"]: Trade.from_state(t) for t in data["trades"]}
        self.client_ids = {k: (v[0], v[1]) for k, v in data["client_ids"].items()}
        self.position_pl = {
            name: {side: Decimal(v) for side, v in sides.items()}
            for name, sides in data["position_pl"].items()
        }
        self._open = {t.id: t for t in self.trades.values() if t.state == "OPEN"}
        self._pending = {o.id: o for o in self.orders.values() if o.state == "PENDING"}
        self._pending_instruments = {o.instrument for o in self.pending_orders()}
