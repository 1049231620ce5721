"""Template filters of the operator console. Numbers are written by ``septrader.formatting``, which
the admin pages of the apps below the console use too: one way to write each kind of number."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django import template

from septrader import formatting

register = template.Library()


@register.filter
def age(seconds: float | None) -> str:
    """Seconds as the largest whole unit that reads naturally: 42 s, 7 min, 3 h, 2 d."""
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@register.filter
def utc_and_local(moment: datetime | None, zone: str) -> str:
    """``2025-07-25 21:00Z (17:00 EDT)``: UTC, then the operator's wall clock."""
    if moment is None:
        return "-"
    local = moment.astimezone(ZoneInfo(zone))
    return f"{moment:%Y-%m-%d %H:%M}Z ({local:%a %H:%M %Z})"


@register.filter
def signed(value: Decimal | float | None) -> str:
    """Money with its sign, two decimals: +12.50, -3.10."""
    return formatting.signed_money(value)


@register.filter
def money(value: Decimal | float | None, currency: str = "") -> str:
    """Money with two decimals, in ``currency`` when given: ``{{ s.nav|money:s.currency }}``."""
    return formatting.money(value, currency)


@register.filter
def price(value: Decimal | float | None, precision: int = 5) -> str:
    """A price to the pair's display precision:
    ``{{ t.open_price|price:t.pair.display_precision }}``."""
    return formatting.price(value, precision)


@register.filter
def significant(value: Decimal | float | None, digits: int = formatting.SIGNIFICANT_DIGITS) -> str:
    """A confidence or a metric to four significant digits (or ``digits``): 0.6657."""
    return formatting.significant(value, int(digits))


@register.filter
def pl_class(value: Decimal | float | None) -> str:
    if value is None or value == 0:
        return ""
    return "gain" if value > 0 else "loss"
