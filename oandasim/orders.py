"""Order handling: creating, cancelling and replacing orders, and validating what clients send.

A request that fails validation is answered as OANDA does: a reject transaction naming the
reason, and the reason again as the errorCode (see `wire.REJECT_MESSAGES`).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from oandasim import wire
from oandasim.fills import Fills, entry_condition, fill_reason
from oandasim.instruments import INSTRUMENTS, Instrument
from oandasim.market import Market
from oandasim.models import DEPENDENT_BY_TYPE, DEPENDENTS, Body, Dependent, Order, Trade
from oandasim.state import Account
from oandasim.timeutil import TimeFormatError, format_time, next_ny_close, parse_time
from oandasim.units import at_precision, fits_precision, parse_decimal
from oandasim.valuation import Valuation
from oandasim.wire import RejectError, Response

ENTRY_TYPES = ("MARKET", "LIMIT", "STOP")
POSITION_FILLS = ("DEFAULT", "REDUCE_FIRST", "REDUCE_ONLY", "OPEN_ONLY")
DEPENDENT_TIMES_IN_FORCE = ("GTC", "GTD", "GFD")


# ===== parsing and validation ===================================================================


def parse_price(instrument: Instrument, value: Any, precision_reason: str) -> int:
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


def parse_units(instrument: Instrument, value: Any) -> Decimal:
    """An entry order's signed units, checked as OANDA checks them against the instrument.

    Up to `tradeUnitsPrecision` decimals (trailing zeros do not count, as with prices), at least
    `minimumTradeSize` and at most `maximumOrderUnits` in magnitude.
    """
    if value is None:
        raise RejectError("UNITS_MISSING")
    units = parse_decimal(value)
    if units is None or units == 0:
        raise RejectError("UNITS_INVALID")
    if not fits_precision(instrument, units):
        raise RejectError("UNITS_PRECISION_EXCEEDED")
    if abs(units) > instrument.maximum_order_units:
        raise RejectError("UNITS_LIMIT_EXCEEDED")
    if abs(units) < instrument.minimum_trade_size:
        # OANDA's own spelling of the reason (its v20 TransactionRejectReason).
        raise RejectError("UNITS_MIMIMUM_NOT_MET")
    return at_precision(instrument, units)


def parse_gtd(request: Body, now: float) -> float | None:
    """When an entry order expires: its GTD time, the next New York close for GFD, or never."""
    time_in_force = request.get("timeInForce")
    if time_in_force == "GTD":
        if not request.get("gtdTime"):
            raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING")
        try:
            gtd = parse_time(str(request["gtdTime"]))
        except TimeFormatError:
            raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING") from None
        if gtd <= now:
            raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST")
        return gtd
    if time_in_force == "GFD":
        return next_ny_close(now)
    return None


def check_client_ids(client_ids: dict[str, tuple[str, int]], request: Body) -> None:
    for key, reason in (
        ("clientExtensions", "CLIENT_ORDER_ID_ALREADY_EXISTS"),
        ("tradeClientExtensions", "CLIENT_TRADE_ID_ALREADY_EXISTS"),
    ):
        extensions = request.get(key)
        client_id = extensions.get("id") if isinstance(extensions, dict) else None
        if client_id and str(client_id) in client_ids:
            raise RejectError(reason)


def extensions(request: Body, key: str) -> dict[str, str] | None:
    value = request.get(key)
    return value if isinstance(value, dict) else None


def normalize_on_fill(instrument: Instrument, request: Body) -> dict[str, Any]:
    """Validate the *OnFill details and return them in their wire form for the order."""
    on_fill: dict[str, Any] = {}
    take_profit = request.get("takeProfitOnFill")
    if isinstance(take_profit, dict):
        if "price" not in take_profit:
            raise RejectError("TAKE_PROFIT_ON_FILL_PRICE_MISSING")
        points = parse_price(
            instrument, take_profit["price"], "TAKE_PROFIT_ON_FILL_PRICE_PRECISION_EXCEEDED"
        )
        on_fill["takeProfitOnFill"] = dependent_details(instrument, take_profit, price=points)
    stop_loss = request.get("stopLossOnFill")
    if isinstance(stop_loss, dict):
        on_fill["stopLossOnFill"] = _stop_loss_on_fill(instrument, stop_loss)
    trailing = request.get("trailingStopLossOnFill")
    if isinstance(trailing, dict):
        on_fill["trailingStopLossOnFill"] = trailing_details(
            instrument, trailing, "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"
        )
    return on_fill


def _stop_loss_on_fill(instrument: Instrument, request: Body) -> Body:
    has_price = request.get("price") is not None
    has_distance = request.get("distance") is not None
    if not has_price and not has_distance:
        raise RejectError("STOP_LOSS_ON_FILL_PRICE_MISSING")
    if has_price and has_distance:
        raise RejectError("STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED")
    reason = "STOP_LOSS_ON_FILL_PRICE_PRECISION_EXCEEDED"
    if has_price:
        return dependent_details(
            instrument, request, price=parse_price(instrument, request["price"], reason)
        )
    return dependent_details(
        instrument, request, distance=parse_price(instrument, request["distance"], reason)
    )


def dependent_details(
    instrument: Instrument, request: Body, *, price: int | None = None, distance: int | None = None
) -> Body:
    """A take-profit, stop-loss or trailing stop's validated details, in wire form."""
    details: Body = {}
    if price is not None:
        details["price"] = instrument.format(price)
    time_in_force = request.get("timeInForce", "GTC")
    if time_in_force not in DEPENDENT_TIMES_IN_FORCE:
        raise RejectError("TIME_IN_FORCE_INVALID")
    details["timeInForce"] = time_in_force
    if time_in_force == "GTD":
        if not request.get("gtdTime"):
            raise RejectError("TIME_IN_FORCE_GTD_TIMESTAMP_MISSING")
        details["gtdTime"] = format_time(parse_time(str(request["gtdTime"])))
    if isinstance(request.get("clientExtensions"), dict):
        details["clientExtensions"] = request["clientExtensions"]
    if distance is not None:
        details["distance"] = instrument.format(distance)
    return details


def trailing_details(instrument: Instrument, request: Body, precision_error: str) -> Body:
    """A trailing stop's distance checked against the instrument's bounds, in wire form."""
    if request.get("distance") is None:
        raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MISSING")
    distance = parse_price(instrument, request["distance"], precision_error)
    minimum, maximum = instrument.trailing_bounds()
    if distance < instrument.to_points(minimum):
        raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MINIMUM_NOT_MET")
    if distance > instrument.to_points(maximum):
        raise RejectError("TRAILING_STOP_LOSS_ON_FILL_PRICE_DISTANCE_MAXIMUM_EXCEEDED")
    return dependent_details(instrument, request, distance=distance)


def validate_dependent(instrument: Instrument, kind: str, request: Body) -> Body:
    """A TradeCRCDO take-profit, stop-loss or trailing stop's details, in wire form."""
    reason = "PRICE_PRECISION_EXCEEDED"
    if kind == "TRAILING_STOP_LOSS":
        return trailing_details(instrument, request, reason)
    if request.get("price") is not None:
        price = parse_price(instrument, request["price"], reason)
        return dependent_details(instrument, request, price=price)
    if kind == "STOP_LOSS" and request.get("distance") is not None:
        distance = parse_price(instrument, request["distance"], reason)
        return dependent_details(instrument, request, distance=distance)
    raise RejectError("PRICE_MISSING")


# ===== the order desk ===========================================================================


class OrderDesk:
    def __init__(
        self,
        account: Account,
        valuation: Valuation,
        fills: Fills,
        market: Market,
    ) -> None:
        self.account = account
        self.valuation = valuation
        self.fills = fills
        self.market = market

    # ----- entry orders -------------------------------------------------------------------------

    def create_order(self, body: Body, replaces: Order | None = None) -> Response:
        request = body.get("order")
        if not isinstance(request, dict):
            return 400, {"errorMessage": "Invalid value specified for 'order'"}
        order_type = request.get("type", "MARKET")
        if order_type not in ENTRY_TYPES:
            return 400, {"errorMessage": "Invalid value specified for 'order.type'"}
        now = self.fills.synced()
        self.account.begin(now)
        reason = "CLIENT_ORDER" if replaces is None else "REPLACEMENT"
        try:
            order = self._validate_order(order_type, request)
        except RejectError as error:
            echo = {k: v for k, v in request.items() if k != "type"}
            reject = self.account.transaction(
                f"{order_type}_ORDER_REJECT", **echo, reason=reason, rejectReason=error.reason
            )
            return wire.rejected(self.account, {"orderRejectTransaction": reject}, error.reason)
        response = self._place(order, request, reason, replaces)
        response.update(self._fill_now(order))
        return 201, self.account.finish(response)

    def _place(self, order: Order, request: Body, reason: str, replaces: Order | None) -> Body:
        """Number the order, record its creation (after cancelling the one it replaces)."""
        response: Body = {}
        if replaces is not None:
            response["orderCancelTransaction"] = self.account.cancel_replaced(replaces)
        order.id = self.account.next_id
        if replaces is not None:
            order.replaces_order_id = replaces.id
            replaces.replaced_by_order_id = order.id
        create = self.account.transaction(
            f"{order.type}_ORDER",
            **wire.order_create_fields(order),
            reason=reason,
            replacesOrderID=str(replaces.id) if replaces is not None else None,
        )
        self.account.add_order(order, pending=order.type != "MARKET")
        for key in ("clientExtensions", "tradeClientExtensions"):
            client = extensions(request, key)
            if client is not None and client.get("id"):
                kind = "order" if key == "clientExtensions" else "trade-reserved"
                self.account.client_ids[str(client["id"])] = (kind, order.id)
        response["orderCreateTransaction"] = create
        return response

    def _fill_now(self, order: Order) -> Body:
        """Fill a market order, or a limit or stop whose price is already there; FOK/IOC expire."""
        quote = self.valuation.quote(order.instrument)
        if order.type == "MARKET":
            return self.fills.execute(order, quote, None, "MARKET_ORDER")
        if quote.tradeable and entry_condition(order, quote.bid, quote.ask):
            return self.fills.execute(order, quote, None, fill_reason(order))
        if order.time_in_force in ("FOK", "IOC"):
            return {"orderCancelTransaction": self.account.cancel(order, "TIME_IN_FORCE_EXPIRED")}
        return {}

    def _validate_order(self, order_type: str, request: Body) -> Order:
        name = request.get("instrument")
        if not name:
            raise RejectError("INSTRUMENT_MISSING")
        if name not in self.market.series:
            raise RejectError("INSTRUMENT_UNKNOWN")
        instrument = INSTRUMENTS[name]
        units = parse_units(instrument, request.get("units"))
        price = None
        if order_type != "MARKET":
            if request.get("price") is None:
                raise RejectError("PRICE_MISSING")
            price = parse_price(instrument, request["price"], "PRICE_PRECISION_EXCEEDED")
        price_bound = None
        if request.get("priceBound") is not None:
            price_bound = parse_price(
                instrument, request["priceBound"], "PRICE_BOUND_PRECISION_EXCEEDED"
            )
        allowed = ("FOK", "IOC") if order_type == "MARKET" else ("GTC", "GTD", "GFD", "FOK", "IOC")
        time_in_force = request.get("timeInForce", "FOK" if order_type == "MARKET" else "GTC")
        if time_in_force not in allowed:
            raise RejectError("TIME_IN_FORCE_INVALID")
        gtd = parse_gtd(request, self.account.now)
        position_fill = request.get("positionFill", "DEFAULT")
        if position_fill not in POSITION_FILLS:
            raise RejectError("POSITION_FILL_INVALID")
        check_client_ids(self.account.client_ids, request)
        on_fill = normalize_on_fill(instrument, request)
        return Order(
            id=0,
            type=order_type,
            create_time=self.account.now,
            instrument=name,
            units=units,
            price=price,
            price_bound=price_bound,
            time_in_force=time_in_force,
            gtd_time=gtd,
            position_fill=position_fill,
            client_extensions=extensions(request, "clientExtensions"),
            trade_client_extensions=extensions(request, "tradeClientExtensions"),
            on_fill=on_fill,
        )

    # ----- cancel and replace -------------------------------------------------------------------

    def cancel_order(self, specifier: str) -> Response:
        now = self.fills.synced()
        order = self.account.pending_order(specifier)
        self.account.begin(now)
        if order is None:
            by_client_id = specifier.startswith("@")
            reject = self.account.transaction(
                "ORDER_CANCEL_REJECT",
                orderID=None if by_client_id else specifier,
                clientOrderID=specifier[1:] if by_client_id else None,
                rejectReason="ORDER_DOESNT_EXIST",
            )
            response = {"orderCancelRejectTransaction": reject}
            return wire.rejected(self.account, response, "ORDER_DOESNT_EXIST", status=404)
        cancel = self.account.cancel(order, "CLIENT_REQUEST")
        return 200, self.account.finish({"orderCancelTransaction": cancel})

    def replace_order(self, specifier: str, body: Body) -> Response:
        self.fills.synced()
        order = self.account.pending_order(specifier)
        if order is None:
            return wire.not_found(self.account, "ORDER_DOESNT_EXIST", "ORDER_DOESNT_EXIST")
        request = body.get("order")
        if order.is_dependent and isinstance(request, dict):
            return self._replace_dependent(order, request)
        return self.create_order(body, replaces=order)

    def _replace_dependent(self, order: Order, request: Body) -> Response:
        """Replace a take-profit, stop-loss or trailing stop through its trade's TradeCRCDO."""
        prefix = DEPENDENT_BY_TYPE[order.type].prefix
        status, response = self.set_dependent_orders(str(order.trade_id), {prefix: request})
        if status != 200:
            return status, response
        renamed = {
            "orderCancelTransaction": response.pop(f"{prefix}OrderCancelTransaction", None),
            "orderCreateTransaction": response.pop(f"{prefix}OrderTransaction", None),
        }
        return 201, {**{k: v for k, v in renamed.items() if v}, **response}

    # ----- a trade's dependent orders (TradeCRCDO) ----------------------------------------------

    def set_dependent_orders(self, specifier: str, body: Body) -> Response:
        """TradeCRCDO: create, replace or cancel a trade's take-profit, stop-loss, trailing stop."""
        now = self.fills.synced()
        trade = self.account.open_trade(specifier)
        if trade is None:
            return wire.not_found(self.account, "NO_SUCH_TRADE", "TRADE_DOESNT_EXIST")
        self.account.begin(now)
        validated, rejects = self._validate_dependents(trade, body)
        if rejects:
            return 400, self.account.finish(rejects)
        response, created = self._apply_dependents(trade, validated)
        batch = self.account.end()
        # A new take-profit or stop-loss already on the wrong side of the price fills at once.
        for transaction in self.fills.sync(now):
            for prefix, order in created.items():
                if (
                    transaction.get("orderID") == str(order.id)
                    and transaction["type"] == "ORDER_FILL"
                ):
                    response[f"{prefix}OrderFillTransaction"] = transaction
                    batch.append(transaction)
        return 200, self.account.finish(response, batch)

    def _validate_dependents(
        self, trade: Trade, body: Body
    ) -> tuple[dict[Dependent, Body | None], Body]:
        """The details of each dependent order the request names (None: cancel it); rejects."""
        instrument = INSTRUMENTS[trade.instrument]
        validated: dict[Dependent, Body | None] = {}
        rejects: Body = {}
        for dependent in DEPENDENTS:
            if dependent.prefix not in body:
                continue
            request = body[dependent.prefix]
            if request is None:
                validated[dependent] = None
                continue
            try:
                if not isinstance(request, dict):
                    raise RejectError("PRICE_MISSING")
                validated[dependent] = validate_dependent(instrument, dependent.type, request)
            except RejectError as error:
                rejects[f"{dependent.prefix}OrderRejectTransaction"] = self.account.transaction(
                    f"{dependent.type}_ORDER_REJECT",
                    tradeID=str(trade.id),
                    **(request if isinstance(request, dict) else {}),
                    reason="CLIENT_ORDER",
                    rejectReason=error.reason,
                )
                rejects.update(wire.error(error.reason))
        return validated, rejects

    def _apply_dependents(
        self, trade: Trade, validated: dict[Dependent, Body | None]
    ) -> tuple[Body, dict[str, Order]]:
        """Cancel, replace or create each dependent order; the orders created, by prefix."""
        response: Body = {}
        created: dict[str, Order] = {}
        for dependent, details in validated.items():
            prefix = dependent.prefix
            existing_id = trade.dependent_id(dependent)
            existing = self.account.orders.get(existing_id) if existing_id is not None else None
            if details is None:
                if existing is not None:
                    response[f"{prefix}OrderCancelTransaction"] = self.account.cancel(
                        existing, "CLIENT_REQUEST"
                    )
                continue
            if existing is not None:
                response[f"{prefix}OrderCancelTransaction"] = self.account.cancel_replaced(existing)
            transaction = self.fills.add_dependent(
                dependent,
                trade,
                details,
                "REPLACEMENT" if existing is not None else "CLIENT_ORDER",
                replaces=existing,
            )
            response[f"{prefix}OrderTransaction"] = transaction
            created[prefix] = self.account.orders[int(transaction["id"])]
        return response, created
