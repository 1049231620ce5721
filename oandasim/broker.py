"""The simulated OANDA account: orders, trades, positions, transactions, margin and P&L.

Every public method takes the already-parsed request and returns `(status, body)` with the body
shaped exactly as OANDA's. The broker runs on the server's single event-loop thread, so it needs
no locks. `Broker` is the face the server sees; the work is done by its parts:

- `state.Account`: the book (balance, orders, trades, client ids), the transaction log, persistence
- `valuation.Valuation`: quotes, conversion to the home currency, margin and unrealized P&L
- `wire`: the OANDA v20 JSON shapes and error bodies
- `fills.Fills`: market and triggered fills, the trigger scan, closing trades and positions,
  margin closeout
- `financing.Financing`: the DAILY_FINANCING charged at the 17:00 New York rollover
- `orders.OrderDesk`: creating, cancelling and replacing orders, and validating them
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from oandasim import wire
from oandasim.clock import SimClock
from oandasim.fills import Fills, Trigger
from oandasim.financing import Financing
from oandasim.instruments import INSTRUMENTS, FinancingRates
from oandasim.market import Market, Quote
from oandasim.models import Body, Order, Trade
from oandasim.orders import OrderDesk
from oandasim.state import USER_ID, Account
from oandasim.valuation import Valuation
from oandasim.wire import REJECT_MESSAGES, AccountWire, RejectError, Response

__all__ = [
    "REJECT_MESSAGES",
    "USER_ID",
    "Body",
    "Broker",
    "RejectError",
    "Response",
    "Trigger",
]


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
        financing: Mapping[str, FinancingRates] | None = None,
    ) -> None:
        self.market = market
        self.clock = clock
        self.account = Account(
            account_id=account_id,
            currency=currency,
            balance=balance,
            margin_rate=margin_rate,
            created_time=clock.now(),
        )
        self.valuation = Valuation(market, self.account)
        self.wire = AccountWire(self.account, self.valuation)
        self.financing = Financing(self.account, self.valuation, financing)
        self.fills = Fills(self.account, self.valuation, market, clock, self.financing)
        self.desk = OrderDesk(self.account, self.valuation, self.fills, market)

    # ===== the account's state, as the server reads it ==========================================

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def created_time(self) -> float:
        return self.account.created_time

    @property
    def balance(self) -> Decimal:
        return self.account.balance

    @property
    def transactions(self) -> list[Body]:
        return self.account.transactions

    @property
    def orders(self) -> dict[int, Order]:
        return self.account.orders

    @property
    def trades(self) -> dict[int, Trade]:
        return self.account.trades

    @property
    def listeners(self) -> list[Callable[[Body], None]]:
        return self.account.listeners

    @property
    def dirty(self) -> bool:
        """Whether transactions were written since the state was last saved."""
        return self.account.dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self.account.dirty = value

    @property
    def last_transaction_id(self) -> str:
        return self.account.last_transaction_id

    def open_trades(self) -> list[Trade]:
        return self.account.open_trades()

    def pending_orders(self) -> list[Order]:
        return self.account.pending_orders()

    def find_order(self, specifier: str) -> Order | None:
        return self.account.find_order(specifier)

    def find_trade(self, specifier: str) -> Trade | None:
        return self.account.find_trade(specifier)

    # ===== prices and conversion ================================================================

    def quote(self, name: str, when: float | None = None) -> Quote:
        return self.valuation.quote(name, when)

    def conversion(self, currency: str, when: float | None = None) -> tuple[Decimal, Decimal]:
        return self.valuation.conversion(currency, when)

    def available_margin(self) -> Decimal:
        return self.valuation.available_margin()

    # ===== shapes ===============================================================================

    def account_summary(self) -> Body:
        return self.wire.summary()

    def account_details(self) -> Body:
        return self.wire.details()

    def order_wire(self, order: Order) -> Body:
        return self.wire.order(order)

    def trade_summary(self, trade: Trade) -> Body:
        return self.wire.trade_summary(trade)

    def trade_wire(self, trade: Trade) -> Body:
        return self.wire.trade(trade)

    def positions(self, *, open_only: bool) -> list[Body]:
        return self.wire.positions(open_only=open_only)

    def position(self, name: str) -> Body:
        return self.wire.position(name)

    def instrument_wire(self, name: str) -> Body:
        """The instrument as AccountInstruments lists it, with this account's financing rates."""
        return INSTRUMENTS[name].to_wire(self.financing.rates_for(name))

    def listed_instruments(self) -> list[str]:
        """The names AccountInstruments lists: the priced ones, then the others it knows."""
        priced = list(self.market.series)
        return priced + [name for name in INSTRUMENTS if name not in self.market.series]

    def price_wire(self, name: str, when: float) -> Body:
        return wire.price(self.market, name, when)

    # ===== requests that write ==================================================================

    def sync(self, now: float | None = None) -> list[Body]:
        """Process every trigger, expiry, rollover and closeout up to `now`, in time order."""
        return self.fills.sync(now)

    def create_order(self, body: Body, replaces: Order | None = None) -> Response:
        return self.desk.create_order(body, replaces)

    def cancel_order(self, specifier: str) -> Response:
        return self.desk.cancel_order(specifier)

    def replace_order(self, specifier: str, body: Body) -> Response:
        return self.desk.replace_order(specifier, body)

    def set_dependent_orders(self, specifier: str, body: Body) -> Response:
        return self.desk.set_dependent_orders(specifier, body)

    def close_trade(self, specifier: str, body: Body) -> Response:
        return self.fills.close_trade(specifier, body)

    def close_position(self, name: str, body: Body) -> Response:
        return self.fills.close_position(name, body)

    # ===== persistence ==========================================================================

    def to_state(self) -> Body:
        return self.account.to_state(self.clock.now())

    def load_state(self, data: Body) -> None:
        self.account.load_state(data)
