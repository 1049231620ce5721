"""How the console writes numbers: one function per kind, used by the console's template filters
(``console/templatetags/console.py``) and by the admin pages of the apps below it. Pure: no
Django imports.

* A confidence or a metric: four significant digits (``0.6657``, ``12.35``, ``1235``), enough to
  compare two values without reading noise.
* A price: the pair's display precision as the broker gives it (``Pair.display_precision``: 5
  for EUR/USD, 3 for USD/JPY).
* Money: two decimals with thousands separators, in the account currency (``100,012.50 USD``).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

MISSING = "-"
SIGNIFICANT_DIGITS = 4


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _rounded(number: Decimal, places: int) -> Decimal:
    """``number`` rounded half up (as people round, not to even) to ``places`` decimals."""
    return number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _fixed(number: Decimal, places: int, grouped: bool = False, sign: str = "") -> str:
    rounded = _rounded(number, places)
    # A value that rounds to zero reads 0.00 (or +0.00), never -0.00.
    if rounded.is_zero():
        rounded = abs(rounded)
    return f"{rounded:{sign}{',' if grouped else ''}.{places}f}"


def significant(value: Any, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, never in exponent notation: 0.6656631 reads
    0.6657, 12.3456 reads 12.35, 123456.7 reads 123457 (whole numbers keep every digit)."""
    number = _decimal(value)
    if number is None:
        return MISSING if value is None or value == "" else str(value)
    if number == 0:
        return "0"
    exponent = math.floor(math.log10(abs(number)))
    places = max(0, digits - 1 - exponent)
    # Rounding can carry into the next power of ten (9.99996 to 10.000): one place fewer then.
    if places and abs(_rounded(number, places)) >= Decimal(10) ** (exponent + 1):
        places -= 1
    return _fixed(number, places)


def price(value: Any, precision: int = 5) -> str:
    """A price to the pair's display precision: 1.17 at precision 5 reads 1.17000."""
    number = _decimal(value)
    if number is None:
        return MISSING
    return _fixed(number, int(precision))


def money(value: Any, currency: str = "", *, signed: bool = False) -> str:
    """An amount with two decimals and thousands separators, then its currency if given;
    ``signed`` writes the sign of a P&L (+12.50, -3.10; zero reads +0.00)."""
    number = _decimal(value)
    if number is None:
        return MISSING
    text = _fixed(number, 2, grouped=True, sign="+" if signed else "")
    return f"{text} {currency}" if currency else text


def signed_money(value: Any) -> str:
    """A P&L: money with its sign, +12.50 or -3.10 (zero reads +0.00)."""
    return money(value, signed=True)
