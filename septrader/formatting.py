"""Numbers as an operator reads them: confidences and metrics to 4 significant digits, prices to
the pair's display precision, money to 2 decimals in the account currency.

A confidence written as ``0.6656631189195747`` or a P&L as ``-12.3456`` (the ledger's four places)
is noise on a phone screen. Pure: no Django imports, so every layer can use it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

SIGNIFICANT_DIGITS = 4
MONEY_PLACES = Decimal("0.01")
MISSING = "-"


def _decimal(value: Decimal | float | int | str) -> Decimal | None:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def significant(value: Decimal | float | int | str | None, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``value`` to ``digits`` significant digits, without exponent or trailing zeros:
    0.6656631189195747 -> 0.6657, 12345.678 -> 12350, 0.000123456 -> 0.0001235."""
    if value is None:
        return MISSING
    number = _decimal(value)
    if number is None:
        return str(value)
    if number.is_zero():
        return "0"
    rounded = Decimal(f"{number:.{digits}g}")
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def price(value: Decimal | float | str | None, precision: int) -> str:
    """A price to the pair's display precision (EUR_USD 5 places, USD_JPY 3)."""
    if value is None:
        return MISSING
    number = _decimal(value)
    if number is None:
        return str(value)
    return format(number.quantize(Decimal(1).scaleb(-precision), ROUND_HALF_EVEN), "f")


def money(
    value: Decimal | float | int | str | None, currency: str = "", *, signed: bool = False
) -> str:
    """An amount to 2 decimals with thousands separators and the currency: ``1,234.56 USD``;
    ``signed`` writes a plus on gains, as P&L is read."""
    if value is None:
        return MISSING
    number = _decimal(value)
    if number is None:
        return str(value)
    number = number.quantize(MONEY_PLACES, ROUND_HALF_EVEN)
    text = f"{number:+,.2f}" if signed else f"{number:,.2f}"
    if text in ("+0.00", "-0.00"):
        text = "0.00"
    return f"{text} {currency}".rstrip()
