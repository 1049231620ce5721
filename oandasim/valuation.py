"""What the account's positions are worth: quotes, conversion to the home currency, margin, P&L."""

from __future__ import annotations

from decimal import Decimal

from oandasim.instruments import INSTRUMENTS, Instrument
from oandasim.market import Market, Quote
from oandasim.models import ZERO, Trade
from oandasim.state import Account

# The currencies a cross is converted through when no pair joins it to the home currency.
VIA_CURRENCIES = ("USD", "EUR", "GBP", "JPY")


class Valuation:
    def __init__(self, market: Market, account: Account) -> None:
        self.market = market
        self.account = account

    def quote(self, name: str, when: float | None = None) -> Quote:
        return self.market.quote(name, self.account.now if when is None else when)

    def conversion(self, currency: str, when: float | None = None) -> tuple[Decimal, Decimal]:
        """The (gain, loss) factors that turn an amount of `currency` into the home currency.

        Each is the less favourable side: for USD_JPY in a USD account a JPY gain is worth
        1/ask dollars and a JPY loss costs 1/bid dollars. Crosses go through one other currency.
        """
        return self._factors(currency, self.account.currency, when, depth=2)

    def _factors(
        self, source: str, target: str, when: float | None, depth: int
    ) -> tuple[Decimal, Decimal]:
        if source == target:
            return Decimal(1), Decimal(1)
        direct = f"{target}_{source}"
        if direct in self.market.series:
            quote = self.quote(direct, when)
            instrument = quote.instrument
            return (
                Decimal(1) / instrument.to_decimal(quote.ask),
                Decimal(1) / instrument.to_decimal(quote.bid),
            )
        inverse = f"{source}_{target}"
        if inverse in self.market.series:
            quote = self.quote(inverse, when)
            instrument = quote.instrument
            return instrument.to_decimal(quote.bid), instrument.to_decimal(quote.ask)
        if depth > 1:
            for via in VIA_CURRENCIES:
                if via in (source, target):
                    continue
                try:
                    first = self._factors(source, via, when, depth - 1)
                    second = self._factors(via, target, when, depth - 1)
                except LookupError:
                    continue
                return first[0] * second[0], first[1] * second[1]
        raise LookupError(f"no conversion from {source} to {target}")

    def mid_rate(self, currency: str) -> Decimal:
        gain, loss = self.conversion(currency)
        return (gain + loss) / 2

    def home(self, amount: Decimal, currency: str) -> Decimal:
        gain, loss = self.conversion(currency)
        return amount * (gain if amount >= 0 else loss)

    def position_value(self, instrument: Instrument, units: Decimal) -> Decimal:
        return abs(units) * self.mid_rate(instrument.base)

    def margin_rate(self, instrument: Instrument) -> Decimal:
        return max(self.account.margin_rate, instrument.margin_rate)

    def margin_required(self, instrument: Instrument, units: Decimal) -> Decimal:
        return self.position_value(instrument, units) * self.margin_rate(instrument)

    def unrealized(self, trade: Trade) -> Decimal:
        quote = self.quote(trade.instrument)
        instrument = quote.instrument
        close = quote.bid if trade.is_long else quote.ask
        amount = instrument.to_decimal(close - trade.price) * trade.current_units
        return self.home(amount, instrument.quote)

    def trade_margin(self, trade: Trade) -> Decimal:
        return self.margin_required(INSTRUMENTS[trade.instrument], trade.current_units)

    def nav_and_margin_used(self) -> tuple[Decimal, Decimal]:
        """The account's NAV and margin used, computed without building the whole summary."""
        unrealized = ZERO
        margin_used = ZERO
        for trade in self.account.open.values():
            unrealized += self.unrealized(trade)
            margin_used += self.trade_margin(trade)
        return self.account.balance + unrealized, margin_used

    def available_margin(self) -> Decimal:
        """NAV minus margin used."""
        nav, margin_used = self.nav_and_margin_used()
        return nav - margin_used

    def margin_closeout_due(self) -> bool:
        """Whether the margin closeout percent has reached 1: NAV at or below half margin used.

        OANDA's `marginCloseoutPercent` is margin closeout margin used / margin closeout NAV / 2
        and the account is closed out at 1 or more (research/oanda-v20.md section 2.2, checked
        against OANDA's examples); a NAV at or below zero with trades open is past it too.
        """
        if not self.account.open:
            return False
        nav, margin_used = self.nav_and_margin_used()
        return margin_used > 0 and nav * 2 <= margin_used
