"""Performance records from real trade and snapshot rows, on the 17:00 New York trading day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from trading.models import AccountSnapshot, Trade
from trading.performance import (
    Tally,
    daily_loss,
    daily_performance,
    drawdown_from_peak,
    equity_curve,
    pair_performance,
    realized_pl,
    unrealized_pl,
)

pytestmark = pytest.mark.django_db

ACCOUNT = "001-001-0000001-001"
_ids = count(1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def closed_trade(
    closed_at: datetime, realized: str, financing: str = "0", pair: str = "EUR_USD"
) -> Trade:
    return Trade.objects.create(
        account_id=ACCOUNT,
        broker_trade_id=str(next(_ids)),
        pair_id=pair,
        initial_units=Decimal(1000),
        current_units=Decimal(0),
        open_price=Decimal("1.10000"),
        opened_at=closed_at - timedelta(hours=3),
        state=Trade.State.CLOSED,
        close_price=Decimal("1.10100"),
        closed_at=closed_at,
        realized_pl=Decimal(realized),
        financing=Decimal(financing),
    )


def open_trade(unrealized: str, realized: str = "0", pair: str = "EUR_USD") -> Trade:
    return Trade.objects.create(
        account_id=ACCOUNT,
        broker_trade_id=str(next(_ids)),
        pair_id=pair,
        initial_units=Decimal(1000),
        current_units=Decimal(500) if Decimal(realized) else Decimal(1000),
        open_price=Decimal("1.10000"),
        opened_at=utc(2025, 3, 3, 12),
        realized_pl=Decimal(realized),
        unrealized_pl=Decimal(unrealized),
    )


def snapshot(time: datetime, nav: str, unrealized: str = "0", balance: str | None = None) -> None:
    AccountSnapshot.objects.create(
        account_id=ACCOUNT,
        time=time,
        balance=Decimal(nav) - Decimal(unrealized) if balance is None else Decimal(balance),
        nav=Decimal(nav),
        unrealized_pl=Decimal(unrealized),
        margin_used=Decimal(0),
        margin_available=Decimal(nav),
    )


# Trading days ------------------------------------------------------------------------------------


def test_trades_closed_at_16_59_and_17_01_new_york_land_on_different_days_across_dst() -> None:
    # Thursday 2025-03-06 is winter time (17:00 New York = 22:00 UTC); Monday 2025-03-10, the
    # day after the switch, is summer time (17:00 New York = 21:00 UTC).
    closed_trade(utc(2025, 3, 6, 21, 59), "10")
    closed_trade(utc(2025, 3, 6, 22, 1), "-4")
    closed_trade(utc(2025, 3, 10, 20, 59), "7", financing="-1")
    closed_trade(utc(2025, 3, 10, 21, 1), "3", pair="USD_JPY")
    # 21:30 UTC was before the close in winter and is after it in summer.
    closed_trade(utc(2025, 3, 5, 21, 30), "1")
    closed_trade(utc(2025, 3, 10, 21, 30), "-2")

    days = daily_performance(date(2025, 3, 5), date(2025, 3, 11))

    by_day = {performance.day: performance for performance in days}
    assert list(by_day) == [date(2025, 3, day) for day in (5, 6, 7, 10, 11)]
    assert by_day[date(2025, 3, 5)].realized_pl == Decimal(1)
    assert by_day[date(2025, 3, 6)].realized_pl == Decimal(10)
    assert by_day[date(2025, 3, 7)].realized_pl == Decimal(-4)
    assert by_day[date(2025, 3, 10)].realized_pl == Decimal(6)
    assert by_day[date(2025, 3, 11)].realized_pl == Decimal(1)
    assert by_day[date(2025, 3, 11)].starts_at == utc(2025, 3, 10, 21)


def test_a_day_counts_wins_losses_and_win_rate_in_total_and_per_pair() -> None:
    day_start = utc(2025, 6, 3, 21)  # Tuesday 17:00 New York starts Wednesday 2025-06-04
    closed_trade(day_start + timedelta(hours=1), "12.5")
    closed_trade(day_start + timedelta(hours=2), "-5")
    closed_trade(day_start + timedelta(hours=3), "0")
    closed_trade(day_start + timedelta(hours=4), "8", pair="GBP_USD")

    [wednesday] = daily_performance(date(2025, 6, 4), date(2025, 6, 4))

    assert (wednesday.trades_closed, wednesday.wins, wednesday.losses) == (4, 2, 1)
    assert wednesday.realized_pl == Decimal("15.5")
    assert wednesday.win_rate == Decimal("0.5000")
    assert wednesday.pairs == {
        "EUR_USD": Tally(realized_pl=Decimal("7.5"), trades_closed=3, wins=1, losses=1),
        "GBP_USD": Tally(realized_pl=Decimal(8), trades_closed=1, wins=1, losses=0),
    }
    assert wednesday.pairs["EUR_USD"].win_rate == Decimal("0.3333")


def test_daily_figures_for_one_pair_and_weekdays_without_trades() -> None:
    closed_trade(utc(2025, 6, 4, 12), "5", pair="GBP_USD")
    closed_trade(utc(2025, 6, 4, 13), "3")

    days = daily_performance(date(2025, 6, 2), date(2025, 6, 8), pair="EUR_USD")

    assert [performance.day.isoformat() for performance in days] == [
        "2025-06-02",
        "2025-06-03",
        "2025-06-04",
        "2025-06-05",
        "2025-06-06",
    ]
    assert days[2].realized_pl == Decimal(3)
    assert days[0].win_rate is None


def test_a_reversed_day_range_is_refused_naming_both_days() -> None:
    with pytest.raises(ValueError, match="end_day=2025-06-01 is not valid"):
        daily_performance(date(2025, 6, 2), date(2025, 6, 1))


# Realised and unrealised -------------------------------------------------------------------------


def test_realised_pl_adds_financing_of_closed_trades_and_partial_closes_of_open_ones() -> None:
    closed_trade(utc(2025, 6, 4, 12), "10", financing="-0.25")
    closed_trade(utc(2025, 6, 5, 12), "-3")
    open_trade(unrealized="2", realized="4")

    assert realized_pl() == Decimal("10.75")
    # Over a period only closed trades count: a partial close carries no time.
    assert realized_pl(start=utc(2025, 6, 4), end=utc(2025, 6, 5)) == Decimal("9.75")


def test_unrealised_pl_comes_from_open_trades_or_a_fresher_snapshot() -> None:
    open_trade(unrealized="-20")
    open_trade(unrealized="5", pair="GBP_USD")
    assert unrealized_pl() == Decimal(-15)
    assert unrealized_pl(pair="GBP_USD") == Decimal(5)

    snapshot(datetime.now(UTC) + timedelta(seconds=5), nav="1000", unrealized="-12")
    assert unrealized_pl() == Decimal(-12)
    assert unrealized_pl(pair="EUR_USD") == Decimal(-20)


def test_pair_totals_cover_closed_results_and_what_is_open_now() -> None:
    closed_trade(utc(2025, 6, 4, 12), "10")
    closed_trade(utc(2025, 6, 4, 13), "-4")
    closed_trade(utc(2025, 6, 4, 14), "6", pair="USD_JPY")
    open_trade(unrealized="3", realized="1")

    eur_usd, usd_jpy = pair_performance()

    assert eur_usd.pair == "EUR_USD"
    assert (eur_usd.realized_pl, eur_usd.trades_closed, eur_usd.win_rate) == (
        Decimal(6),
        2,
        Decimal("0.5000"),
    )
    assert (eur_usd.open_trades, eur_usd.partial_realized_pl, eur_usd.unrealized_pl) == (
        1,
        Decimal(1),
        Decimal(3),
    )
    assert (usd_jpy.pair, usd_jpy.realized_pl, usd_jpy.open_trades) == ("USD_JPY", Decimal(6), 0)


# Equity curve and drawdown -----------------------------------------------------------------------


def test_the_equity_curve_lists_snapshots_oldest_first_and_downsamples_to_real_points() -> None:
    start = utc(2025, 6, 4, 12)
    for minute in range(12):
        snapshot(start + timedelta(minutes=minute), nav=str(1000 + minute))

    full = equity_curve(start, start + timedelta(minutes=12))
    sampled = equity_curve(start, start + timedelta(minutes=12), max_points=3)

    assert [point.nav for point in full] == [Decimal(1000 + minute) for minute in range(12)]
    # Three buckets of four minutes; each keeps its last snapshot.
    assert [(point.time.minute, point.nav) for point in sampled] == [
        (3, Decimal(1003)),
        (7, Decimal(1007)),
        (11, Decimal(1011)),
    ]
    assert full[0].balance == Decimal(1000)


def test_the_equity_curve_refuses_an_empty_range() -> None:
    with pytest.raises(ValueError, match="expected a time after start"):
        equity_curve(utc(2025, 6, 4), utc(2025, 6, 4))


def test_the_drawdown_is_the_newest_nav_below_the_highest_nav() -> None:
    assert drawdown_from_peak() is None
    snapshot(utc(2025, 6, 2), nav="1000")
    snapshot(utc(2025, 6, 3), nav="1250")
    snapshot(utc(2025, 6, 4), nav="1125")

    drawdown = drawdown_from_peak()

    assert drawdown is not None
    assert (drawdown.peak_nav, drawdown.nav, drawdown.amount) == (
        Decimal(1250),
        Decimal(1125),
        Decimal(125),
    )
    assert drawdown.percent == Decimal(10)
    assert drawdown.peak_time == utc(2025, 6, 3)


# Daily loss --------------------------------------------------------------------------------------


def test_the_daily_loss_counts_only_what_a_carried_trade_lost_during_the_day() -> None:
    # Wednesday 2025-06-04 runs from Tuesday 21:00 UTC to Wednesday 21:00 UTC (summer).
    # At the start a trade carried over is down 50; it closes at noon down 60 in all, and a new
    # trade is down 15 now.
    snapshot(utc(2025, 6, 3, 20, 59), nav="10000", unrealized="-50")
    closed_trade(utc(2025, 6, 4, 16), "-60")
    open_trade(unrealized="-15")
    now = utc(2025, 6, 4, 18)

    loss = daily_loss(now=now)

    assert loss.day == date(2025, 6, 4)
    assert (loss.realized_pl, loss.unrealized_start, loss.unrealized_end) == (
        Decimal(-60),
        Decimal(-50),
        Decimal(-15),
    )
    assert loss.pl == Decimal(-25)
    assert loss.loss == Decimal(25)
    assert loss.loss_percent == Decimal("0.25")


def test_a_trade_closed_after_17_00_new_york_counts_towards_the_next_days_loss() -> None:
    closed_trade(utc(2025, 6, 4, 21, 1), "-30")

    wednesday = daily_loss(date(2025, 6, 4), now=utc(2025, 6, 5, 12))
    thursday = daily_loss(now=utc(2025, 6, 5, 12))

    assert wednesday.loss == Decimal(0)
    assert wednesday.as_of == utc(2025, 6, 4, 21)
    assert thursday.loss == Decimal(30)
    assert thursday.loss_percent is None
