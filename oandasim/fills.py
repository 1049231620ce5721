"""Fills and triggers: market fills, pending orders firing on the price path, closing trades.

An entry order fills against the netting account: it closes opposite trades oldest first, then
opens a trade with the rest, and that trade gets the take-profit, stop-loss and trailing stop
its order asked for on fill. Pending orders (limit, stop and the dependent ones) fire at the first
moment the price path crosses their level, in time order across the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from oandasim import wire
from oandasim.clock import SimClock
from oandasim.financing import Financing, rollovers
from oandasim.instruments import INSTRUMENTS, Instrument
from oandasim.market import Market, Quote
from oandasim.models import DEPENDENTS, ZERO, Body, Dependent, Order, Trade, money
from oandasim.state import Account
from oandasim.timeutil import next_ny_close, parse_time
from oandasim.units import at_precision, fits_precision, format_units, parse_decimal
from oandasim.valuation import Valuation
from oandasim.wire import RejectError, Response

CONVERSION_FACTOR = Decimal("0.0000000001")


@dataclass
class Trigger:
    time: float
    order: Order
    fill_price: int | None  # None for an expiry


@dataclass
class Closing:
    """What a fill did to the trades it closed, oldest first."""

    closed: list[Body]
    reduced: Body | None
    realized: Decimal
    remaining: Decimal  # the units left over to open a trade with


def half_spread(quote: Quote) -> Decimal:
    """Half the spread in the quote currency: what each unit filled pays for crossing it."""
    return quote.instrument.to_decimal(quote.ask - quote.bid) / 2


def fill_reason(order: Order) -> str:
    """The reason a triggered order's fill gives: LIMIT_ORDER, STOP_LOSS_ORDER and so on."""
    return f"{order.type}_ORDER"


def entry_condition(order: Order, bid: int, ask: int) -> bool:
    """Whether a limit or stop entry order would fill at these prices."""
    assert order.price is not None
    if order.type == "LIMIT":
        return ask <= order.price if order.units > 0 else bid >= order.price
    return ask >= order.price if order.units > 0 else bid <= order.price


def close_amount(
    instrument: Instrument, requested: str, held: Decimal, reasons: tuple[str, str]
) -> Decimal:
    """The positive units a trade close or position closeout names: "ALL" or a DecimalNumber.

    `reasons` are the rejects for an amount that is not a positive number and for one larger
    than `held`. An amount finer than the instrument's units is refused as an order's would be
    (UNITS_PRECISION_EXCEEDED): "0.5" closes half a unit of BTC_USD, never of EUR_USD.
    """
    if requested == "ALL":
        return held
    invalid, too_large = reasons
    amount = parse_decimal(requested)
    if amount is None or amount <= 0:
        raise RejectError(invalid)
    if not fits_precision(instrument, amount):
        raise RejectError("UNITS_PRECISION_EXCEEDED")
    if amount > held:
        raise RejectError(too_large)
    return at_precision(instrument, amount)


def trade_close_units(instrument: Instrument, requested: str, held: Decimal) -> Decimal:
    return close_amount(
        instrument,
        requested,
        held,
        ("CLOSE_TRADE_PARTIAL_UNITS_MISSING", "CLOSE_TRADE_UNITS_EXCEED_TRADE_SIZE"),
    )


def closeout_units(instrument: Instrument, requested: str, held: Decimal) -> Decimal:
    if held == 0:
        raise RejectError("CLOSEOUT_POSITION_DOESNT_EXIST")
    return close_amount(
        instrument,
        requested,
        held,
        (
            "CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION",
            "CLOSEOUT_POSITION_UNITS_EXCEED_POSITION_SIZE",
        ),
    )


class Fills:
    def __init__(
        self,
        account: Account,
        valuation: Valuation,
        market: Market,
        clock: SimClock,
        financing: Financing | None = None,
    ) -> None:
        self.account = account
        self.valuation = valuation
        self.market = market
        self.clock = clock
        self.financing = financing or Financing(account, valuation)

    # ===== entry orders =========================================================================

    def execute(
        self, order: Order, quote: Quote, trigger_price: int | None, fill_reason: str
    ) -> Body:
        """Fill an entry order (market, or a triggered limit/stop) against the netting account.

        Returns the response keys it produced: an orderFillTransaction or orderCancelTransaction.
        """
        if not quote.tradeable:
            return {"orderCancelTransaction": self.account.cancel(order, "MARKET_HALTED")}
        buying = order.units > 0
        price = quote.ask if buying else quote.bid
        if trigger_price is not None:
            price = trigger_price
        if order.type == "LIMIT" and order.price is not None:
            price = min(price, order.price) if buying else max(price, order.price)
        opposite = self.account.side_trades(order.instrument, not buying)
        reducible = sum((abs(t.current_units) for t in opposite), ZERO)
        refusal = self._refusal(order, quote, price, reducible)
        if refusal is not None:
            return {"orderCancelTransaction": self.account.cancel(order, refusal)}
        units_to_fill = order.units
        if order.position_fill == "REDUCE_ONLY":
            amount = min(abs(order.units), reducible)
            units_to_fill = amount if buying else -amount
        fill = self.fill(
            order=order,
            quote=quote,
            price=price,
            units_to_fill=units_to_fill,
            close_trades=opposite,
            open_remainder=order.position_fill != "REDUCE_ONLY",
            reason=fill_reason,
        )
        return {"orderFillTransaction": fill}

    def _refusal(self, order: Order, quote: Quote, price: int, reducible: Decimal) -> str | None:
        """Why an entry order cannot fill at `price` (its cancel reason), or None."""
        buying = order.units > 0
        if order.price_bound is not None and (
            (buying and price > order.price_bound) or (not buying and price < order.price_bound)
        ):
            return "BOUNDS_VIOLATION"
        opening = max(ZERO, abs(order.units) - reducible)
        if order.position_fill == "REDUCE_ONLY":
            if reducible == 0:
                return "POSITION_CLOSEOUT_FAILED"
            opening = ZERO
        if order.position_fill == "OPEN_ONLY" and reducible:
            return "FIFO_VIOLATION"
        if opening:
            instrument = quote.instrument
            loss = self._on_fill_loss(order, instrument, price, quote)
            if loss:
                return loss
            if self.valuation.margin_required(instrument, opening) > (
                self.valuation.available_margin()
            ):
                return "INSUFFICIENT_MARGIN"
        return None

    @staticmethod
    def _on_fill_loss(order: Order, instrument: Instrument, price: int, quote: Quote) -> str | None:
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

    # ===== the fill =============================================================================

    def fill(
        self,
        *,
        order: Order,
        quote: Quote,
        price: int,
        units_to_fill: Decimal,
        close_trades: list[Trade],
        open_remainder: bool,
        reason: str,
    ) -> Body:
        """Record an ORDER_FILL: close trades oldest first, then open a trade with the rest."""
        instrument = quote.instrument
        account = self.account
        gain, loss = self.valuation.conversion(instrument.quote)
        fill_id = account.next_id
        spread_cost = half_spread(quote)
        closing = self._close_oldest(
            close_trades, abs(units_to_fill), price, quote, (gain, loss), fill_id
        )
        opened: Body | None = None
        if closing.remaining and open_remainder:
            units = closing.remaining if units_to_fill > 0 else -closing.remaining
            trade = self._open_trade(order, instrument, price, units, fill_id)
            opened = wire.trade_opened(instrument, trade, spread_cost * closing.remaining * loss)
        account.balance += closing.realized
        account.pl += closing.realized
        account.last_fill_time = account.now
        filled_units = abs(units_to_fill) - (closing.remaining if not open_remainder else ZERO)
        fill = account.transaction(
            "ORDER_FILL",
            orderID=str(order.id),
            clientOrderID=(order.client_extensions or {}).get("id"),
            instrument=instrument.name,
            units=format_units(filled_units if units_to_fill > 0 else -filled_units),
            requestedUnits=format_units(order.units) if order.units else None,
            price=instrument.format(price),
            fullVWAP=instrument.format(price),
            fullPrice=wire.full_price(quote),
            reason=reason,
            pl=money(closing.realized),
            financing=wire.NO_FEE,
            commission=wire.NO_FEE,
            guaranteedExecutionFee=wire.NO_FEE,
            accountBalance=money(account.balance),
            halfSpreadCost=money(spread_cost * filled_units * loss),
            gainQuoteHomeConversionFactor=str(gain.quantize(CONVERSION_FACTOR)),
            lossQuoteHomeConversionFactor=str(loss.quantize(CONVERSION_FACTOR)),
            tradeOpened=opened,
            tradeReduced=closing.reduced,
            tradesClosed=closing.closed or None,
        )
        self._mark_filled(order, fill_id, opened is not None, closing)
        account.position_pl.setdefault(instrument.name, {"long": ZERO, "short": ZERO})
        if opened:
            self._add_on_fill_dependents(order, account.trades[fill_id], fill_id)
        return fill

    def _close_oldest(
        self,
        trades: list[Trade],
        units: Decimal,
        price: int,
        quote: Quote,
        factors: tuple[Decimal, Decimal],
        fill_id: int,
    ) -> Closing:
        """Close up to `units` of `trades` at `price`, oldest first, realizing their P&L."""
        instrument = quote.instrument
        gain, loss = factors
        spread_cost = half_spread(quote)
        closing = Closing(closed=[], reduced=None, realized=ZERO, remaining=units)
        for trade in sorted(trades, key=lambda t: t.id):
            if closing.remaining == 0:
                break
            amount = min(closing.remaining, abs(trade.current_units))
            closing.remaining -= amount
            signed = amount if trade.is_long else -amount
            quote_pl = instrument.to_decimal(price - trade.price) * signed
            realized = (quote_pl * (gain if quote_pl >= 0 else loss)).quantize(Decimal("0.0001"))
            closing.realized += realized
            cost = spread_cost * amount * loss
            detail = wire.trade_closed(instrument, trade, signed, price, realized, cost)
            self._reduce_trade(trade, amount, price, realized, fill_id)
            if trade.state == "CLOSED":
                closing.closed.append(detail)
            else:
                closing.reduced = detail
        return closing

    def _open_trade(
        self, order: Order, instrument: Instrument, price: int, units: Decimal, fill_id: int
    ) -> Trade:
        trade = Trade(
            id=fill_id,
            instrument=instrument.name,
            price=price,
            open_time=self.account.now,
            initial_units=units,
            current_units=units,
            initial_margin_required=self.valuation.margin_required(instrument, units),
            client_extensions=order.trade_client_extensions,
        )
        self.account.add_trade(trade)
        return trade

    def _mark_filled(self, order: Order, fill_id: int, opened: bool, closing: Closing) -> None:
        order.state = "FILLED"
        self.account.pending.pop(order.id, None)
        order.filling_transaction_id = fill_id
        order.filled_time = self.account.now
        order.trade_opened_id = fill_id if opened else None
        order.trade_reduced_id = int(closing.reduced["tradeID"]) if closing.reduced else None
        order.trade_closed_ids = [int(c["tradeID"]) for c in closing.closed]

    def _reduce_trade(
        self, trade: Trade, amount: Decimal, price: int, realized: Decimal, fill_id: int
    ) -> None:
        side = "long" if trade.is_long else "short"
        self.account.position_pl.setdefault(trade.instrument, {"long": ZERO, "short": ZERO})
        self.account.position_pl[trade.instrument][side] += realized
        trade.realized_pl += realized
        trade.closed_units += amount
        trade.closed_units_price_sum += amount * price
        trade.closing_transaction_ids.append(fill_id)
        trade.current_units += -amount if trade.is_long else amount
        if trade.current_units == 0:
            trade.state = "CLOSED"
            self.account.open.pop(trade.id, None)
            trade.close_time = self.account.now
            for order_id in trade.dependent_ids():
                dependent = self.account.orders[order_id]
                if dependent.state == "PENDING":
                    self.account.cancel(dependent, "LINKED_TRADE_CLOSED", closed_trade_id=trade.id)

    # ===== dependent orders =====================================================================

    def _add_on_fill_dependents(self, order: Order, trade: Trade, fill_id: int) -> None:
        for dependent in DEPENDENTS:
            details = order.on_fill.get(dependent.on_fill)
            if details:
                self.add_dependent(dependent, trade, details, "ON_FILL", fill_id)

    def add_dependent(
        self,
        dependent: Dependent,
        trade: Trade,
        details: Body,
        reason: str,
        fill_id: int | None = None,
        replaces: Order | None = None,
    ) -> Body:
        """Give a trade a take-profit, stop-loss or trailing stop from its validated details."""
        order = self._dependent_order(dependent, trade, details, replaces)
        if replaces is not None:
            replaces.replaced_by_order_id = order.id
        transaction = self.account.transaction(
            f"{dependent.type}_ORDER",
            **wire.dependent_create_fields(order, trade, reason, fill_id, replaces),
        )
        self.account.add_order(order, pending=True)
        if order.client_extensions and order.client_extensions.get("id"):
            self.account.client_ids[order.client_extensions["id"]] = ("order", order.id)
        trade.set_dependent_id(dependent, order.id)
        return transaction

    def _dependent_order(
        self, dependent: Dependent, trade: Trade, details: Body, replaces: Order | None
    ) -> Order:
        instrument = INSTRUMENTS[trade.instrument]
        order = Order(
            id=self.account.next_id,
            type=dependent.type,
            create_time=self.account.now,
            instrument=trade.instrument,
            trade_id=trade.id,
            time_in_force=details.get("timeInForce", "GTC"),
            client_extensions=details.get("clientExtensions"),
            replaces_order_id=replaces.id if replaces else None,
        )
        if details.get("timeInForce") == "GTD" and details.get("gtdTime"):
            order.gtd_time = parse_time(details["gtdTime"])
        elif details.get("timeInForce") == "GFD":
            order.gtd_time = next_ny_close(self.account.now)
        if details.get("distance") is not None:
            order.distance = instrument.to_points(Decimal(str(details["distance"])))
        if dependent.type == "TRAILING_STOP_LOSS":
            quote = self.valuation.quote(trade.instrument)
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
        return order

    # ===== closing trades and positions at market ===============================================

    def close_trade(self, specifier: str, body: Body) -> Response:
        now = self.synced()
        trade = self.account.open_trade(specifier)
        if trade is None:
            return wire.not_found(self.account, "NO_SUCH_TRADE", "TRADE_DOESNT_EXIST")
        requested = str(body.get("units", "ALL")) if body else "ALL"
        self.account.begin(now)
        try:
            amount = trade_close_units(
                INSTRUMENTS[trade.instrument], requested, abs(trade.current_units)
            )
        except RejectError as error:
            reject = self._close_reject(
                trade.instrument,
                -trade.current_units,
                "TRADE_CLOSE",
                {"tradeClose": {"tradeID": str(trade.id), "units": requested}},
                error.reason,
            )
            return wire.rejected(self.account, {"orderRejectTransaction": reject}, error.reason)
        trade_close: Body = {"tradeID": str(trade.id), "units": requested}
        if trade.client_id:
            trade_close["clientTradeID"] = trade.client_id
        order, create = self._market_close_order(
            trade.instrument,
            -amount if trade.is_long else amount,
            "TRADE_CLOSE",
            {"tradeClose": trade_close},
        )
        response: Body = {"orderCreateTransaction": create}
        quote = self.valuation.quote(trade.instrument)
        self._close_at_market(order, [trade], quote, "MARKET_ORDER_TRADE_CLOSE", response, "order")
        return 200, self.account.finish(response)

    def close_position(self, name: str, body: Body) -> Response:
        now = self.synced()
        if name not in self.market.series:
            return 404, {"errorMessage": "Invalid value specified for 'instrument'"}
        if not body or ("longUnits" not in body and "shortUnits" not in body):
            return 400, wire.error("CLOSEOUT_POSITION_INCOMPLETE_SPECIFICATION")
        self.account.begin(now)
        response: Body = {}
        plans = self._closeout_plans(name, body, response)
        if "errorCode" in response:
            return 400, self.account.finish(response)
        quote = self.valuation.quote(name)
        for side, trades, amount, closeout in plans:
            order, create = self._market_close_order(
                name, -amount if side == "long" else amount, "POSITION_CLOSEOUT", closeout
            )
            extensions = body.get(f"{side}ClientExtensions")
            if isinstance(extensions, dict):
                order.client_extensions = extensions
            response[f"{side}OrderCreateTransaction"] = create
            self._close_at_market(
                order, trades, quote, "MARKET_ORDER_POSITION_CLOSEOUT", response, f"{side}Order"
            )
        return 200, self.account.finish(response)

    def _closeout_plans(
        self, name: str, body: Body, response: Body
    ) -> list[tuple[str, list[Trade], Decimal, Body]]:
        """Each side to close: its trades, the units and the closeout; rejects go to `response`."""
        plans: list[tuple[str, list[Trade], Decimal, Body]] = []
        for side in ("long", "short"):
            requested = str(body.get(f"{side}Units", "NONE"))
            if requested == "NONE":
                continue
            trades = sorted(self.account.side_trades(name, side == "long"), key=lambda t: t.id)
            held = sum((abs(t.current_units) for t in trades), ZERO)
            closeout = {f"{side}PositionCloseout": {"instrument": name, "units": requested}}
            try:
                amount = closeout_units(INSTRUMENTS[name], requested, held)
            except RejectError as error:
                response[f"{side}OrderRejectTransaction"] = self._close_reject(
                    name,
                    -held if side == "long" else held,
                    "POSITION_CLOSEOUT",
                    closeout,
                    error.reason,
                )
                response.update(wire.error(error.reason))
                continue
            plans.append((side, trades, amount, closeout))
        return plans

    def _close_reject(
        self, instrument: str, units: Decimal, reason: str, detail: Body, reject_reason: str
    ) -> Body:
        return self.account.transaction(
            "MARKET_ORDER_REJECT",
            instrument=instrument,
            units=format_units(units),
            timeInForce="FOK",
            positionFill="REDUCE_ONLY",
            reason=reason,
            **detail,
            rejectReason=reject_reason,
        )

    def _market_close_order(
        self, instrument: str, units: Decimal, reason: str, detail: Body
    ) -> tuple[Order, Body]:
        """Create the reduce-only market order that closes a trade or a position side."""
        order = Order(
            id=self.account.next_id,
            type="MARKET",
            create_time=self.account.now,
            instrument=instrument,
            units=units,
            time_in_force="FOK",
            position_fill="REDUCE_ONLY",
        )
        fields = wire.order_create_fields(order)
        fields.update(reason=reason, **detail)
        transaction = self.account.transaction("MARKET_ORDER", **fields)
        self.account.add_order(order, pending=False)
        return order, transaction

    def _close_at_market(
        self,
        order: Order,
        trades: list[Trade],
        quote: Quote,
        reason: str,
        response: Body,
        prefix: str,
    ) -> None:
        """Fill a closing market order at the closing side's price, unless the market is shut."""
        if not quote.tradeable:
            response[f"{prefix}CancelTransaction"] = self.account.cancel(order, "MARKET_HALTED")
            return
        response[f"{prefix}FillTransaction"] = self.fill(
            order=order,
            quote=quote,
            price=quote.bid if order.units < 0 else quote.ask,
            units_to_fill=order.units,
            close_trades=trades,
            open_remainder=False,
            reason=reason,
        )

    # ===== triggers =============================================================================

    def synced(self) -> float:
        """Bring the account up to the clock before a request; the moment it was brought to."""
        now = self.clock.now()
        self.sync(now)
        return now

    def sync(self, now: float | None = None) -> list[Body]:
        """Process the triggers, expiries, rollovers and margin closeouts up to `now`, in order."""
        account = self.account
        now = self.clock.now() if now is None else now
        produced: list[Body] = []
        if now < account.cursor:
            return produced
        for rollover in rollovers(account.cursor, now):
            produced.extend(self._triggers_until(rollover))
            produced.extend(self.financing.charge(rollover))
            produced.extend(self.margin_closeout(rollover))
        produced.extend(self._triggers_until(now))
        produced.extend(self.margin_closeout(now))
        # Reads that follow (account, positions, prices) are valued at this moment.
        account.now = now
        return produced

    def _triggers_until(self, end: float) -> list[Body]:
        """Process the triggers and expiries on the price path from the cursor to `end`."""
        account = self.account
        produced: list[Body] = []
        if not account.pending_instruments:
            account.cursor = account.now = end
            return produced
        while True:
            pending = account.pending_orders()
            if not pending:
                account.pending_instruments.clear()
                account.cursor = end
                break
            earliest: Trigger | None = None
            for order in pending:
                found = self._scan(order, account.cursor, end)
                if found is not None and (earliest is None or found.time < earliest.time):
                    earliest = found
            if earliest is None:
                self._commit_trailing(pending, end)
                account.cursor = end
                break
            self._commit_trailing([o for o in pending if o is not earliest.order], earliest.time)
            account.cursor = earliest.time
            account.begin(earliest.time)
            self._process(earliest)
            produced.extend(account.end())
            produced.extend(self.margin_closeout(earliest.time))
        account.now = end
        return produced

    def margin_closeout(self, when: float) -> list[Body]:
        """Close every open position at market when margin is exhausted; the batch written.

        As OANDA does: one reduce-only MARKET_ORDER per position side with reason MARGIN_CLOSEOUT
        and `marginCloseout.reason` MARGIN_CHECK_VIOLATION, filled with reason
        MARKET_ORDER_MARGIN_CLOSEOUT. The check runs at every moment the account is brought up to
        (each request, each server tick, each trigger and rollover), not continuously along the
        price path, so a closeout fills at the price of that moment. A position whose market is
        closed stays open until its market reopens and the check runs again.
        """
        account = self.account
        account.now = when
        if not self.valuation.margin_closeout_due():
            return []
        account.begin(when)
        for name in sorted({t.instrument for t in account.open.values()}):
            quote = self.valuation.quote(name)
            if not quote.tradeable:
                continue
            for long in (True, False):
                trades = sorted(account.side_trades(name, long), key=lambda t: t.id)
                held = sum((abs(t.current_units) for t in trades), ZERO)
                if not held:
                    continue
                order, _ = self._market_close_order(
                    name,
                    -held if long else held,
                    "MARGIN_CLOSEOUT",
                    {"marginCloseout": {"reason": "MARGIN_CHECK_VIOLATION"}},
                )
                self._close_at_market(
                    order, trades, quote, "MARKET_ORDER_MARGIN_CLOSEOUT", {}, "order"
                )
        return account.end()

    def _thresholds(self, order: Order) -> tuple[str, int, bool] | None:
        """Which side (bid or ask) an order watches, its level, and whether it fires at or above."""
        if order.is_dependent:
            trade = self.account.trades.get(order.trade_id or 0)
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
                _, value = self._scan_path(order, self.account.cursor, until)
                order.trailing_stop_value = value

    def _process(self, trigger: Trigger) -> None:
        order = trigger.order
        if trigger.fill_price is None:
            self.account.cancel(order, "TIME_IN_FORCE_EXPIRED")
            return
        quote = self.valuation.quote(order.instrument)
        if not order.is_dependent:
            self.execute(order, quote, trigger.fill_price, fill_reason(order))
            return
        trade = self.account.trades[order.trade_id or 0]
        self.fill(
            order=order,
            quote=quote,
            price=trigger.fill_price,
            units_to_fill=-trade.current_units,
            close_trades=[trade],
            open_remainder=False,
            reason=fill_reason(order),
        )
