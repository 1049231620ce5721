"""OANDA's daily financing, the project's one implementation (pure: no Django, no ORM).

A position open at the 17:00 New York rollover pays or receives interest on its value
(research/oanda-v20.md section 4, from OANDA's financing pages):

    financing = |units| x price x conversion to the account currency x annual rate / 365 x days

* the rate is the instrument's ``financing.longRate`` for a long and ``shortRate`` for a short,
  signed as OANDA publishes them: negative is paid by the holder, positive received;
* ``days`` is ``financing.financingDaysOfWeek[].daysCharged`` of the rollover's New York weekday:
  1 on Monday, Tuesday, Thursday and Friday, 3 on Wednesday (FX settles two days later, so
  Wednesday's roll carries the position over the weekend), 0 on Saturday and Sunday;
* the amount is posted per trade, rounded to 4 decimals as every OANDA money amount.

The simulator (``oandasim.financing``) is the broker and keeps its own copy, because it may import
nothing of the project; ``tests/qfh/test_financing.py`` holds both to the same worked examples.
The evaluation charges the same amount in pips (``financing_pips``) per trade held over rollovers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

DAYS_PER_YEAR = 365
MONEY = Decimal("0.0001")
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# OANDA's financingDaysOfWeek for FX, Monday first.
DAYS_CHARGED_BY_WEEKDAY: tuple[int, ...] = (1, 1, 3, 1, 1, 0, 0)
# 1 January 1970, epoch day 0, was a Thursday (weekday 3 counting Monday as 0).
EPOCH_WEEKDAY = 3


@dataclass(frozen=True)
class FinancingRates:
    """An instrument's annual rates and the days each rollover charges, as OANDA lists them."""

    long_rate: float = 0.0
    short_rate: float = 0.0
    days_by_weekday: tuple[int, ...] = DAYS_CHARGED_BY_WEEKDAY

    def __post_init__(self) -> None:
        for name in ("long_rate", "short_rate"):
            value = getattr(self, name)
            if not np.isfinite(value) or abs(value) >= 1:
                raise ValueError(
                    f"{name}={value!r} is invalid; expected an annual rate as a fraction, "
                    "between -1 and 1 (OANDA's -0.0300 is -3% a year)"
                )
        days = self.days_by_weekday
        if len(days) != 7 or any(not isinstance(d, int) or not 0 <= d <= 7 for d in days):
            raise ValueError(
                f"days_by_weekday={days!r} is invalid; expected 7 whole days (Monday first) "
                "between 0 and 7"
            )

    @classmethod
    def from_oanda(cls, financing: Mapping[str, Any]) -> FinancingRates:
        """From an instrument's ``financing`` object as OANDA's AccountInstruments returns it."""
        listed = {
            str(item["dayOfWeek"]): int(item["daysCharged"])
            for item in financing.get("financingDaysOfWeek") or []
        }
        days = tuple(listed.get(day, 0) for day in WEEKDAYS) if listed else DAYS_CHARGED_BY_WEEKDAY
        return cls(
            long_rate=float(financing.get("longRate", 0)),
            short_rate=float(financing.get("shortRate", 0)),
            days_by_weekday=days,
        )

    def rate(self, *, long: bool) -> float:
        return self.long_rate if long else self.short_rate

    def cost_fields(self) -> dict[str, Any]:
        """These rates as ``outcomes.Costs`` fields (``Costs(**rates.cost_fields())``)."""
        return {
            "financing_long_rate": self.long_rate,
            "financing_short_rate": self.short_rate,
            "financing_days_by_weekday": self.days_by_weekday,
        }


def financing_rates(text: str) -> FinancingRates:
    """``LONG:SHORT`` annual rates as OANDA publishes them (``-0.0300:0.0100``), validated."""
    long_rate, separator, short_rate = text.partition(":")
    try:
        if not separator:
            raise ValueError(text)
        long_value, short_value = float(long_rate), float(short_rate)
    except ValueError:
        raise ValueError(
            f"{text!r} is invalid; expected LONG:SHORT annual rates, e.g. -0.0300:0.0100"
        ) from None
    return FinancingRates(long_rate=long_value, short_rate=short_value)


def financing_costs(text: str | None) -> dict[str, Any]:
    """The ``Costs`` rate fields of a ``--financing LONG:SHORT`` option; none when it is not
    given. The days charged by weekday stay the instrument's (``Costs`` default: FX's).

    Raises ``ValueError`` naming the option and what was expected.
    """
    if not text:
        return {}
    try:
        rates = financing_rates(text)
    except ValueError as error:
        raise ValueError(f"--financing: {error}") from None
    return {"financing_long_rate": rates.long_rate, "financing_short_rate": rates.short_rate}


def financing_amount(
    *, units: Decimal, price: Decimal, conversion: Decimal, rate: Decimal, days: int
) -> Decimal:
    """One trade's charge at a rollover in the account currency, signed, to 4 decimals.

    ``price`` is the instrument's (mid) price in its quote currency and ``conversion`` turns the
    quote currency into the account currency (1 for EUR_USD in a USD account, 1/price for
    USD_JPY, where the value is then the units themselves).
    """
    value = abs(units) * price * conversion
    return (value * rate * days / DAYS_PER_YEAR).quantize(MONEY)


def days_charged(
    entry_day: np.ndarray, exit_day: np.ndarray, days_by_weekday: Sequence[int]
) -> np.ndarray:
    """Days charged by the rollovers a position crosses, from its entry to its exit trading day.

    Trading days are counted as ``outcomes.trading_day`` counts them (17:00 New York to 17:00,
    numbered by the epoch day on which they end), so the rollovers crossed fall on the New York
    calendar days ``entry_day + 1 .. exit_day``.
    """
    table = np.array([days_by_weekday[(day + EPOCH_WEEKDAY) % 7] for day in range(7)])
    prefix = np.concatenate([[0], np.cumsum(table)])
    week = int(prefix[-1])

    def charged_before(day: np.ndarray) -> np.ndarray:
        """Days charged by the rollovers on epoch days 0 .. day - 1 (negative before day 0)."""
        day = np.asarray(day, dtype=np.int64)
        result: np.ndarray = (day // 7) * week + prefix[day % 7]
        return result

    return charged_before(np.asarray(exit_day) + 1) - charged_before(np.asarray(entry_day) + 1)


def financing_pips(
    price: np.ndarray | float, rate: float, days: np.ndarray | float, pip: float
) -> np.ndarray:
    """The financing of ``days`` at ``rate`` in pips of the quote currency (received: positive).

    Per unit the charge is price x rate x days / 365 in the quote currency; a pip per unit is
    ``pip`` of it, so converting pips to money (``outcomes.pips_to_account``) gives back
    ``financing_amount`` for the same price.
    """
    result: np.ndarray = np.asarray(price, dtype=np.float64) * rate * days / DAYS_PER_YEAR / pip
    return result
