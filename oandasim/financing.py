"""Daily financing at the 17:00 New York rollover, as OANDA charges it.

Every trade open at a rollover is charged (or paid) interest on its value in the home currency
(research/oanda-v20.md section 4, from OANDA's financing pages):

    financing = |units| x price in the home currency x annual rate / 365 x days charged

signed by the rate (OANDA publishes a long and a short rate per instrument; a negative rate is
paid by the holder), rounded to the cent's hundredth as every OANDA money amount. The price is the
mid price at the rollover and the conversion the mid of the home-currency factors, which is what
`Valuation.position_value` computes: for USD_JPY in a USD account the value is the units
themselves. `days charged` comes from `financingDaysOfWeek` for the rollover's New York weekday:
three on Wednesday, one on the other weekdays, none at the weekend; a crypto CFD, which trades
every day, one at every rollover, weekends included.

The charges are posted as one `DAILY_FINANCING` transaction per rollover (accountFinancingMode
DAILY, as the research notes record; OANDA's spec sets `openTradeFinancings[].financingRate` only
in the *_INSTRUMENT modes, so it is left out) with the position and per-trade amounts, added to
the balance and to the account's, the positions' and the trades' `financing`. A rollover at which
every amount is zero (the default: rates are 0 unless configured) posts nothing, so an account
without rates sees no transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

from oandasim.instruments import (
    FINANCING_DAYS_OF_WEEK,
    INSTRUMENTS,
    NO_FINANCING,
    WEEKDAYS,
    FinancingRates,
)
from oandasim.models import MONEY, ZERO, Body, money
from oandasim.state import Account
from oandasim.timeutil import NEW_YORK
from oandasim.valuation import Valuation

ROLLOVER_HOUR = 17
DAYS_PER_YEAR = Decimal(365)


def rollovers(start: float, end: float) -> list[float]:
    """The 17:00 New York rollovers in (start, end], in order (right across DST changes)."""
    local = datetime.fromtimestamp(start, NEW_YORK)
    day = local.date() if local.hour < ROLLOVER_HOUR else local.date() + timedelta(days=1)
    moments: list[float] = []
    while True:
        moment = datetime(day.year, day.month, day.day, ROLLOVER_HOUR, tzinfo=NEW_YORK).timestamp()
        if moment > end:
            return moments
        if moment > start:
            moments.append(moment)
        day += timedelta(days=1)


def days_charged(rollover: float, days: Mapping[str, int] = FINANCING_DAYS_OF_WEEK) -> int:
    """How many days of interest the rollover at this moment charges, by the instrument's
    ``financingDaysOfWeek`` (``Instrument.financing_days``; FX's by default)."""
    weekday = datetime.fromtimestamp(rollover, NEW_YORK).weekday()
    return days[WEEKDAYS[weekday]]


def financing_amount(value: Decimal, rate: Decimal, days: int) -> Decimal:
    """One trade's charge: its home-currency value x annual rate / 365 x days, to 4 decimals."""
    return (value * rate * days / DAYS_PER_YEAR).quantize(MONEY)


class Financing:
    def __init__(
        self,
        account: Account,
        valuation: Valuation,
        rates: Mapping[str, FinancingRates] | None = None,
    ) -> None:
        self.account = account
        self.valuation = valuation
        self.rates = dict(rates or {})

    def rates_for(self, name: str) -> FinancingRates:
        return self.rates.get(name, NO_FINANCING)

    def charge(self, rollover: float) -> list[Body]:
        """Post the rollover's DAILY_FINANCING for the trades open at it; the batch written."""
        account = self.account
        # The trades open at the rollover that it charges, with the days of their instrument.
        charged = [
            (t, days)
            for t in account.open.values()
            if t.open_time < rollover
            and (days := days_charged(rollover, INSTRUMENTS[t.instrument].financing_days))
        ]
        if not charged:
            return []
        account.begin(rollover)
        per_instrument: dict[str, list[tuple[int, Decimal]]] = {}
        for trade, days in sorted(charged, key=lambda item: item[0].id):
            rate = self.rates_for(trade.instrument).rate(long=trade.is_long)
            instrument = INSTRUMENTS[trade.instrument]
            value = self.valuation.position_value(instrument, trade.current_units)
            amount = financing_amount(value, rate, days)
            per_instrument.setdefault(trade.instrument, []).append((trade.id, amount))
        total = sum((amount for items in per_instrument.values() for _, amount in items), ZERO)
        if all(amount == 0 for items in per_instrument.values() for _, amount in items):
            account.end()
            return []
        positions: list[Body] = []
        for name, items in per_instrument.items():
            sides = account.position_financing.setdefault(name, {"long": ZERO, "short": ZERO})
            for trade_id, amount in items:
                trade = account.trades[trade_id]
                trade.financing += amount
                sides["long" if trade.is_long else "short"] += amount
            positions.append(
                {
                    "instrument": name,
                    "financing": money(sum((amount for _, amount in items), ZERO)),
                    "openTradeFinancings": [
                        {"tradeID": str(trade_id), "financing": money(amount)}
                        for trade_id, amount in items
                    ],
                }
            )
        account.balance += total
        account.financing += total
        account.transaction(
            "DAILY_FINANCING",
            financing=money(total),
            accountBalance=money(account.balance),
            accountFinancingMode="DAILY",
            positionFinancings=positions,
        )
        return account.end()
