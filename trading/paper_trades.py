"""Paper orders and trades: recorded like the broker's, held and closed here only.

A pair on paper (``Pair.State.PAPER``) goes through the whole entry path of ``trading.execution``
(claim, entry lock, the broker's price and account, every risk rule, sizing, the last check),
and then, instead of sending the order, ``paper_entry_fill`` records it filled at the live bid/ask
it was judged on: an ``Order`` and a ``Trade`` marked ``paper``, with the client id
``paper-<signal>`` and the trade id ``paper-<order id>`` (never an id of the broker's). Nothing of
it reaches OANDA, and what comes from OANDA never touches it: the ledger, reconciliation and the
late-fill closes read only trades with ``paper=False``.

The stops of open paper trades are followed on the broker's bid/ask M1 candles
(``paper_pair_follow``: once a minute from beat, and for the pair just before each of its paper
entries), with the path and fills of ``trading/paper.py``. Operator closes (a trade, a pair's
flatten, the kill switch, the weekend flatten) close paper trades here at the current bid/ask.
Every change of a paper trade locks its row, so two followers, or a follower and an operator,
close it once.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from marketdata import oanda
from marketdata.broker_time import parse_broker_time
from marketdata.models import Pair
from qfh.evaluation.financing import FinancingRates
from trading import paper, risk
from trading.ledger import TRADE_SUFFIX
from trading.models import Order, Trade, TradingSignal

logger = logging.getLogger(__name__)

# OANDA serves at most 5000 candles a request; a trade followed after a longer pause catches up
# over several pages.
CANDLES_PER_PAGE = 5000
MAX_PAGES = 10


def paper_client_id(signal_id: object) -> str:
    """The client id of a signal's paper order: like a real one's, but never sent anywhere."""
    return f"paper-{str(signal_id).replace('-', '')}"


def closing_price(quote: risk.Quote, units: Decimal) -> Decimal:
    """Where a position closes now: a long sells at the bid, a short buys at the ask."""
    return quote.bid if units > 0 else quote.ask


def _pl(units: Decimal, open_price: Decimal, price: Decimal, quote: risk.Quote) -> Decimal:
    return paper.trade_pl(
        units=units,
        open_price=open_price,
        price=price,
        positive=quote.quote_home_positive,
        negative=quote.quote_home_negative,
    )


@transaction.atomic
def paper_entry_fill(
    *,
    signal: TradingSignal,
    pair: Pair,
    account_id: str,
    units: Decimal,
    price: Decimal,
    quote: risk.Quote,
    at: datetime,
    stop_loss_price: Decimal,
    take_profit_price: Decimal | None,
) -> Order:
    """Record a paper entry filled at ``price`` (the ask for a buy, the bid for a sell) at the
    broker's time ``at``: its order, filled, and its open trade."""
    order = Order.objects.create(
        client_id=paper_client_id(signal.pk),
        account_id=account_id,
        signal=signal,
        pair=pair,
        units=units,
        requested_price=signal.price if signal.price is not None else price,
        stop_loss_price=stop_loss_price,
        take_profit_price=take_profit_price,
        status=Order.Status.FILLED,
        fill_price=price,
        filled_at=at,
        paper=True,
    )
    order.broker_trade_id = f"paper-{order.pk}"
    order.save(update_fields=["broker_trade_id", "updated_at"])
    Trade.objects.create(
        account_id=account_id,
        broker_trade_id=order.broker_trade_id,
        order=order,
        client_id=f"{order.client_id}{TRADE_SUFFIX}",
        pair=pair,
        initial_units=units,
        current_units=units,
        open_price=price,
        opened_at=at,
        stop_loss_price=stop_loss_price,
        take_profit_price=take_profit_price,
        unrealized_pl=_pl(units, price, closing_price(quote, units), quote),
        paper=True,
        followed_until=at,
    )
    logger.info(
        "event=paper_fill pair=%s signal=%s client_id=%s units=%s price=%s",
        pair.symbol,
        signal.pk,
        order.client_id,
        units,
        price,
    )
    return order


def _financing_of(pair: str) -> FinancingRates:
    """The broker's financing of ``pair`` as the instruments sync keeps it (none before one)."""
    listed = Pair.objects.filter(symbol=pair).values_list("financing", flat=True).first()
    return FinancingRates.from_oanda(listed) if listed else FinancingRates()


def paper_trade_close(
    *,
    trade_id: int,
    price: Decimal,
    at: datetime,
    reason: str,
    quote: risk.Quote,
    units: Decimal | None = None,
    mid_at: Callable[[datetime], Decimal] | None = None,
) -> Trade | None:
    """Close a paper trade (``units`` of it; all by default) at ``price``; None when it is no
    longer open (another follower or an operator closed it first). The rollovers it was held
    over since it was last followed are charged first, at ``mid_at`` (the broker's mid price
    then; the close price when the caller has no candles)."""
    with transaction.atomic():
        trade = Trade.objects.select_for_update().filter(pk=trade_id, paper=True).first()
        if trade is None or trade.state != Trade.State.OPEN:
            return None
        trade.financing += paper.rollover_financing(
            units=trade.current_units,
            financing=_financing_of(trade.pair_id),
            after=trade.followed_until or trade.opened_at,
            until=at,
            mid_at=mid_at or (lambda _moment: price),
            positive=quote.quote_home_positive,
            negative=quote.quote_home_negative,
        )
        trade.followed_until = max(at, trade.followed_until or at)
        held = trade.current_units
        amount = abs(held) if units is None else min(abs(units), abs(held))
        signed = amount if held > 0 else -amount
        realized = _pl(signed, trade.open_price, price, quote)
        trade.realized_pl += realized
        trade.current_units = held - signed
        trade.close_reason = reason
        if trade.current_units == 0:
            trade.state = Trade.State.CLOSED
            trade.close_price = price
            trade.closed_at = at
            trade.unrealized_pl = Decimal(0)
        else:
            trade.unrealized_pl = _pl(
                trade.current_units, trade.open_price, closing_price(quote, held), quote
            )
        trade.save()
    logger.info(
        "event=paper_trade_closed pair=%s trade=%s client_id=%s units=%s price=%s realized_pl=%s "
        "reason=%s state=%s",
        trade.pair_id,
        trade.broker_trade_id,
        trade.client_id,
        signed,
        price,
        realized,
        reason,
        trade.state,
    )
    return trade


def paper_trade_stops_set(
    *, trade_id: int, stop_loss: Decimal | None, take_profit: Decimal | None
) -> Trade | None:
    """Move an open paper trade's stop-loss and/or take-profit (None leaves one as it is)."""
    with transaction.atomic():
        trade = Trade.objects.select_for_update().filter(pk=trade_id, paper=True).first()
        if trade is None or trade.state != Trade.State.OPEN:
            return None
        if stop_loss is not None:
            trade.stop_loss_price = stop_loss
        if take_profit is not None:
            trade.take_profit_price = take_profit
        trade.save(update_fields=["stop_loss_price", "take_profit_price", "updated_at"])
        return trade


# ----- following the stops on the broker's candles ------------------------------------------------


@dataclass(frozen=True)
class BidAskCandles:
    """The complete M1 candles of a pair since a minute, both sides, in time order."""

    bid: list[paper.SideCandle]
    ask: list[paper.SideCandle]

    @property
    def end(self) -> datetime | None:
        """When the newest complete candle ended."""
        return self.bid[-1].time + paper.MINUTE if self.bid else None


def _side(candle: dict[str, Any], key: str, time: datetime) -> paper.SideCandle:
    prices = candle[key]
    return paper.SideCandle(
        time=time,
        open=Decimal(prices["o"]),
        high=Decimal(prices["h"]),
        low=Decimal(prices["l"]),
        close=Decimal(prices["c"]),
    )


def broker_bid_ask_candles(client: oanda.OandaClient, pair: str, start: datetime) -> BidAskCandles:
    """The broker's complete bid and ask M1 candles of ``pair`` from the minute of ``start``."""
    bid: list[paper.SideCandle] = []
    ask: list[paper.SideCandle] = []
    cursor = start.replace(second=0, microsecond=0)
    for _ in range(MAX_PAGES):
        page = client.request(
            oanda.instrument_candles(
                pair,
                {
                    "granularity": "M1",
                    "price": "BA",
                    "from": cursor.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
                    "count": CANDLES_PER_PAGE,
                    "includeFirst": "true",
                },
            )
        ).get("candles", [])
        complete = [candle for candle in page if candle.get("complete")]
        for candle in complete:
            time = parse_broker_time(candle["time"])
            bid.append(_side(candle, "bid", time))
            ask.append(_side(candle, "ask", time))
        if len(page) < CANDLES_PER_PAGE or len(complete) < len(page):
            break
        cursor = bid[-1].time + timedelta(minutes=1)
    return BidAskCandles(bid, ask)


def open_paper_trades(pair: str | None = None) -> list[Trade]:
    trades = Trade.objects.filter(paper=True, state=Trade.State.OPEN)
    if pair is not None:
        trades = trades.filter(pair_id=pair)
    return list(trades.order_by("opened_at", "id"))


def paper_pair_follow(
    *, client: oanda.OandaClient, pair: str, quote: risk.Quote, now: datetime
) -> list[Trade]:
    """Bring the open paper trades of ``pair`` up to the broker's newest complete minute: close
    those whose stop-loss or take-profit was reached, and value the others at ``quote`` (the
    broker's price at ``now``, whose conversion factors turn the P&L into the account currency).
    Returns the trades it closed; an ``OandaError`` reading the candles is the caller's."""
    trades = open_paper_trades(pair)
    if not trades:
        return []
    start = min(trade.followed_until or trade.opened_at for trade in trades)
    candles = broker_bid_ask_candles(client, pair, start)
    financing = _financing_of(pair)
    mid_at = _mid_before(candles)
    closed = []
    for trade in trades:
        long = trade.current_units > 0
        after = trade.followed_until or trade.opened_at
        found = paper.first_exit(
            long=long,
            stop_loss=trade.stop_loss_price,
            take_profit=trade.take_profit_price,
            candles=candles.bid if long else candles.ask,
            after=after,
        )
        if found is not None:
            done = paper_trade_close(
                trade_id=trade.pk,
                price=found.price,
                at=found.time,
                reason=found.reason,
                quote=quote,
                mid_at=mid_at,
            )
            if done is not None:
                closed.append(done)
            continue
        followed = max(after, candles.end) if candles.end is not None else after
        units = trade.current_units
        charged = paper.rollover_financing(
            units=units,
            financing=financing,
            after=after,
            until=followed,
            mid_at=mid_at,
            positive=quote.quote_home_positive,
            negative=quote.quote_home_negative,
        )
        # Only from where this follower started: a rollover is charged once even when two
        # followers read the same minutes.
        Trade.objects.filter(
            pk=trade.pk, state=Trade.State.OPEN, followed_until=trade.followed_until
        ).update(
            followed_until=followed,
            financing=F("financing") + charged,
            unrealized_pl=_pl(units, trade.open_price, closing_price(quote, units), quote),
            updated_at=timezone.now(),
        )
    return closed


def _mid_before(candles: BidAskCandles) -> Callable[[datetime], Decimal]:
    """The broker's mid price at a moment: the close of the last complete minute that ended by
    then (the first minute's open before any)."""
    ends = [candle.time + paper.MINUTE for candle in candles.bid]

    def mid_at(moment: datetime) -> Decimal:
        index = bisect.bisect_right(ends, moment) - 1
        if index < 0:
            if not candles.bid:
                raise LookupError("no broker candle to price the rollover")
            return (candles.bid[0].open + candles.ask[0].open) / 2
        return (candles.bid[index].close + candles.ask[index].close) / 2

    return mid_at


def paper_trades_close_at_market(
    trades: Iterable[Trade], quotes: dict[str, tuple[risk.Quote, datetime]]
) -> list[Trade]:
    """Close ``trades`` whole at the current bid/ask of their pair (``quotes``: pair -> the
    broker's price and time); returns the ones this call closed."""
    closed = []
    for trade in trades:
        quote, at = quotes[trade.pair_id]
        done = paper_trade_close(
            trade_id=trade.pk,
            price=closing_price(quote, trade.current_units),
            at=at,
            reason=paper.TRADE_CLOSE,
            quote=quote,
        )
        if done is not None:
            closed.append(done)
    return closed
