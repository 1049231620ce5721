"""Units as the simulator keeps them: exact decimals, as fine as each instrument allows.

OANDA trades whole units of the FX pairs and metals (`tradeUnitsPrecision` 0) and hundredths of a
coin of the crypto CFDs (2), so units are `Decimal`s held at their instrument's precision: sums,
P&L, margin and financing over them stay exact. On the wire they are OANDA's DecimalNumber
strings without an exponent or trailing zeros: "100", "-2500" and "0" for FX as before, "1.66"
and "1.1" for BTC_USD.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from oandasim.instruments import Instrument


def decimal_places(value: Decimal) -> int:
    """How many decimals a finite value needs: trailing zeros do not count ("1.660" needs 2).

    Read off the digits rather than computed with `quantize` or `%`, which depend on the decimal
    context and fail on values like "1E+999999" that a client may send.
    """
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int), "decimal_places takes finite values"
    if not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def units_step(instrument: Instrument) -> Decimal:
    """The smallest step of the instrument's units: 1 for FX and metals, 0.01 for crypto."""
    return Decimal(1).scaleb(-instrument.trade_units_precision)


def at_precision(instrument: Instrument, units: Decimal) -> Decimal:
    """Units that fit the instrument's precision, written with exactly that many decimals.

    Callers check `fits_precision` first and bound the magnitude, so nothing is rounded here.
    """
    return units.quantize(units_step(instrument))


def fits_precision(instrument: Instrument, units: Decimal) -> bool:
    return decimal_places(units) <= instrument.trade_units_precision


def parse_decimal(value: Any) -> Decimal | None:
    """A finite decimal from a request's units (a string or a JSON number), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def format_units(units: Decimal) -> str:
    """Units as OANDA writes them: "100", "-2500", "0", "1.66" (no exponent, no trailing zeros)."""
    if not units:
        return "0"
    text = format(units, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
