"""Numbers read from outside input: prices, units and numeric settings, in ASCII digits only.

Python's ``Decimal()`` (and DRF's and Django's decimal fields, which call it) reads the digits of
every script: ``Decimal("\u0661.\u0661")`` (Arabic-Indic digits) and ``Decimal("\uff11.\uff11")``
(full-width digits) are both 1.1. A price that reads one way in a request and another in the audit
log, the broker's records or an operator's head is a trap, so every place that parses a price, an
amount or a numeric setting from a request, a file or the console reads it with
``parse_decimal``, which accepts 0-9 only. Pure: no Django imports.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

# The words callers' error messages use: "expected {ASCII_NUMBER}".
ASCII_DIGITS = "written with the ASCII digits 0-9"
ASCII_NUMBER = f"a number {ASCII_DIGITS}"


class NonAsciiNumberError(InvalidOperation):
    """Text holding characters other than ASCII (digits of another script, say).

    An ``InvalidOperation``, as ``Decimal()`` raises for any text it cannot read, so callers that
    already refuse such text keep their ``except InvalidOperation`` and their messages.
    """

    def __init__(self, value: str) -> None:
        shown = value if len(value) <= 40 else value[:40] + "..."
        super().__init__(f"{shown!r} is not valid; expected {ASCII_NUMBER}.")
        self.value = value


def parse_decimal(value: Any) -> Decimal:
    """``value`` as a Decimal: a Decimal, an int, a float (by its shortest repr, so 1.1705 stays
    1.1705) or text in ASCII; anything else raises ``InvalidOperation``.

    Text that ``Decimal()`` reads ("NaN", "1e3", " 2 ") reads the same here, so callers still
    check the result is finite and in range; only text with non-ASCII characters is refused
    (``NonAsciiNumberError``).
    """
    kind = type(value)
    # Exact types first: candle validation calls this for every price of a batch.
    if kind is Decimal:
        return value
    if kind is str:
        if not value.isascii():
            raise NonAsciiNumberError(value)
        return Decimal(value)
    if isinstance(value, bool):
        raise InvalidOperation(f"{value!r} is not a number.")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        return parse_decimal(str(value))
    raise InvalidOperation(f"{value!r} is not a number.")
