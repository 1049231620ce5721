"""Orders and trades as the broker keeps them, with their OANDA wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from oandasim.instruments import INSTRUMENTS
from oandasim.timeutil import format_time
from oandasim.units import format_units

Body = dict[str, Any]
ZERO = Decimal("0")
MONEY = Decimal("0.0001")


@dataclass(frozen=True)
class Dependent:
    """A kind of order whose life depends on a trade, created on fill or through TradeCRCDO."""

    key: str  # the Trade attribute that holds its id: take_profit -> take_profit_order_id
    prefix: str  # its name in requests and responses: takeProfit -> takeProfitOnFill
    type: str  # the order type: TAKE_PROFIT

    @property
    def on_fill(self) -> str:
        return f"{self.prefix}OnFill"


DEPENDENTS = (
    Dependent("take_profit", "takeProfit", "TAKE_PROFIT"),
    Dependent("stop_loss", "stopLoss", "STOP_LOSS"),
    Dependent("trailing_stop_loss", "trailingStopLoss", "TRAILING_STOP_LOSS"),
)
DEPENDENT_BY_TYPE = {dependent.type: dependent for dependent in DEPENDENTS}
DEPENDENT_TYPES = tuple(DEPENDENT_BY_TYPE)


def money(value: Decimal) -> str:
    return str(value.quantize(MONEY))


@dataclass
class Order:
    id: int
    type: str
    create_time: float
    instrument: str
    # Signed, at the instrument's units precision (oandasim.units); 0 for dependent orders.
    units: Decimal = ZERO
    price: int | None = None
    price_bound: int | None = None
    distance: int | None = None
    trade_id: int | None = None
    time_in_force: str = "GTC"
    gtd_time: float | None = None
    position_fill: str = "DEFAULT"
    state: str = "PENDING"
    client_extensions: dict[str, str] | None = None
    trade_client_extensions: dict[str, str] | None = None
    on_fill: dict[str, Any] = field(default_factory=dict)
    replaces_order_id: int | None = None
    replaced_by_order_id: int | None = None
    trailing_stop_value: int | None = None
    filling_transaction_id: int | None = None
    filled_time: float | None = None
    trade_opened_id: int | None = None
    trade_reduced_id: int | None = None
    trade_closed_ids: list[int] = field(default_factory=list)
    cancelling_transaction_id: int | None = None
    cancelled_time: float | None = None

    @property
    def is_dependent(self) -> bool:
        return self.type in DEPENDENT_TYPES

    def to_wire(self, client_trade_id: str | None = None) -> dict[str, Any]:
        instrument = INSTRUMENTS[self.instrument]
        wire: dict[str, Any] = {
            "id": str(self.id),
            "createTime": format_time(self.create_time),
            "type": self.type,
        }
        if self.is_dependent:
            wire["tradeID"] = str(self.trade_id)
            if client_trade_id:
                wire["clientTradeID"] = client_trade_id
            if self.type == "TRAILING_STOP_LOSS":
                assert self.distance is not None and self.trailing_stop_value is not None
                wire["distance"] = instrument.format(self.distance)
                wire["trailingStopValue"] = instrument.format(self.trailing_stop_value)
            else:
                assert self.price is not None
                wire["price"] = instrument.format(self.price)
                if self.distance is not None:
                    wire["distance"] = instrument.format(self.distance)
        else:
            wire["instrument"] = self.instrument
            wire["units"] = format_units(self.units)
            if self.price is not None:
                wire["price"] = instrument.format(self.price)
            wire["positionFill"] = self.position_fill
            if self.type != "MARKET":
                wire["partialFill"] = "DEFAULT_FILL"
            wire.update(self.on_fill)
            if self.trade_client_extensions:
                wire["tradeClientExtensions"] = self.trade_client_extensions
        if self.price_bound is not None:
            wire["priceBound"] = instrument.format(self.price_bound)
        wire["timeInForce"] = self.time_in_force
        if self.gtd_time is not None and self.time_in_force == "GTD":
            wire["gtdTime"] = format_time(self.gtd_time)
        if self.type != "MARKET":
            wire["triggerCondition"] = "DEFAULT"
        wire["state"] = self.state
        if self.client_extensions:
            wire["clientExtensions"] = self.client_extensions
        if self.replaces_order_id is not None:
            wire["replacesOrderID"] = str(self.replaces_order_id)
        if self.replaced_by_order_id is not None:
            wire["replacedByOrderID"] = str(self.replaced_by_order_id)
        if self.filling_transaction_id is not None:
            assert self.filled_time is not None
            wire["fillingTransactionID"] = str(self.filling_transaction_id)
            wire["filledTime"] = format_time(self.filled_time)
            if self.trade_opened_id is not None:
                wire["tradeOpenedID"] = str(self.trade_opened_id)
            if self.trade_reduced_id is not None:
                wire["tradeReducedID"] = str(self.trade_reduced_id)
            if self.trade_closed_ids:
                wire["tradeClosedIDs"] = [str(i) for i in self.trade_closed_ids]
        if self.cancelling_transaction_id is not None:
            assert self.cancelled_time is not None
            wire["cancellingTransactionID"] = str(self.cancelling_transaction_id)
            wire["cancelledTime"] = format_time(self.cancelled_time)
        return wire

    def to_state(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["units"] = str(self.units)
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Order:
        data = dict(data)
        # State saved before units were decimals holds them as JSON integers.
        data["units"] = Decimal(str(data["units"]))
        return cls(**data)


# The Trade fields that count units, persisted as decimal strings.
UNIT_FIELDS = ("initial_units", "current_units", "closed_units", "closed_units_price_sum")


@dataclass
class Trade:
    id: int
    instrument: str
    price: int
    open_time: float
    # Signed units at the instrument's precision (oandasim.units): 1.66 BTC_USD, -2500 EUR_USD.
    initial_units: Decimal
    current_units: Decimal
    initial_margin_required: Decimal
    realized_pl: Decimal = ZERO
    # The daily financing charged (negative) or paid (positive) while the trade was open.
    financing: Decimal = ZERO
    state: str = "OPEN"
    close_time: float | None = None
    closing_transaction_ids: list[int] = field(default_factory=list)
    # Sum of units x price points over the closed parts, for the average close price.
    closed_units_price_sum: Decimal = ZERO
    closed_units: Decimal = ZERO
    client_extensions: dict[str, str] | None = None
    take_profit_order_id: int | None = None
    stop_loss_order_id: int | None = None
    trailing_stop_loss_order_id: int | None = None

    @property
    def is_long(self) -> bool:
        return self.initial_units > 0

    @property
    def client_id(self) -> str | None:
        return (self.client_extensions or {}).get("id")

    def dependent_id(self, dependent: Dependent) -> int | None:
        order_id: int | None = getattr(self, f"{dependent.key}_order_id")
        return order_id

    def set_dependent_id(self, dependent: Dependent, order_id: int | None) -> None:
        setattr(self, f"{dependent.key}_order_id", order_id)

    def dependent_ids(self) -> list[int]:
        return [
            order_id
            for order_id in (self.dependent_id(dependent) for dependent in DEPENDENTS)
            if order_id is not None
        ]

    def summary(self, unrealized_pl: Decimal, margin_used: Decimal) -> dict[str, Any]:
        """The TradeSummary shape, which names dependent orders by id."""
        instrument = INSTRUMENTS[self.instrument]
        wire: dict[str, Any] = {
            "id": str(self.id),
            "instrument": self.instrument,
            "price": instrument.format(self.price),
            "openTime": format_time(self.open_time),
            "state": self.state,
            "initialUnits": format_units(self.initial_units),
            "initialMarginRequired": money(self.initial_margin_required),
            "currentUnits": format_units(self.current_units),
            "realizedPL": money(self.realized_pl),
            "unrealizedPL": money(unrealized_pl),
            "marginUsed": money(margin_used),
            "financing": money(self.financing),
            "dividendAdjustment": "0.0000",
        }
        if self.closed_units:
            average = self.closed_units_price_sum / self.closed_units
            wire["averageClosePrice"] = str(
                (average / instrument.scale).quantize(
                    Decimal(1).scaleb(-instrument.display_precision)
                )
            )
        if self.closing_transaction_ids:
            wire["closingTransactionIDs"] = [str(i) for i in self.closing_transaction_ids]
        if self.close_time is not None:
            wire["closeTime"] = format_time(self.close_time)
        if self.client_extensions:
            wire["clientExtensions"] = self.client_extensions
        return wire

    def to_state(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["initial_margin_required"] = str(self.initial_margin_required)
        data["realized_pl"] = str(self.realized_pl)
        data["financing"] = str(self.financing)
        for key in UNIT_FIELDS:
            data[key] = str(data[key])
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Trade:
        data = dict(data)
        data["initial_margin_required"] = Decimal(data["initial_margin_required"])
        data["realized_pl"] = Decimal(data["realized_pl"])
        # State saved before financing was charged has none.
        data["financing"] = Decimal(data.get("financing", "0"))
        # State saved before units were decimals holds them as JSON integers.
        for key in UNIT_FIELDS:
            data[key] = Decimal(str(data[key]))
        return cls(**data)
