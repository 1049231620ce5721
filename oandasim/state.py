"""The account's book: balance, orders, trades, the transaction log and its ids, persistence.

One counter numbers orders, trades and transactions, as on OANDA: an order's id is its creating
transaction's id, a trade's id is its opening fill's id. Transactions are written in batches that
share a batchID and a time; listeners hear each one when its batch ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from oandasim.models import DEPENDENTS, ZERO, Body, Order, Trade, money
from oandasim.timeutil import format_time

USER_ID = 1000001


def transaction_ids(batch: Iterable[Body]) -> list[str]:
    return [transaction["id"] for transaction in batch]


class Account:
    def __init__(
        self,
        *,
        account_id: str,
        currency: str,
        balance: Decimal,
        margin_rate: Decimal,
        created_time: float,
    ) -> None:
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
        self.open: dict[int, Trade] = {}
        self.pending: dict[int, Order] = {}
        self.pending_instruments: set[str] = set()
        self.client_ids: dict[str, tuple[str, int]] = {}
        self.position_pl: dict[str, dict[str, Decimal]] = {}
        # Daily financing charged or paid over the account's life, and per position side.
        self.financing = ZERO
        self.position_financing: dict[str, dict[str, Decimal]] = {}
        self.created_time = created_time
        # How far along the price path triggers have been processed.
        self.cursor = created_time
        self.last_fill_time: float | None = None
        self.listeners: list[Callable[[Body], None]] = []
        self.dirty = False
        self.batch: list[Body] | None = None
        # The moment transactions are stamped with and reads are valued at.
        self.now = created_time
        self._fund(balance)

    def _fund(self, balance: Decimal) -> None:
        self.begin(self.created_time)
        self.transaction(
            "CREATE",
            divisionID=1,
            siteID=101,
            accountUserID=USER_ID,
            accountNumber=1,
            homeCurrency=self.currency,
        )
        self.balance = balance
        self.transaction(
            "TRANSFER_FUNDS",
            amount=money(balance),
            fundingReason="CLIENT_FUNDING",
            accountBalance=money(balance),
        )
        self.end()

    # ===== the transaction log ==================================================================

    @property
    def last_transaction_id(self) -> str:
        return str(len(self.transactions))

    @property
    def next_id(self) -> int:
        """The id the next transaction (and the order or trade it makes) will get."""
        return len(self.transactions) + 1

    def begin(self, when: float) -> None:
        self.batch = []
        self.now = when

    def end(self) -> list[Body]:
        batch = self.batch or []
        self.batch = None
        if batch:
            self.dirty = True
            for transaction in batch:
                for listener in list(self.listeners):
                    listener(transaction)
        return batch

    def finish(self, response: Body, batch: list[Body] | None = None) -> Body:
        """End the batch (unless given one already ended) and name it in the response."""
        if batch is None:
            batch = self.end()
        response["relatedTransactionIDs"] = transaction_ids(batch)
        response["lastTransactionID"] = self.last_transaction_id
        return response

    def transaction(self, kind: str, **fields: Any) -> Body:
        assert self.batch is not None
        transaction_id = self.next_id
        batch_id = self.batch[0]["id"] if self.batch else str(transaction_id)
        transaction: Body = {
            "id": str(transaction_id),
            "time": format_time(self.now),
            "userID": USER_ID,
            "accountID": self.account_id,
            "batchID": batch_id,
            "type": kind,
        }
        transaction.update({key: value for key, value in fields.items() if value is not None})
        self.transactions.append(transaction)
        self.batch.append(transaction)
        return transaction

    # ===== orders and trades ====================================================================

    def open_trades(self) -> list[Trade]:
        return list(self.open.values())

    def pending_orders(self) -> list[Order]:
        return list(self.pending.values())

    def side_trades(self, instrument: str, long: bool) -> list[Trade]:
        """The open trades on one side of an instrument's position, in the order they opened."""
        return [t for t in self.open.values() if t.instrument == instrument and t.is_long == long]

    def find_order(self, specifier: str) -> Order | None:
        return self.orders.get(self._find(specifier, "order"))

    def find_trade(self, specifier: str) -> Trade | None:
        return self.trades.get(self._find(specifier, "trade"))

    def _find(self, specifier: str, kind: str) -> int:
        """The id an order or trade specifier names: a number, or @ and a client id (0: none)."""
        if specifier.startswith("@"):
            found_kind, found = self.client_ids.get(specifier[1:], ("", 0))
            return found if found_kind == kind else 0
        return int(specifier) if specifier.isdigit() else 0

    def pending_order(self, specifier: str) -> Order | None:
        order = self.find_order(specifier)
        return order if order is not None and order.state == "PENDING" else None

    def open_trade(self, specifier: str) -> Trade | None:
        trade = self.find_trade(specifier)
        return trade if trade is not None and trade.state == "OPEN" else None

    def add_order(self, order: Order, *, pending: bool) -> None:
        self.orders[order.id] = order
        if pending:
            self.pending[order.id] = order
            self.pending_instruments.add(order.instrument)

    def add_trade(self, trade: Trade) -> None:
        self.trades[trade.id] = trade
        self.open[trade.id] = trade
        if trade.client_id:
            self.client_ids[trade.client_id] = ("trade", trade.id)

    def cancel(self, order: Order, reason: str, closed_trade_id: int | None = None) -> Body:
        transaction = self.transaction(
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
        self.pending.pop(order.id, None)
        order.cancelling_transaction_id = int(transaction["id"])
        order.cancelled_time = self.now
        if order.is_dependent and order.trade_id in self.trades:
            trade = self.trades[order.trade_id]
            for dependent in DEPENDENTS:
                if trade.dependent_id(dependent) == order.id:
                    trade.set_dependent_id(dependent, None)
        return transaction

    def cancel_replaced(self, order: Order) -> Body:
        """Cancel an order that the next transaction after the cancel replaces."""
        order.replaced_by_order_id = self.next_id + 1
        return self.cancel(order, "CLIENT_REQUEST_REPLACED")

    # ===== persistence ==========================================================================

    def to_state(self, clock: float) -> Body:
        return {
            "account_id": self.account_id,
            "currency": self.currency,
            "margin_rate": str(self.margin_rate),
            "balance": str(self.balance),
            "pl": str(self.pl),
            "created_time": self.created_time,
            "cursor": self.cursor,
            "clock": clock,
            "last_fill_time": self.last_fill_time,
            "transactions": self.transactions,
            "orders": [o.to_state() for o in self.orders.values()],
            "trades": [t.to_state() for t in self.trades.values()],
            "client_ids": {k: list(v) for k, v in self.client_ids.items()},
            "position_pl": {
                name: {side: str(v) for side, v in sides.items()}
                for name, sides in self.position_pl.items()
            },
            "financing": str(self.financing),
            "position_financing": {
                name: {side: str(v) for side, v in sides.items()}
                for name, sides in self.position_financing.items()
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
        # State saved before financing was charged has none.
        self.financing = Decimal(data.get("financing", "0"))
        self.position_financing = {
            name: {side: Decimal(v) for side, v in sides.items()}
            for name, sides in data.get("position_financing", {}).items()
        }
        self.open = {t.id: t for t in self.trades.values() if t.state == "OPEN"}
        self.pending = {o.id: o for o in self.orders.values() if o.state == "PENDING"}
        self.pending_instruments = {o.instrument for o in self.pending_orders()}
