"""Field lists from the research notes (docs/oanda-v20 section 2), one small schema per object.

A schema maps a field to its JSON type: `str` for OANDA's string-encoded numbers, ids and times,
`int` for counts, `bool` for flags, `list`/`dict` for nested values. Fields ending in `?` are
optional; every other field must be present, and every present field must have the right type.
"""

from __future__ import annotations

import re
from typing import Any

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")

Schema = dict[str, type]

ACCOUNT_SUMMARY: Schema = {
    "id": str, "alias": str, "currency": str, "balance": str, "createdByUserID": int,
    "createdTime": str, "guaranteedStopLossOrderMode": str, "pl": str, "resettablePL": str,
    "resettablePLTime": str, "financing": str, "commission": str, "guaranteedExecutionFees": str,
    "marginRate": str, "openTradeCount": int, "openPositionCount": int,
    "pendingOrderCount": int, "hedgingEnabled": bool, "lastOrderFillTimestamp?": str,
    "unrealizedPL": str, "NAV": str, "marginUsed": str, "marginAvailable": str,
    "positionValue": str, "marginCloseoutUnrealizedPL": str, "marginCloseoutNAV": str,
    "marginCloseoutMarginUsed": str, "marginCloseoutPercent": str,
    "marginCloseoutPositionValue": str, "withdrawalLimit": str, "marginCallMarginUsed": str,
    "marginCallPercent": str, "lastTransactionID": str,
}  # fmt: skip
ACCOUNT: Schema = {**ACCOUNT_SUMMARY, "trades": list, "positions": list, "orders": list}
INSTRUMENT: Schema = {
    "name": str, "type": str, "displayName": str, "pipLocation": int, "displayPrecision": int,
    "tradeUnitsPrecision": int, "minimumTradeSize": str, "maximumTrailingStopDistance": str,
    "minimumTrailingStopDistance": str, "maximumPositionSize": str, "maximumOrderUnits": str,
    "marginRate": str,
}  # fmt: skip
CANDLE: Schema = {"complete": bool, "volume": int, "time": str, "mid?": dict, "bid?": dict,
                  "ask?": dict}  # fmt: skip
OHLC: Schema = {"o": str, "h": str, "l": str, "c": str}
PRICE: Schema = {
    "type": str, "instrument": str, "time": str, "status": str, "tradeable": bool, "bids": list,
    "asks": list, "closeoutBid": str, "closeoutAsk": str,
    "quoteHomeConversionFactors?": dict,
}  # fmt: skip
PRICE_BUCKET: Schema = {"price": str, "liquidity": int}
HEARTBEAT: Schema = {"type": str, "time": str}
TRANSACTION_HEARTBEAT: Schema = {"type": str, "time": str, "lastTransactionID": str}
TRANSACTION_BASE: Schema = {
    "id": str, "time": str, "userID": int, "accountID": str, "batchID": str, "type": str,
    "requestID?": str,
}  # fmt: skip
MARKET_ORDER_TRANSACTION: Schema = {
    **TRANSACTION_BASE, "instrument": str, "units": str, "timeInForce": str,
    "positionFill": str, "reason": str, "priceBound?": str, "clientExtensions?": dict,
    "takeProfitOnFill?": dict, "stopLossOnFill?": dict, "trailingStopLossOnFill?": dict,
    "tradeClientExtensions?": dict, "tradeClose?": dict, "longPositionCloseout?": dict,
    "shortPositionCloseout?": dict, "marginCloseout?": dict,
}  # fmt: skip
ENTRY_ORDER_TRANSACTION: Schema = {
    **TRANSACTION_BASE, "instrument": str, "units": str, "price": str, "timeInForce": str,
    "positionFill": str, "triggerCondition": str, "reason": str, "gtdTime?": str,
    "partialFill?": str, "replacesOrderID?": str, "clientExtensions?": dict,
    "takeProfitOnFill?": dict, "stopLossOnFill?": dict, "trailingStopLossOnFill?": dict,
}  # fmt: skip
ORDER_FILL: Schema = {
    **TRANSACTION_BASE, "orderID": str, "clientOrderID?": str, "instrument": str, "units": str,
    "price": str, "fullVWAP": str, "fullPrice": dict, "reason": str, "pl": str,
    "financing": str, "commission": str, "guaranteedExecutionFee": str, "accountBalance": str,
    "halfSpreadCost": str, "gainQuoteHomeConversionFactor": str,
    "lossQuoteHomeConversionFactor": str, "tradeOpened?": dict, "tradeReduced?": dict,
    "tradesClosed?": list,
}  # fmt: skip
TRADE_OPEN: Schema = {"tradeID": str, "units": str, "price": str, "halfSpreadCost": str,
                      "initialMarginRequired": str, "clientExtensions?": dict}  # fmt: skip
TRADE_REDUCE: Schema = {"tradeID": str, "units": str, "price": str, "realizedPL": str,
                        "financing": str, "halfSpreadCost": str}  # fmt: skip
ORDER_CANCEL: Schema = {**TRANSACTION_BASE, "orderID": str, "clientOrderID?": str, "reason": str,
                        "replacedByOrderID?": str, "closedTradeID?": str}  # fmt: skip
DEPENDENT_ORDER_TRANSACTION: Schema = {
    **TRANSACTION_BASE, "tradeID": str, "timeInForce": str, "triggerCondition": str,
    "reason": str, "price?": str, "distance?": str, "orderFillTransactionID?": str,
    "replacesOrderID?": str, "clientTradeID?": str,
}  # fmt: skip
REJECT_TRANSACTION: Schema = {**TRANSACTION_BASE, "rejectReason": str, "reason?": str}
ORDER: Schema = {
    "id": str, "createTime": str, "state": str, "type": str, "clientExtensions?": dict,
    "instrument?": str, "units?": str, "price?": str, "timeInForce": str, "positionFill?": str,
    "triggerCondition?": str, "tradeID?": str, "distance?": str, "trailingStopValue?": str,
    "fillingTransactionID?": str, "filledTime?": str, "tradeOpenedID?": str,
    "tradeReducedID?": str, "tradeClosedIDs?": list, "cancellingTransactionID?": str,
    "cancelledTime?": str, "replacesOrderID?": str, "replacedByOrderID?": str,
    "takeProfitOnFill?": dict, "stopLossOnFill?": dict, "trailingStopLossOnFill?": dict,
}  # fmt: skip
TRADE: Schema = {
    "id": str, "instrument": str, "price": str, "openTime": str, "state": str,
    "initialUnits": str, "initialMarginRequired": str, "currentUnits": str, "realizedPL": str,
    "unrealizedPL": str, "marginUsed": str, "financing": str, "averageClosePrice?": str,
    "closingTransactionIDs?": list, "closeTime?": str, "clientExtensions?": dict,
    "takeProfitOrder?": dict, "stopLossOrder?": dict, "trailingStopLossOrder?": dict,
}  # fmt: skip
TRADE_SUMMARY: Schema = {
    **{k: v for k, v in TRADE.items() if not k.endswith("Order?")},
    "takeProfitOrderID?": str, "stopLossOrderID?": str, "trailingStopLossOrderID?": str,
}  # fmt: skip
POSITION: Schema = {
    "instrument": str, "pl": str, "unrealizedPL": str, "marginUsed": str, "resettablePL": str,
    "financing": str, "commission": str, "long": dict, "short": dict,
}  # fmt: skip
POSITION_SIDE: Schema = {"units": str, "averagePrice?": str, "tradeIDs?": list, "pl": str,
                         "unrealizedPL": str, "resettablePL": str, "financing": str}  # fmt: skip

TRANSACTION_SCHEMAS: dict[str, Schema] = {
    "MARKET_ORDER": MARKET_ORDER_TRANSACTION,
    "LIMIT_ORDER": ENTRY_ORDER_TRANSACTION,
    "STOP_ORDER": ENTRY_ORDER_TRANSACTION,
    "ORDER_FILL": ORDER_FILL,
    "ORDER_CANCEL": ORDER_CANCEL,
    "TAKE_PROFIT_ORDER": DEPENDENT_ORDER_TRANSACTION,
    "STOP_LOSS_ORDER": DEPENDENT_ORDER_TRANSACTION,
    "TRAILING_STOP_LOSS_ORDER": DEPENDENT_ORDER_TRANSACTION,
    "MARKET_ORDER_REJECT": REJECT_TRANSACTION,
    "LIMIT_ORDER_REJECT": REJECT_TRANSACTION,
    "STOP_ORDER_REJECT": REJECT_TRANSACTION,
    "ORDER_CANCEL_REJECT": REJECT_TRANSACTION,
    "CREATE": TRANSACTION_BASE,
    "TRANSFER_FUNDS": {**TRANSACTION_BASE, "amount": str, "accountBalance": str},
    "DAILY_FINANCING": {
        **TRANSACTION_BASE, "financing": str, "accountBalance": str,
        "accountFinancingMode": str, "positionFinancings": list,
    },
}  # fmt: skip
MONEY_KEYS = {"balance", "pl", "unrealizedPL", "NAV", "marginUsed", "realizedPL", "units",
              "price", "accountBalance", "halfSpreadCost", "financing"}  # fmt: skip


def check(obj: Any, schema: Schema, where: str = "object") -> None:
    """Assert that `obj` has every required field of `schema` with the right JSON type."""
    assert isinstance(obj, dict), f"{where} is not an object: {obj!r}"
    known = set()
    for key, kind in schema.items():
        optional = key.endswith("?")
        name = key.rstrip("?")
        known.add(name)
        if name not in obj:
            assert optional, f"{where} lacks {name}: {sorted(obj)}"
            continue
        value = obj[name]
        assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), (
            f"{where}.{name} should be {kind.__name__}, got {value!r}"
        )
        # OANDA sends resettablePLTime "0" until the P&L is first reset.
        is_time = name.endswith("Time") and name != "resettablePLTime"
        if kind is str and (is_time or name in ("time", "timestamp")):
            assert TIME.match(str(value)), f"{where}.{name} is not an RFC3339 time: {value!r}"
        if kind is str and name in MONEY_KEYS:
            assert NUMBER.match(str(value)), f"{where}.{name} is not a decimal string: {value!r}"


def check_transaction(transaction: dict[str, Any]) -> None:
    schema = TRANSACTION_SCHEMAS.get(transaction["type"], TRANSACTION_BASE)
    check(transaction, schema, f"{transaction['type']} transaction")
    if transaction["type"] == "ORDER_FILL":
        if "tradeOpened" in transaction:
            check(transaction["tradeOpened"], TRADE_OPEN, "tradeOpened")
        for closed in transaction.get("tradesClosed", []):
            check(closed, TRADE_REDUCE, "tradesClosed[]")
        if "tradeReduced" in transaction:
            check(transaction["tradeReduced"], TRADE_REDUCE, "tradeReduced")


def check_price(price: dict[str, Any]) -> None:
    check(price, PRICE, "price")
    for bucket in price["bids"] + price["asks"]:
        check(bucket, PRICE_BUCKET, "price bucket")


def check_candle(candle: dict[str, Any]) -> None:
    check(candle, CANDLE, "candle")
    for key in ("mid", "bid", "ask"):
        if key in candle:
            check(candle[key], OHLC, f"candle.{key}")


def check_position(position: dict[str, Any]) -> None:
    check(position, POSITION, "position")
    check(position["long"], POSITION_SIDE, "position.long")
    check(position["short"], POSITION_SIDE, "position.short")


def check_trade(trade: dict[str, Any]) -> None:
    check(trade, TRADE, "trade")
    for key in ("takeProfitOrder", "stopLossOrder", "trailingStopLossOrder"):
        if key in trade:
            check(trade[key], ORDER, f"trade.{key}")
