"""The paper stage before live (trading/paper.py, trading/paper_trades.py, README "Paper stage
before live"): paper fills at the live bid/ask, stops followed on the broker's minutes, nothing
sent to the broker, the book kept apart from the account's, and the walk model -> paper -> live
through its gates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from celery import current_app
from django.utils import timezone

import trading.tasks  # noqa: F401  (registers the tasks beat names)
from marketdata.models import Pair
from marketdata.services import instruments_sync
from qfh.evaluation.services import pair_model_promote
from qfh.models import PairModel
from septrader.models import AuditLog
from septrader.services import config_set
from tests.conftest import Parity
from tests.qfh.test_training import passing_model
from tests.trading.conftest import Broker, make_signal, pointed_broker, trading_pair
from trading.demotion import LiveTrade, ModelFigures
from trading.execution import fetch_quote, signal_execute
from trading.models import Order, Trade, TradingSignal
from trading.paper import (
    STOP_LOSS,
    TAKE_PROFIT,
    PaperSettings,
    SideCandle,
    first_exit,
    paper_trading_days,
    parity_gate,
    results_gate,
)
from trading.reconciliation import account_reconcile
from trading.services import (
    Conflict,
    TradingError,
    kill_switch_engage,
    pair_advance,
    pair_advance_check,
    pair_disable,
    pair_enable,
    paper_trades_follow,
    trade_amend,
    trade_close,
    trades_close_all,
)

MINUTE = datetime(2025, 7, 24, 9, 0, tzinfo=UTC)


def candle(offset: int, o: str, h: str, low: str, c: str) -> SideCandle:
    return SideCandle(
        time=MINUTE + timedelta(minutes=offset),
        open=Decimal(o),
        high=Decimal(h),
        low=Decimal(low),
        close=Decimal(c),
    )


# ----- fills along the minute's path (pure) -------------------------------------------------------


def test_a_long_stop_crossed_inside_a_minute_fills_at_the_stop_when_the_path_crosses_it() -> None:
    # The low (5 from the open) is nearer than the high (10): open, low, high, close. The path
    # falls from 1.17050 at :00 to 1.17000 at :20 and crosses 1.17010 at :16.
    found = first_exit(
        long=True,
        stop_loss=Decimal("1.17010"),
        take_profit=Decimal("1.17200"),
        candles=[candle(0, "1.17050", "1.17150", "1.17000", "1.17100")],
        after=MINUTE,
    )
    assert found is not None
    assert (found.price, found.reason) == (Decimal("1.17010"), STOP_LOSS)
    assert found.time == MINUTE + timedelta(seconds=16)


def test_a_gap_through_the_stop_fills_at_the_price_not_the_stop() -> None:
    # The first minute stays above the stop; the next opens 8 pips below it.
    found = first_exit(
        long=True,
        stop_loss=Decimal("1.17000"),
        take_profit=None,
        candles=[
            candle(0, "1.17050", "1.17060", "1.17040", "1.17045"),
            candle(1, "1.16920", "1.16950", "1.16900", "1.16930"),
        ],
        after=MINUTE,
    )
    assert found is not None
    assert (found.price, found.reason) == (Decimal("1.16920"), STOP_LOSS)
    assert found.time == MINUTE + timedelta(minutes=1)


def test_a_short_watches_the_ask_and_takes_its_profit_when_the_price_falls_to_it() -> None:
    found = first_exit(
        long=False,
        stop_loss=Decimal("1.17200"),
        take_profit=Decimal("1.16950"),
        candles=[candle(0, "1.17000", "1.17010", "1.16900", "1.16990")],
        after=MINUTE,
    )
    assert found is not None
    assert (found.price, found.reason) == (Decimal("1.16950"), TAKE_PROFIT)


def test_the_extreme_nearer_the_open_comes_first_when_both_stops_lie_inside_one_minute() -> None:
    both = {"stop_loss": Decimal("1.16990"), "take_profit": Decimal("1.17030")}
    # The high is nearer the open: the take-profit is reached before the stop-loss.
    up_first = first_exit(
        long=True,
        candles=[candle(0, "1.17020", "1.17040", "1.16980", "1.17000")],
        after=MINUTE,
        **both,
    )
    # The low is nearer: the stop-loss first.
    down_first = first_exit(
        long=True,
        candles=[candle(0, "1.17000", "1.17040", "1.16980", "1.17000")],
        after=MINUTE,
        **both,
    )
    assert up_first is not None and up_first.reason == TAKE_PROFIT
    assert down_first is not None and down_first.reason == STOP_LOSS


def test_the_path_before_the_trade_opened_is_not_held_against_it() -> None:
    # The low (nearer the open, so at :20) is below the stop, but the trade opened at :30,
    # on the way up to the high at :40.
    minute = [candle(0, "1.17050", "1.17150", "1.16990", "1.17080")]
    assert (
        first_exit(
            long=True,
            stop_loss=Decimal("1.17000"),
            take_profit=None,
            candles=minute,
            after=MINUTE + timedelta(seconds=30),
        )
        is None
    )


def test_trading_days_on_paper_are_whole_new_york_weekdays_without_holidays() -> None:
    # Monday 21 July 2025, 10:00 New York: Monday's day has begun, so it does not count.
    started = datetime(2025, 7, 21, 14, 0, tzinfo=UTC)
    friday_close = datetime(2025, 7, 25, 21, 0, tzinfo=UTC)  # Friday 17:00 New York
    assert paper_trading_days(started, friday_close, set()) == [
        date(2025, 7, 22),
        date(2025, 7, 23),
        date(2025, 7, 24),
        date(2025, 7, 25),
    ]
    # The weekend adds nothing; a holiday is left out.
    sunday = datetime(2025, 7, 27, 23, 0, tzinfo=UTC)
    assert len(paper_trading_days(started, sunday, {date(2025, 7, 23)})) == 3


def wins_and_losses(wins: int, losses: int) -> list[LiveTrade]:
    won = [LiveTrade(net_pl=Decimal(10), net_pips=Decimal(10))] * wins
    lost = [LiveTrade(net_pl=Decimal(-10), net_pips=Decimal(-10))] * losses
    return [trade for pair in zip(won, lost, strict=False) for trade in pair] + (
        won[losses:] if wins > losses else lost[wins:]
    )


# A model that won 60 % of 500 out-of-sample trades: Wilson 95 % 0.5565 to 0.6420.
MODEL = ModelFigures(trades=500, hit_rate=0.6, max_drawdown_pips=50.0)


@pytest.mark.parametrize(
    ("wins", "losses", "passed", "words"),
    [
        (12, 8, True, "overlaps the model's out-of-sample interval 0.5565 to 0.6420"),
        (3, 17, False, "below the model's out-of-sample interval"),
        (20, 0, False, "above the model's out-of-sample interval"),
        (5, 4, False, "9 paper trades of the model closed, fewer than the 10"),
    ],
)
def test_the_paper_results_must_lie_inside_the_models_out_of_sample_interval(
    wins: int, losses: int, passed: bool, words: str
) -> None:
    gate = results_gate(wins_and_losses(wins, losses), MODEL, PaperSettings())
    assert gate.passed is passed
    assert words in gate.reason


def test_a_paper_drawdown_beyond_the_demotion_multiple_fails_the_results() -> None:
    record = wins_and_losses(0, 0) + [LiveTrade(Decimal(10), Decimal(20))] * 7
    record += [LiveTrade(Decimal(-10), Decimal(-40))] * 3
    gate = results_gate(record, MODEL, PaperSettings())
    assert not gate.passed
    assert "paper drawdown 120.0 pips above 2 x the out-of-sample 50.0 pips" in gate.reason


def test_parity_that_cannot_be_asked_never_counts_as_no_mismatch() -> None:
    gate = parity_gate(None, date(2025, 7, 21))
    assert not gate.passed
    assert gate.reason.startswith("parity not available")


# ----- paper entries against the simulator ----------------------------------------------------


def broker_transactions(broker: Broker) -> int:
    return len(broker.get("transactions/sinceid?id=1")["transactions"])


def paper_pair(symbol: str = "EUR_USD") -> Pair:
    return trading_pair(
        symbol,
        state=Pair.State.PAPER,
        paper_started_at=datetime(2025, 7, 24, 8, 0, tzinfo=UTC),
        forced_without_model=False,
    )


@pytest.mark.parametrize(("direction", "side"), [("BUY", "ask"), ("SELL", "bid")])
def test_a_paper_signal_fills_at_the_live_bid_or_ask_and_no_order_reaches_the_broker(
    db: None, broker: Broker, direction: str, side: str
) -> None:
    # Given EUR/USD on paper, and the broker's price at this (paused) moment
    paper_pair()
    quote, _ = fetch_quote(broker.client(), "EUR_USD")
    before = broker_transactions(broker)
    signal = make_signal(direction=direction)

    # When its signal is executed
    outcome = signal_execute(signal_id=signal.pk)

    # Then it is executed on paper: an order and a trade recorded like a real one, marked paper,
    # filled at the ask (buy) or the bid (sell), sized and stopped by the same rules
    assert outcome.status == "executed", outcome.reason
    order = Order.objects.get(signal=signal)
    trade = Trade.objects.get(order=order)
    price = getattr(quote, side)
    assert order.paper and trade.paper
    assert (order.status, order.fill_price, trade.open_price) == (Order.Status.FILLED, price, price)
    assert order.client_id.startswith("paper-") and trade.broker_trade_id == f"paper-{order.pk}"
    assert (trade.initial_units > 0) is (direction == "BUY")
    assert trade.stop_loss_price == price + (-1 if direction == "BUY" else 1) * Decimal("0.0015")
    signal.refresh_from_db()
    assert signal.status == TradingSignal.Status.EXECUTED and signal.result["paper"] is True
    # ... and nothing reached the broker: not an order, not a transaction
    assert broker_transactions(broker) == before
    assert broker.open_trades() == []


def open_at_the_broker(
    broker: Broker, paper: Trade, *, with_stops: bool = False
) -> list[dict[str, Any]]:
    """The paper trade's twin opened for real at the broker (same units; its stops if asked);
    the broker's open trades after it."""
    order: dict[str, Any] = {
        "type": "MARKET",
        "instrument": paper.pair_id,
        "units": str(paper.initial_units.normalize()),
    }
    if with_stops:
        order["stopLossOnFill"] = {"price": str(paper.stop_loss_price)}
        order["takeProfitOnFill"] = {"price": str(paper.take_profit_price)}
    broker.post("orders", {"order": order})
    return broker.open_trades()


def test_a_paper_trade_closes_at_its_stops_exactly_where_the_broker_closes_the_same_trade(
    db: None, broker: Broker
) -> None:
    # Given a paper buy with tight stops, and the same trade opened for real at the broker at
    # the same moment with the same units and stop prices
    config_set(key="execution.stop_loss_pips", value="3")
    config_set(key="execution.take_profit_pips", value="3")
    paper_pair()
    assert signal_execute(signal_id=make_signal().pk).status == "executed"
    paper = Trade.objects.get(paper=True)
    [real] = open_at_the_broker(broker, paper, with_stops=True)
    assert Decimal(real["price"]) == paper.open_price

    # When the market moves on until the broker has closed its trade, and the paper trades are
    # followed on the broker's minutes (the beat task's work)
    for _ in range(24):
        broker.advance(300)
        if not broker.open_trades():
            break
    result = paper_trades_follow()

    # Then the paper trade closed at the same price, for the same reason, with the same P&L
    at_broker = broker.get(f"trades/{real['id']}")["trade"]
    paper.refresh_from_db()
    assert result.closed == [paper.broker_trade_id] and not result.failures
    assert paper.state == Trade.State.CLOSED
    assert paper.close_price == Decimal(at_broker["averageClosePrice"])
    assert paper.realized_pl == Decimal(at_broker["realizedPL"])
    [fill] = [
        transaction
        for transaction in broker.get("transactions/sinceid?id=1")["transactions"]
        if transaction["type"] == "ORDER_FILL"
        and any(closed["tradeID"] == real["id"] for closed in transaction.get("tradesClosed", []))
    ]
    assert paper.close_reason == fill["reason"]
    assert paper.close_reason in (STOP_LOSS, TAKE_PROFIT)
    broker_close = datetime.fromisoformat(at_broker["closeTime"][:26] + "+00:00")
    assert paper.closed_at is not None
    assert abs(paper.closed_at - broker_close) < timedelta(seconds=1)


def test_a_paper_trade_held_over_the_rollover_is_charged_what_the_broker_charges_the_same_trade(
    db: None, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker that charges EUR_USD financing, its rates synced onto the pair, a paper buy
    # with wide stops, and the same trade opened for real at the broker at the same moment
    with pointed_broker(settings, monkeypatch, "--financing", "EUR_USD=-0.0300:0.0100") as broker:
        instruments_sync(client=broker.client(), actor="test")
        config_set(key="execution.stop_loss_pips", value="1000")
        config_set(key="execution.take_profit_pips", value="0")
        paper_pair()
        assert signal_execute(signal_id=make_signal().pk).status == "executed"
        paper = Trade.objects.get(paper=True)
        [real] = open_at_the_broker(broker, paper)

        # When the market passes Thursday's 17:00 New York rollover (21:00 UTC) and the paper
        # trades are followed, twice
        broker.advance(12 * 3600 + 300)
        paper_trades_follow()
        paper_trades_follow()

        # Then the paper trade carries the broker's charge for the same trade, once
        at_broker = broker.get(f"trades/{real['id']}")["trade"]
        paper.refresh_from_db()
        assert paper.state == Trade.State.OPEN
        assert Decimal(at_broker["financing"]) < 0
        assert paper.financing == Decimal(at_broker["financing"])

        # And closing it by hand later in the day charges nothing more
        trade_close(trade_id=paper.pk, actor="ops")
        paper.refresh_from_db()
        assert paper.state == Trade.State.CLOSED
        assert paper.financing == Decimal(at_broker["financing"])


def test_beat_follows_the_paper_trades_each_minute_on_the_execution_queue(
    db: None, broker: Broker, settings: Any
) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["trading.follow_paper_trades"]
    assert entry["task"] == "trading.follow_paper_trades_task"
    assert entry["schedule"] == 60.0 and entry["options"] == {"expires": 50}
    assert current_app.amqp.router.route({}, entry["task"])["queue"].name == "execution"
    # The task closes what the minutes since the last follow reached.
    config_set(key="execution.stop_loss_pips", value="3")
    paper_pair()
    signal_execute(signal_id=make_signal().pk)
    broker.advance(1800)
    closed = current_app.tasks[entry["task"]].apply().get()
    assert closed == [Trade.objects.get().broker_trade_id]
    assert Trade.objects.get().state == Trade.State.CLOSED


def test_an_open_paper_trade_is_valued_at_the_live_price_and_followed_from_where_it_stopped(
    db: None, broker: Broker
) -> None:
    paper_pair()
    signal_execute(signal_id=make_signal().pk)
    trade = Trade.objects.get()
    assert trade.unrealized_pl < 0  # bought at the ask, valued at the bid: the spread

    broker.advance(120)
    paper_trades_follow()

    trade.refresh_from_db()
    quote, _ = fetch_quote(broker.client(), "EUR_USD")
    assert trade.state == Trade.State.OPEN
    assert trade.unrealized_pl == ((quote.bid - trade.open_price) * trade.current_units).quantize(
        Decimal("0.0001")
    )
    assert trade.followed_until == datetime(2025, 7, 24, 9, 2, tzinfo=UTC)


def test_a_second_paper_signal_sees_its_pairs_paper_position_but_real_entries_never_do(
    db: None, broker: Broker
) -> None:
    # Given a paper position on EUR/USD and at most one open trade on the account
    config_set(key="risk.max_open_trades", value=1)
    paper_pair()
    signal_execute(signal_id=make_signal(minute="2025-07-24T08:58:00Z").pk)

    # When another EUR/USD signal comes, it is judged as it would be live: one position a pair
    second = signal_execute(signal_id=make_signal(minute="2025-07-24T08:59:00Z").pk)
    assert second.status == "rejected"
    assert "EUR_USD already has an open position" in second.reason

    # ... but a real GBP/USD entry does not count the paper trade against the account's limit
    trading_pair("GBP_USD")
    real = signal_execute(signal_id=make_signal("GBP_USD").pk)
    assert real.status == "executed", real.reason
    assert [trade["instrument"] for trade in broker.open_trades()] == ["GBP_USD"]


def test_reconciliation_leaves_paper_trades_alone(db: None, broker: Broker) -> None:
    # Given an open paper trade (which the broker has never heard of) and a real one
    paper_pair()
    signal_execute(signal_id=make_signal().pk)
    trading_pair("GBP_USD")
    signal_execute(signal_id=make_signal("GBP_USD").pk)
    paper = Trade.objects.get(paper=True)

    # When reconciliation compares our open trades with the broker's, twice
    account_reconcile(client=broker.client())
    report = account_reconcile(client=broker.client())

    # Then the paper trade is still open, untouched, and no difference was found about it
    assert report is not None and report.differences == []
    after = Trade.objects.get(pk=paper.pk)
    assert (after.state, after.current_units, after.realized_pl) == (
        Trade.State.OPEN,
        paper.current_units,
        Decimal(0),
    )
    assert not AuditLog.objects.filter(
        action="reconciliation.difference", target__contains="paper"
    ).exists()
    assert Trade.objects.get(paper=False).state == Trade.State.OPEN


def test_the_kill_switch_closes_paper_trades_here_without_an_order_at_the_broker(
    db: None, broker: Broker
) -> None:
    # Given an open paper trade
    paper_pair()
    signal_execute(signal_id=make_signal().pk)
    before = broker_transactions(broker)
    quote, _ = fetch_quote(broker.client(), "EUR_USD")

    # When the kill switch is engaged
    result = kill_switch_engage(actor="ops", address="10.0.0.7", close_trades=True)

    # Then the paper trade is closed here at the bid (a long sells), and no order left
    trade = Trade.objects.get()
    assert result.trades_closed == 1 and not result.failures
    assert trade.state == Trade.State.CLOSED
    assert (trade.close_price, trade.close_reason) == (quote.bid, "MARKET_ORDER_TRADE_CLOSE")
    assert trade.realized_pl == ((quote.bid - trade.open_price) * trade.initial_units).quantize(
        Decimal("0.0001")
    )
    assert broker_transactions(broker) == before
    entry = AuditLog.objects.get(action="trading.kill_switch")
    assert entry.details["trades_closed"] == 1


def test_closing_or_flattening_a_paper_trade_is_local_and_audited(db: None, broker: Broker) -> None:
    paper_pair()
    signal_execute(signal_id=make_signal(minute="2025-07-24T08:58:00Z").pk)
    trade = Trade.objects.get()
    before = broker_transactions(broker)
    half = (trade.initial_units / 2).quantize(Decimal(1))

    reduced = trade_close(trade_id=trade.pk, actor="ops", units=half)
    assert reduced.state == Trade.State.OPEN and reduced.current_units == trade.initial_units - half
    assert reduced.realized_pl < 0  # the spread, on half the units
    flattened = trades_close_all(actor="ops", pair="EUR_USD", reason="test")

    assert (flattened.trades_closed, flattened.paper_trades_closed) == (1, 1)
    assert Trade.objects.get().state == Trade.State.CLOSED
    assert broker_transactions(broker) == before
    audit = AuditLog.objects.get(action="trade.close")
    assert audit.details == {"units": str(half), "paper": True}


def test_moving_a_paper_trades_stops_is_local_checked_against_the_market_and_audited(
    db: None, broker: Broker
) -> None:
    paper_pair()
    signal_execute(signal_id=make_signal().pk)
    trade = Trade.objects.get()
    before = broker_transactions(broker)

    with pytest.raises(TradingError, match="wrong side of the market"):
        trade_amend(trade_id=trade.pk, actor="ops", stop_loss=trade.open_price + Decimal("0.01"))
    moved = trade_amend(trade_id=trade.pk, actor="ops", stop_loss="1.17000")

    assert moved.stop_loss_price == Decimal("1.17000")
    assert moved.take_profit_price == trade.take_profit_price
    assert broker_transactions(broker) == before
    assert AuditLog.objects.get(action="trade.amend").details["paper"] is True


# ----- model -> paper -> live ------------------------------------------------------------------


# Monday 21 July 2025, 10:00 New York: paper begins. Five whole trading days later (Tuesday to
# the next Monday) is Monday 28 July, 17:00 New York.
PAPER_STARTS = datetime(2025, 7, 21, 14, 0, tzinfo=UTC)
FOUR_DAYS_LATER = datetime(2025, 7, 25, 21, 0, tzinfo=UTC)
FIVE_DAYS_LATER = datetime(2025, 7, 28, 21, 0, tzinfo=UTC)


def promoted_model(symbol: str = "EUR_USD") -> PairModel:
    """A model that won 60 % of 500 out-of-sample trades, promoted through qfh's own gates."""
    return pair_model_promote(model_id=passing_model(pair_id=symbol).pk, actor="research")


_numbers = count(1)


def plant_paper_record(model: PairModel, results_pips: list[int], pair: str = "EUR_USD") -> None:
    """Closed paper trades of the model's signals during the paper stage."""
    for pips in results_pips:
        number = next(_numbers)
        opened = PAPER_STARTS + timedelta(days=1, minutes=number)
        signal = make_signal(pair, minute=opened.strftime("%Y-%m-%dT%H:%M:00Z"), pair_model=model)
        order = Order.objects.create(
            client_id=f"paper-planted-{number}",
            account_id="101-001-0000000-007",
            signal=signal,
            pair_id=pair,
            units=Decimal(10_000),
            status=Order.Status.FILLED,
            fill_price=Decimal("1.17000"),
            paper=True,
        )
        Trade.objects.create(
            account_id="101-001-0000000-007",
            broker_trade_id=f"paper-{order.pk}",
            order=order,
            pair_id=pair,
            initial_units=Decimal(10_000),
            current_units=Decimal(0),
            open_price=Decimal("1.17000"),
            opened_at=opened,
            state=Trade.State.CLOSED,
            close_price=Decimal("1.17000") + Decimal(pips) * Decimal("0.0001"),
            closed_at=opened + timedelta(minutes=5),
            realized_pl=Decimal(pips),
            paper=True,
        )


def refused(symbol: str, now: datetime) -> dict[str, str]:
    """The gates that refuse the advance now, by name, with their reasons."""
    with pytest.raises(Conflict) as refusal:
        pair_advance(symbol=symbol, actor="ops", address="10.0.0.7", now=now)
    verdict = pair_advance_check(symbol=symbol, now=now)
    failed = {gate.name: gate.reason for gate in verdict.gates if not gate.passed}
    for reason in failed.values():
        assert reason in refusal.value.message
    return failed


def test_a_pair_walks_model_to_paper_to_live_with_each_gate_checked(
    db: None, broker: Broker, broker_clock: Any, parity: Parity
) -> None:
    # Given a promoted model for EUR/USD
    model = promoted_model()

    # When the operator enables the pair, it starts on paper, on the broker's clock, audited
    broker_clock(PAPER_STARTS)
    pair = pair_enable(symbol="EUR_USD", actor="ops", address="10.0.0.7")
    assert (pair.state, pair.enabled, pair.forced_without_model) == (Pair.State.PAPER, True, False)
    assert pair.paper_started_at is not None
    assert abs(pair.paper_started_at - PAPER_STARTS) < timedelta(seconds=5)
    enabled = AuditLog.objects.get(action="pair.enable", target="EUR_USD")
    assert enabled.details["to"] == "paper" and enabled.details["pair_model"] == model.pk

    # Then advancing at once is refused: no trading day, no paper trade yet
    failed = refused("EUR_USD", PAPER_STARTS + timedelta(hours=1))
    assert set(failed) == {"trading_days", "results"}
    assert failed["trading_days"].startswith("0 New York trading days on paper completed")
    assert "0 paper trades of the model closed, fewer than the 10" in failed["results"]
    assert AuditLog.objects.filter(action="pair.advance_refused", target="EUR_USD").count() == 1

    # ... after four days with a record far below the model: both still refuse, with figures
    plant_paper_record(model, [15] * 3 + [-15] * 17)
    failed = refused("EUR_USD", FOUR_DAYS_LATER)
    assert set(failed) == {"trading_days", "results"}
    assert (
        "4 New York trading days on paper completed (2025-07-22 to 2025-07-25)"
        in (failed["trading_days"])
    )
    assert "paper net hit rate 15.0% (3 of 20 trades)" in failed["results"]
    assert "below the model's out-of-sample interval" in failed["results"]

    # ... five days and a record like the model's, but an unexplained parity mismatch
    Trade.objects.filter(paper=True).delete()
    plant_paper_record(model, [15, -15] * 6 + [15] * 2)
    parity.unexplained["EUR_USD"] = 2
    failed = refused("EUR_USD", FIVE_DAYS_LATER)
    assert set(failed) == {"parity"}
    assert failed["parity"] == (
        "2 unexplained signal mismatches in the parity reports since 2025-07-21"
    )
    # The parity reports are asked from the trading day paper began.
    assert parity.asked[-1] == ("EUR_USD", date(2025, 7, 21))

    # When the mismatches are explained, every gate passes and the pair advances to live
    parity.unexplained["EUR_USD"] = 0
    assert pair_advance_check(symbol="EUR_USD", now=FIVE_DAYS_LATER).allowed
    pair = pair_advance(symbol="EUR_USD", actor="ops", address="10.0.0.7", now=FIVE_DAYS_LATER)
    assert (pair.state, pair.enabled) == (Pair.State.TRADING, True)
    advanced = AuditLog.objects.get(action="pair.advance", target="EUR_USD")
    assert (advanced.actor, advanced.address) == ("ops", "10.0.0.7")
    assert advanced.details["pair_model"] == model.pk
    gates = advanced.details["gates"]
    assert gates["trading_days"]["days"] == 5 and gates["results"]["trades"] == 14
    assert gates["parity"]["unexplained"] == 0

    # And from now on its signals go to the broker for real
    signal = make_signal(pair_model=model)
    assert signal_execute(signal_id=signal.pk).status == "executed"
    order = Order.objects.get(signal=signal)
    assert not order.paper and broker.orders_with_client_id(order.client_id) == 1

    # And a disable and enable later it goes back to live: this model was already live on it
    pair_disable(symbol="EUR_USD", actor="ops")
    assert pair_enable(symbol="EUR_USD", actor="ops").state == Pair.State.TRADING


def test_without_a_parity_app_a_pair_cannot_advance(db: None, no_parity: None) -> None:
    model = promoted_model()
    pair = trading_pair(state=Pair.State.PAPER, paper_started_at=PAPER_STARTS)
    plant_paper_record(model, [15, -15] * 6 + [15] * 2)

    failed = refused(pair.symbol, FIVE_DAYS_LATER)

    assert set(failed) == {"parity"}
    assert failed["parity"].startswith("parity not available")
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.PAPER


def test_a_new_model_starts_on_paper_and_forcing_without_a_model_still_goes_live_at_once(
    db: None, broker_clock: Any
) -> None:
    broker_clock(PAPER_STARTS)
    # A newly promoted model starts on paper, even on a pair that traded live before it
    trading_pair(forced_without_model=True)
    pair_disable(symbol="EUR_USD", actor="ops")
    promoted_model()
    assert pair_enable(symbol="EUR_USD", actor="ops").state == Pair.State.PAPER
    # A pair without a model enabled with force trades live at once, audited as forced
    pair = pair_enable(symbol="GBP_USD", actor="ops", force=True)
    assert (pair.state, pair.forced_without_model) == (Pair.State.TRADING, True)
    entry = AuditLog.objects.get(action="pair.enable", target="GBP_USD")
    assert entry.details["forced"] is True and entry.details["to"] == "trading"
    # Advancing a pair that is not on paper is refused, naming its state
    with pytest.raises(Conflict, match="GBP_USD is trading, not on paper"):
        pair_advance(symbol="GBP_USD", actor="ops")


def test_a_real_entry_in_flight_is_stopped_when_its_pair_moved_to_paper_meanwhile(
    db: None,
) -> None:
    from trading.selectors import entries_stopped

    trading_pair(state=Pair.State.PAPER, paper_started_at=PAPER_STARTS)
    assert entries_stopped("EUR_USD") == "EUR_USD is not trading (state paper, enabled=True)"
    assert entries_stopped("EUR_USD", paper=True) is None
    Pair.objects.filter(symbol="EUR_USD").update(state=Pair.State.TRADING)
    assert entries_stopped("EUR_USD", paper=True) == (
        "EUR_USD is not on paper (state trading, enabled=True)"
    )


def test_a_paper_trade_opened_before_the_stage_began_is_not_in_its_record(db: None) -> None:
    from trading.selectors import paper_record

    model = promoted_model()
    plant_paper_record(model, [15, 15])
    first = Trade.objects.order_by("opened_at").first()
    assert first is not None
    Trade.objects.filter(pk=first.pk).update(opened_at=PAPER_STARTS - timedelta(hours=1))
    assert model.promoted_at is not None
    record = paper_record(
        pair="EUR_USD",
        pair_model_id=model.pk,
        promoted_at=model.promoted_at,
        paper_started_at=PAPER_STARTS,
    )
    assert len(record) == 1
    # The live record never holds a paper trade.
    from trading.selectors import demotion_trades

    since = timezone.now() - timedelta(days=1)
    assert demotion_trades(pair="EUR_USD", pair_model_id=model.pk, since=since) == []


def test_the_parity_apps_reports_answer_the_gate_from_the_day_paper_began(db: None) -> None:
    from parity.models import ParityReport

    # Given a pair five trading days on paper with a record like its model's, and the parity
    # app's own answer (no test registration): a report before paper began with an unexplained
    # mismatch, and clean reports since
    model = promoted_model()
    pair = trading_pair(state=Pair.State.PAPER, paper_started_at=PAPER_STARTS)
    plant_paper_record(model, [15, -15] * 6 + [15] * 2)
    computed = FIVE_DAYS_LATER
    ParityReport.objects.create(
        pair_id="EUR_USD", day=date(2025, 7, 18), unexplained=2, computed_at=computed
    )
    for day in (21, 22, 23):
        ParityReport.objects.create(pair_id="EUR_USD", day=date(2025, 7, day), computed_at=computed)

    # Then the earlier day does not count, and the pair advances
    assert pair_advance_check(symbol=pair.symbol, now=FIVE_DAYS_LATER).allowed

    # When a report since paper began holds an unexplained mismatch
    ParityReport.objects.filter(day=date(2025, 7, 22)).update(unexplained=1)

    # Then the parity gate refuses, counting it
    failed = refused(pair.symbol, FIVE_DAYS_LATER)
    assert set(failed) == {"parity"}
    assert failed["parity"].startswith("1 unexplained signal mismatches in the parity reports")
