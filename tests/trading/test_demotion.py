"""Automatic demotion: a live pair whose results fall far below its model's out-of-sample results
is switched to reducing-only, alerted and audited once (trading/demotion.py, README)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

import pytest
from celery import current_app
from django.utils import timezone

import trading.tasks  # noqa: F401  (registers the tasks the ledger enqueues by name)
from marketdata.models import Pair
from monitoring.models import Alert
from monitoring.services import alerts_evaluate
from qfh.models import PairModel
from septrader.models import AuditLog
from septrader.services import config_set
from trading import ledger
from trading.demotion import (
    DemotionSettings,
    LiveTrade,
    ModelFigures,
    max_drawdown_pips,
    should_demote,
    wilson_bounds,
    z_score,
)
from trading.execution import signal_execute
from trading.models import Order, Trade
from trading.reconciliation import account_reconcile
from trading.selectors import pairs_status
from trading.services import pair_demotion_check, pair_enable, pairs_demotion_check

from .conftest import make_signal, trading_pair

ACCOUNT = "101-001-0000000-001"
# A model that won 55 % of 400 out-of-sample trades (Wilson 95 %: 0.501 to 0.598) and fell at
# most 40 pips from a peak.
MODEL = ModelFigures(trades=400, hit_rate=0.55, max_drawdown_pips=40.0)
SETTINGS = DemotionSettings()


def losses(n: int, pips: str = "-15") -> list[LiveTrade]:
    return [LiveTrade(net_pl=Decimal(pips), net_pips=Decimal(pips)) for _ in range(n)]


def wins(n: int, pips: str = "15") -> list[LiveTrade]:
    return [LiveTrade(net_pl=Decimal(pips), net_pips=Decimal(pips)) for _ in range(n)]


# ----- the statistics (pure) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hits", "trades", "low", "high"),
    [
        # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
        # method 3 (Wilson score, no continuity correction), 95 %.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # 5 of 20: p = 0.25, z = 1.95996: centre 0.29028, half-width 0.17842.
        (5, 20, 0.1119, 0.4687),
    ],
)
def test_the_wilson_bounds_match_the_published_worked_values(
    hits: int, trades: int, low: float, high: float
) -> None:
    found_low, found_high = wilson_bounds(hits, trades, Decimal(95))
    assert found_low == pytest.approx(low, abs=5e-5)
    assert found_high == pytest.approx(high, abs=5e-5)


def test_the_confidence_sets_the_normal_quantile_of_a_two_sided_interval() -> None:
    assert z_score(Decimal(95)) == pytest.approx(1.959964, abs=1e-6)
    assert z_score(Decimal(90)) == pytest.approx(1.644854, abs=1e-6)
    assert z_score(Decimal(99)) == pytest.approx(2.575829, abs=1e-6)


def test_the_drawdown_is_the_deepest_fall_from_a_peak_that_starts_at_zero() -> None:
    pips = [Decimal(v) for v in ("10", "-5", "20", "-30", "-10", "5")]
    # Peak 25 after the third trade, trough -15 after the fifth.
    assert max_drawdown_pips(pips) == 40.0
    assert max_drawdown_pips([Decimal(-3), Decimal(-4)]) == 7.0
    assert max_drawdown_pips([]) == 0.0


def test_fewer_than_the_minimum_trades_never_demote_even_when_all_lost() -> None:
    verdict = should_demote(losses(19, "-100"), MODEL, SETTINGS)
    assert not verdict.demote
    assert "fewer than the 20" in verdict.reason


def test_a_losing_streak_of_the_minimum_length_demotes_on_the_hit_rate_and_the_drawdown() -> None:
    verdict = should_demote(losses(20), MODEL, SETTINGS)
    assert verdict.demote
    assert verdict.failed == ("hit_rate", "drawdown")
    assert verdict.live_hit_high == pytest.approx(0.1611, abs=5e-5)
    assert verdict.oos_hit_low == pytest.approx(0.5010, abs=5e-4)
    assert "Wilson 95% upper bound 0.1611 below" in verdict.reason
    assert "300.0 pips above 2 x the out-of-sample 40.0 pips = 80.0 pips" in verdict.reason


def test_results_inside_the_models_interval_do_not_demote() -> None:
    # 11 of 20 (55 %): the live interval reaches 0.74, far above the model's lower bound.
    alternating = [trade for pair in zip(wins(9), losses(9), strict=True) for trade in pair]
    verdict = should_demote(alternating + wins(2), MODEL, SETTINGS)
    assert not verdict.demote
    assert verdict.failed == ()
    assert "not below" in verdict.reason and "within" in verdict.reason


def test_a_drawdown_beyond_the_multiple_demotes_even_with_a_model_like_hit_rate() -> None:
    verdict = should_demote(wins(12, "5") + losses(10, "-10"), MODEL, SETTINGS)
    assert verdict.demote
    assert verdict.failed == ("drawdown",)
    assert verdict.live_drawdown_pips == 100.0


def test_a_model_without_an_out_of_sample_drawdown_is_judged_on_its_hit_rate_only() -> None:
    flat = ModelFigures(trades=400, hit_rate=0.55, max_drawdown_pips=0.0)
    verdict = should_demote(wins(12, "5") + losses(10, "-10"), flat, SETTINGS)
    assert not verdict.demote


# ----- the service, the ledger hook, the alert and the audit (real database) ---------------------


@pytest.fixture
def live_pair() -> tuple[Pair, PairModel]:
    """EUR_USD trading live on a promoted model with MODEL's out-of-sample figures."""
    moment = datetime(2025, 7, 1, tzinfo=UTC)
    model = PairModel.objects.create(
        pair_id="EUR_USD",
        rule_type="pattern",
        params={},
        horizon=1,
        data_start=moment,
        data_end=moment,
        candles=0,
        inputs_hash="0" * 64,
        seed=0,
        search={},
        folds=[],
        out_of_sample={},
        oos_trades=MODEL.trades,
        oos_hit_rate=MODEL.hit_rate,
        oos_hit_low=0.501,
        oos_hit_high=0.598,
        oos_expectancy_pips=1.0,
        oos_pnl_pips=400.0,
        oos_max_drawdown_pips=MODEL.max_drawdown_pips,
        oos_sharpe=1.0,
        gates={},
        passed_gates=True,
        promoted=True,
        promoted_at=timezone.now() - timedelta(minutes=1),
    )
    pair = trading_pair("EUR_USD", forced_without_model=False)
    return pair, model


@pytest.fixture
def close_trades(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> Iterator[Callable[..., None]]:
    """Open trades from the model's signals and close them through the ledger, the way the
    broker's fills arrive; the check the ledger enqueues on each close runs at once."""

    class RunTasksHere:
        def send_task(self, name: str, args: list[Any]) -> None:
            current_app.tasks[name].apply(args=args)

    monkeypatch.setattr(ledger, "current_app", RunTasksHere())
    numbers = count(1)

    def close(model: PairModel, results_pips: list[int], pair: str = "EUR_USD") -> None:
        for pips in results_pips:
            number = next(numbers)
            signal = make_signal(
                pair,
                minute=f"2025-07-24T{8 + number // 60:02d}:{number % 60:02d}:00Z",
                pair_model=model,
            )
            order = Order.objects.create(
                client_id=f"demotion-{number}",
                account_id=ACCOUNT,
                signal=signal,
                pair_id=pair,
                units=Decimal(10_000),
                status=Order.Status.FILLED,
                fill_price=Decimal("1.17000"),
            )
            Trade.objects.create(
                account_id=ACCOUNT,
                broker_trade_id=str(number),
                order=order,
                pair_id=pair,
                initial_units=Decimal(10_000),
                current_units=Decimal(10_000),
                open_price=Decimal("1.17000"),
                opened_at=timezone.now(),
            )
            price = Decimal("1.17000") + Decimal(pips) * Decimal("0.0001")
            fill = {
                "id": str(10_000 + number),
                "time": "2025-07-24T10:00:00.000000000Z",
                "type": "ORDER_FILL",
                "instrument": pair,
                "units": "-10000",
                "price": str(price),
                "reason": "TAKE_PROFIT_ORDER" if pips > 0 else "STOP_LOSS_ORDER",
                "tradesClosed": [
                    {
                        "tradeID": str(number),
                        "units": "-10000",
                        "price": str(price),
                        "realizedPL": str(Decimal(pips)),
                        "financing": "-0.1000",
                    }
                ],
            }
            with django_capture_on_commit_callbacks(execute=True):
                ledger.transactions_apply(account_id=ACCOUNT, transactions=[fill])

    yield close


pytestmark = pytest.mark.django_db


def test_a_planted_losing_streak_demotes_the_pair_to_reducing_only_with_one_alert_and_audit(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    # Given a pair trading live on its model, a few good trades after the promotion
    _, model = live_pair
    close_trades(model, [15, 15, 15])
    # When a losing streak follows: 2 wins in the last 20 closes
    close_trades(model, [-15] * 16)
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.TRADING
    close_trades(model, [-15])
    # Then the close that completes the record demotes it: no entries, exits only
    pair = Pair.objects.get(symbol="EUR_USD")
    assert pair.state == Pair.State.REDUCING
    assert not pair.enabled
    assert "3 of 20 trades" in pair.state_reason
    # ... audited once, by the system, with the figures
    audits = list(AuditLog.objects.filter(action="pair.demote", target="EUR_USD"))
    assert len(audits) == 1
    assert audits[0].actor == "system:demotion"
    assert audits[0].details["pair_model"] == model.pk
    assert audits[0].details["figures"]["trades"] == 20
    assert audits[0].details["figures"]["failed"] == ["hit_rate", "drawdown"]
    # ... the status the console and /api/pairs/status read says so and why
    status = pairs_status(symbol="EUR_USD")[0]
    assert status["state"] == "reducing"
    assert "Wilson 95% upper bound" in status["state_reason"]
    # ... and the alert names the figures
    alerts_evaluate()
    alert = Alert.objects.get(condition="pair.demoted:EUR_USD", resolved_at__isnull=True)
    assert alert.severity == "critical"
    assert "EUR_USD demoted to reducing-only" in alert.message
    assert "3 of 20 trades" in alert.message
    assert alert.details["figures"]["trades"] == 20


def test_a_pair_performing_like_its_model_keeps_trading(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    close_trades(model, [15, -15] * 12)
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.TRADING
    assert not AuditLog.objects.filter(action="pair.demote").exists()
    check = pair_demotion_check(symbol="EUR_USD")
    assert check.verdict is not None and check.verdict.trades == 24
    assert not check.demoted


def test_fewer_than_the_configured_minimum_never_demotes(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    config_set(key="demotion.min_trades", value=30, updated_by="ops")
    close_trades(model, [-50] * 29)
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.TRADING
    close_trades(model, [-50])
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.REDUCING


def test_trades_before_the_promotion_or_of_another_model_do_not_count(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    close_trades(model, [-15] * 20)
    Pair.objects.filter(symbol="EUR_USD").update(state=Pair.State.TRADING, enabled=True)
    AuditLog.objects.filter(action="pair.demote").delete()
    # A promotion again restarts the record: the 20 losses are history.
    PairModel.objects.filter(pk=model.pk).update(promoted_at=timezone.now())
    check = pair_demotion_check(symbol="EUR_USD")
    assert not check.demoted
    assert check.verdict is not None and check.verdict.trades == 0


def test_demoting_twice_audits_once_and_the_beat_check_leaves_a_demoted_pair_alone(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    close_trades(model, [-15] * 20)
    again = pair_demotion_check(symbol="EUR_USD")
    assert not again.demoted and "not trading" in again.skipped
    assert pairs_demotion_check() == []
    assert AuditLog.objects.filter(action="pair.demote").count() == 1


def test_an_operator_who_enables_a_demoted_pair_gives_it_a_fresh_record_and_the_alert_clears(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    close_trades(model, [-15] * 20)
    alerts_evaluate()
    assert Alert.objects.filter(condition="pair.demoted:EUR_USD", resolved_at__isnull=True)
    pair_enable(symbol="EUR_USD", actor="ops")
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.TRADING
    check = pair_demotion_check(symbol="EUR_USD")
    assert not check.demoted and check.verdict is not None and check.verdict.trades == 0
    alerts_evaluate()
    assert not Alert.objects.filter(
        condition="pair.demoted:EUR_USD", resolved_at__isnull=True
    ).exists()


def test_demotion_switched_off_leaves_a_losing_pair_trading(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None]
) -> None:
    _, model = live_pair
    config_set(key="demotion.enabled", value=False, updated_by="ops")
    close_trades(model, [-15] * 20)
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.TRADING


def test_beat_checks_every_live_pair_each_minute_on_the_execution_queue(
    live_pair: tuple[Pair, PairModel], close_trades: Callable[..., None], settings: Any
) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["trading.check_demotions"]
    assert entry["task"] == "trading.check_demotions_task"
    assert entry["schedule"] == 60.0 and entry["options"] == {"expires": 50}
    assert current_app.amqp.router.route({}, entry["task"])["queue"].name == "execution"
    # A losing record whose closes the ledger hook did not see (switched off here) is still
    # demoted by the beat task.
    _, model = live_pair
    config_set(key="demotion.enabled", value=False, updated_by="ops")
    close_trades(model, [-15] * 20)
    config_set(key="demotion.enabled", value=True, updated_by="ops")
    assert current_app.tasks[entry["task"]].apply().get() == ["EUR_USD"]
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.REDUCING


def test_a_trade_closed_by_hand_at_the_broker_and_learnt_by_reconciliation_checks_its_pair(
    broker: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    # Given a live trade at the simulated broker, closed there by hand
    trading_pair()
    signal_execute(signal_id=make_signal().pk)
    trade = Trade.objects.get()
    broker.advance(1800)
    broker.post(f"trades/{trade.broker_trade_id}/close", {"units": "ALL"}, method="PUT")
    sent: list[tuple[str, list[Any]]] = []

    class RecordTasks:
        def send_task(self, name: str, args: list[Any]) -> None:
            sent.append((name, args))

    monkeypatch.setattr(ledger, "current_app", RecordTasks())
    # When reconciliation learns of the close
    with django_capture_on_commit_callbacks(execute=True):
        account_reconcile(client=broker.client())
    # Then the pair's demotion check is enqueued
    assert Trade.objects.get().state == Trade.State.CLOSED
    assert ("trading.check_pair_demotion_task", ["EUR_USD"]) in sent
