"""The instruments the simulator offers and their static properties.

Prices are held internally as integers counted in the instrument's smallest increment (a pipette:
0.00001 for EUR_USD, 0.001 for USD_JPY), so comparisons and path interpolation are exact and fast.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal

# The days of interest each 17:00 New York rollover charges, by the New York weekday it falls on,
# as OANDA's instruments list them in `financing.financingDaysOfWeek`. Wednesday's charges three:
# FX settles two days after the trade, so the position rolled on Wednesday settles over the weekend
# (research/oanda-v20.md section 4). The week adds up to seven days.
FINANCING_DAYS_OF_WEEK: dict[str, int] = {
    "MONDAY": 1,
    "TUESDAY": 1,
    "WEDNESDAY": 3,
    "THURSDAY": 1,
    "FRIDAY": 1,
    "SATURDAY": 0,
    "SUNDAY": 0,
}
# Crypto CFDs trade every day and are charged at every day's rollover, weekends included, one day
# each (OANDA's financing pages: crypto financing = size x rate x 1/365, "with the exception of
# cryptoassets" no fees on Saturdays and Sundays).
CRYPTO_FINANCING_DAYS_OF_WEEK: dict[str, int] = {
    "MONDAY": 1,
    "TUESDAY": 1,
    "WEDNESDAY": 1,
    "THURSDAY": 1,
    "FRIDAY": 1,
    "SATURDAY": 1,
    "SUNDAY": 1,
}
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


@dataclass(frozen=True)
class FinancingRates:
    """An instrument's annual financing rates, signed as OANDA publishes them.

    A negative rate is paid by the holder, a positive one received: `longRate` "-0.0300" costs a
    long 3% a year of its value. OANDA's rates already include its admin charge.
    """

    long_rate: Decimal = Decimal(0)
    short_rate: Decimal = Decimal(0)

    def rate(self, *, long: bool) -> Decimal:
        return self.long_rate if long else self.short_rate

    def to_wire(self, days: dict[str, int] = FINANCING_DAYS_OF_WEEK) -> dict[str, object]:
        return {
            "longRate": str(self.long_rate),
            "shortRate": str(self.short_rate),
            "financingDaysOfWeek": [
                {"dayOfWeek": day, "daysCharged": days[day]} for day in WEEKDAYS
            ],
        }


NO_FINANCING = FinancingRates()

# OANDA's published maximum for a single order on the major pairs: the default of
# `Instrument.maximum_order_units`, which orders are checked against (UNITS_LIMIT_EXCEEDED).
MAXIMUM_ORDER_UNITS = 100_000_000


@dataclass(frozen=True)
class Instrument:
    """A currency pair as OANDA describes it in AccountInstruments."""

    name: str
    pip_location: int
    display_precision: int
    base_price: Decimal
    default_spread_pips: Decimal
    margin_rate: Decimal = Decimal("0.02")
    # OANDA's InstrumentType: CURRENCY, METAL or CFD.
    type: str = "CURRENCY"
    trade_units_precision: int = 0
    minimum_trade_size: Decimal = Decimal(1)
    maximum_order_units: Decimal = Decimal(MAXIMUM_ORDER_UNITS)
    display_name: str = ""
    # Which trading hours apply (oandasim.timeutil.SCHEDULES): FX, METAL or CRYPTO.
    schedule: str = "FX"

    @property
    def base(self) -> str:
        return self.name.split("_")[0]

    @property
    def quote(self) -> str:
        return self.name.split("_")[1]

    @property
    def scale(self) -> int:
        """How many internal price points make one unit of the quote currency."""
        return 10**self.display_precision

    @property
    def points_per_pip(self) -> int:
        return 10 ** (self.display_precision + self.pip_location)

    def to_points(self, price: Decimal) -> int:
        return int((price * self.scale).to_integral_value())

    def to_decimal(self, points: int) -> Decimal:
        return _points_to_decimal(points, self.display_precision)

    def format(self, points: int) -> str:
        return format_points(points, self.display_precision)

    @property
    def financing_days(self) -> dict[str, int]:
        """The days each weekday's rollover charges: every day one for crypto, else FX's."""
        if self.schedule == "CRYPTO":
            return CRYPTO_FINANCING_DAYS_OF_WEEK
        return FINANCING_DAYS_OF_WEEK

    def trailing_bounds(self) -> tuple[Decimal, Decimal]:
        """The minimum (5 pips) and maximum (10,000 pips) trailing stop distances."""
        pip = Decimal(1).scaleb(self.pip_location)
        return (pip * 5).quantize(Decimal(1).scaleb(-self.display_precision)), (
            pip * 10000
        ).quantize(Decimal(1).scaleb(-self.display_precision))

    def to_wire(self, financing: FinancingRates = NO_FINANCING) -> dict[str, object]:
        minimum_trailing, maximum_trailing = self.trailing_bounds()
        return {
            "name": self.name,
            "type": self.type,
            "displayName": self.display_name or f"{self.base}/{self.quote}",
            "pipLocation": self.pip_location,
            "displayPrecision": self.display_precision,
            "tradeUnitsPrecision": self.trade_units_precision,
            "minimumTradeSize": str(self.minimum_trade_size),
            "maximumTrailingStopDistance": str(maximum_trailing),
            "minimumTrailingStopDistance": str(minimum_trailing),
            "maximumPositionSize": "0",
            "maximumOrderUnits": str(self.maximum_order_units),
            "marginRate": str(self.margin_rate),
            "guaranteedStopLossOrderMode": "DISABLED",
            "tags": [{"type": "ASSET_CLASS", "name": self.type}],
            "financing": financing.to_wire(self.financing_days),
        }


@functools.lru_cache(maxsize=65536)
def _points_to_decimal(points: int, precision: int) -> Decimal:
    return Decimal(points).scaleb(-precision)


@functools.lru_cache(maxsize=65536)
# Prices repeat: a year of one pair's candles uses a few thousand distinct levels.
@functools.lru_cache(maxsize=65536)
def format_points(points: int, precision: int) -> str:
    return str(Decimal(points).scaleb(-precision))


def _pair(name: str, base_price: str, spread_pips: str) -> Instrument:
    is_yen = name.endswith("_JPY")
    return Instrument(
        name=name,
        pip_location=-2 if is_yen else -4,
        display_precision=3 if is_yen else 5,
        base_price=Decimal(base_price),
        default_spread_pips=Decimal(spread_pips),
    )


# Base prices seed the synthetic walks; spreads are typical OANDA practice-account spreads in pips.
FX_INSTRUMENTS: dict[str, Instrument] = {
    instrument.name: instrument
    for instrument in (
        _pair("EUR_USD", "1.10000", "1.4"),
        _pair("GBP_USD", "1.27000", "2.0"),
        _pair("USD_JPY", "150.000", "1.4"),
        _pair("EUR_GBP", "0.86000", "1.6"),
        _pair("AUD_USD", "0.66000", "1.4"),
        _pair("USD_CHF", "0.88000", "1.8"),
        _pair("USD_CAD", "1.36000", "2.2"),
        _pair("EUR_JPY", "162.000", "1.9"),
        _pair("NZD_USD", "0.60000", "1.8"),
        _pair("GBP_JPY", "190.000", "2.8"),
        _pair("EUR_CHF", "0.95000", "2.0"),
        _pair("AUD_JPY", "99.000", "2.0"),
        # The rest of the 28 pairs of the eight majors, so a full system can be load-tested.
        _pair("EUR_AUD", "1.66000", "2.4"),
        _pair("EUR_NZD", "1.82000", "3.2"),
        _pair("EUR_CAD", "1.48000", "2.6"),
        _pair("GBP_AUD", "1.93000", "3.0"),
        _pair("GBP_NZD", "2.11000", "4.0"),
        _pair("GBP_CAD", "1.72000", "3.2"),
        _pair("GBP_CHF", "1.11000", "3.0"),
        _pair("AUD_NZD", "1.09000", "2.8"),
        _pair("AUD_CAD", "0.89000", "2.4"),
        _pair("AUD_CHF", "0.58000", "2.4"),
        _pair("NZD_CAD", "0.81000", "3.0"),
        _pair("NZD_CHF", "0.53000", "3.0"),
        _pair("NZD_JPY", "90.000", "2.8"),
        _pair("CAD_CHF", "0.65000", "2.6"),
        _pair("CAD_JPY", "110.000", "2.4"),
        _pair("CHF_JPY", "170.000", "2.8"),
    )
}


# The metals and the crypto CFDs, priced by synthetic walks like the FX pairs without data, each on
# its own hours: metals on the FX week with a daily 17:00-18:00 New York break, crypto every day of
# the week. The figures are OANDA's for these instruments: gold quoted to the cent with its pip at
# 0.01, silver to 0.00001 with its pip at 0.0001, both 1 unit (one troy ounce) at the least and a
# 5% margin (20:1); the crypto CFDs in fractions of a coin (two decimal places), a pip of 1 dollar
# (BTC) or 10 cents (ETH) and a 50% margin (2:1, the retail limit for crypto CFDs). Orders, trade
# closes and position closeouts take units to `trade_units_precision` decimals (oandasim.units).
METALS_AND_CRYPTO: dict[str, Instrument] = {
    instrument.name: instrument
    for instrument in (
        Instrument(
            name="XAU_USD",
            type="METAL",
            display_name="Gold",
            pip_location=-2,
            display_precision=3,
            base_price=Decimal("2400.000"),
            default_spread_pips=Decimal("35"),
            margin_rate=Decimal("0.05"),
            schedule="METAL",
            maximum_order_units=Decimal(100_000),
        ),
        Instrument(
            name="XAG_USD",
            type="METAL",
            display_name="Silver",
            pip_location=-4,
            display_precision=5,
            base_price=Decimal("30.00000"),
            default_spread_pips=Decimal("25"),
            margin_rate=Decimal("0.05"),
            schedule="METAL",
            maximum_order_units=Decimal(5_000_000),
        ),
        Instrument(
            name="BTC_USD",
            type="CFD",
            display_name="Bitcoin",
            pip_location=0,
            display_precision=1,
            base_price=Decimal("60000.0"),
            default_spread_pips=Decimal("50"),
            margin_rate=Decimal("0.5"),
            trade_units_precision=2,
            schedule="CRYPTO",
            minimum_trade_size=Decimal("0.01"),
            maximum_order_units=Decimal(20),
        ),
        Instrument(
            name="ETH_USD",
            type="CFD",
            display_name="Ether",
            pip_location=-1,
            display_precision=2,
            base_price=Decimal("3000.00"),
            default_spread_pips=Decimal("30"),
            margin_rate=Decimal("0.5"),
            trade_units_precision=2,
            schedule="CRYPTO",
            minimum_trade_size=Decimal("0.01"),
            maximum_order_units=Decimal(400),
        ),
    )
}

# Every instrument the simulator prices: the FX pairs first, then the metals and crypto CFDs.
INSTRUMENTS: dict[str, Instrument] = {**FX_INSTRUMENTS, **METALS_AND_CRYPTO}
