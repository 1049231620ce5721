"""The live analysis: each closed M1 candle of a trading pair becomes a TradingSignal (or nothing),
with the same rule functions as the offline evaluation, batched over pairs, idempotent, and sent
to the pair's execution queue after the commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import redis
from django.conf import settings

from marketdata.models import Pair
from marketdata.services import candles_ingest
from qfh import rules
from qfh.evaluation import features as features_module
from qfh.evaluation.evaluate import compute_features, rule_signals
from qfh.evaluation.selectors import candle_arrays
from qfh.models import CandleMetrics, PairModel
from qfh.services import DEFAULT_LIVE_RULE, signals_analyze_closed
from septrader.models import Node
from trading.models import TradingSignal
from trading.routing import execution_queue_for

CONFIRMED = {"confirm_threshold": 0.8, "high_confidence_only": False}
# The published thresholds almost never fire on the testbed's metrics (its entropy is halved), so
# looser ones give the comparison signals of both directions.
LOOSE_PATTERN = {
    "buy_min_coherence": 0.55,
    "buy_max_entropy": 0.45,
    "sell_max_stability": 0.9,
    "sell_min_entropy": 0.45,
}


def make_pair_model(pair: str, rule_type: str, params: dict[str, Any]) -> PairModel:
    """A promoted model with the given rule (its training figures do not matter here)."""
    moment = datetime(2025, 7, 23, tzinfo=UTC)
    return PairModel.objects.create(
        pair_id=pair,
        rule_type=rule_type,
        params=params,
        horizon=1,
        data_start=moment,
        data_end=moment,
        candles=0,
        inputs_hash="0" * 64,
        seed=0,
        search={},
        folds=[],
        out_of_sample={},
        oos_trades=0,
        oos_hit_rate=0.0,
        oos_hit_low=0.0,
        oos_hit_high=0.0,
        oos_expectancy_pips=0.0,
        oos_pnl_pips=0.0,
        oos_max_drawdown_pips=0.0,
        oos_sharpe=0.0,
        gates={},
        passed_gates=True,
        promoted=True,
    )


def trade(pair: str, **changes: Any) -> Pair:
    values = {"enabled": True, "state": Pair.State.TRADING, **changes}
    Pair.objects.filter(symbol=pair).update(**values)
    return Pair.objects.get(symbol=pair)


def load(candles: list[dict[str, Any]], pair: str = "EUR_USD") -> list[datetime]:
    result = candles_ingest(candles=candles, pair=pair, timeframe="M1")
    assert not result.rejected
    return [datetime.fromisoformat(c["time"][:19]).replace(tzinfo=UTC) for c in candles]


def offline_signals(pair: str, rule: rules.Rule) -> dict[datetime, tuple[int, float]]:
    """What the evaluation computes for every stored candle of ``pair`` (direction, confidence)."""
    candles = candle_arrays(pair=pair)
    features, higher = compute_features(candles, rule, xp=np)
    signals = rule_signals(rule.rule_type, rule.params, features, higher)
    return {
        datetime.fromtimestamp(int(time), UTC): (int(direction), float(confidence))
        for time, direction, confidence in zip(
            candles.times, signals.direction, signals.confidence, strict=True
        )
    }


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    """The Celery broker's Redis, to count the messages waiting in a queue."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("CELERY_BROKER_URL must point at Redis")
    client = redis.Redis.from_url(url)
    client.delete("exec.node-a", "execution")
    yield client
    client.delete("exec.node-a", "execution")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rule_type", "params"),
    [("testbed", {}), ("testbed", CONFIRMED), ("pattern_threshold", LOOSE_PATTERN)],
    ids=["testbed", "testbed-confirmed", "pattern-threshold"],
)
def test_the_live_signal_of_each_candle_equals_the_offline_evaluation_of_the_same_candles(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    rule_type: str,
    params: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given 8 hours of real EUR/USD minutes and a promoted model for the pair
    times = load(seed_candles[:480])
    trade("EUR_USD")
    model = make_pair_model("EUR_USD", rule_type, params)
    rule = rules.validate_rule(rule_type, params)
    offline = offline_signals("EUR_USD", rule)

    # When each of the last 110 minutes closes and the live analysis runs for it
    live: dict[datetime, TradingSignal | None] = {}
    for time in times[-110:]:
        with django_capture_on_commit_callbacks(execute=False):
            outcome = signals_analyze_closed(pairs=["EUR_USD"], time=time, xp=np)[0]
        assert outcome.outcome in {"signal", "hold"}, outcome
        live[time] = TradingSignal.objects.filter(pair_id="EUR_USD", time=time).first()

    # Then a signal is stored exactly where the evaluation trades, in its direction and with its
    # confidence, tagged with the model that made it
    names = {rules.BUY: "BUY", rules.SELL: "SELL"}
    for time, signal in live.items():
        direction, confidence = offline[time]
        if direction == rules.HOLD:
            assert signal is None, time
        else:
            assert signal is not None, time
            assert signal.direction == names[direction]
            assert signal.confidence == pytest.approx(confidence, rel=1e-12)
            assert signal.pair_model_id == model.pk
            assert signal.qfh_metrics["rule_type"] == rule_type
    # And the stretch holds both signals and holds, so the comparison means something
    stored = sum(signal is not None for signal in live.values())
    assert 0 < stored < len(live)


@pytest.mark.django_db
def test_pairs_that_close_the_same_minute_share_one_engine_call_and_get_what_they_get_alone(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given two trading pairs with different histories, one of them confirming with M5/M15
    chunk = seed_candles[:300]

    def mirror(price: float) -> float:
        return round(2.4 - price, 5)

    mirrored = [
        {**c, "open": mirror(c["open"]), "close": mirror(c["close"])}
        | {"high": mirror(c["low"]), "low": mirror(c["high"])}
        for c in chunk
    ]
    times = load(chunk, "EUR_USD")
    load(mirrored, "GBP_USD")
    trade("EUR_USD", forced_without_model=True)
    trade("GBP_USD")
    make_pair_model("GBP_USD", "testbed", CONFIRMED)
    calls: list[tuple[int, ...]] = []
    real_trailing = features_module.analyze_trailing

    def counting(bits: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(tuple(np.shape(bits)))
        return real_trailing(bits, *args, **kwargs)

    monkeypatch.setattr(features_module, "analyze_trailing", counting)
    batched: dict[str, dict[datetime, Any]] = {"EUR_USD": {}, "GBP_USD": {}}
    alone: dict[str, dict[datetime, Any]] = {"EUR_USD": {}, "GBP_USD": {}}

    def snapshot(store: dict[str, dict[datetime, Any]], time: datetime) -> None:
        for signal in TradingSignal.objects.filter(time=time):
            store[signal.pair_id][time] = (signal.direction, signal.confidence, signal.qfh_metrics)

    # When the minutes close for both pairs at once
    for time in times[-40:]:
        with django_capture_on_commit_callbacks(execute=False):
            signals_analyze_closed(pairs=["EUR_USD", "GBP_USD"], time=time, xp=np)
        snapshot(batched, time)
    engine_calls = len(calls)
    # and again pair by pair after forgetting the signals
    TradingSignal.objects.all().delete()
    for time in times[-40:]:
        for pair in ("EUR_USD", "GBP_USD"):
            with django_capture_on_commit_callbacks(execute=False):
                signals_analyze_closed(pairs=[pair], time=time, xp=np)
        snapshot(alone, time)

    # Then each batch went through the engine once, for both pairs' M1, M5 and M15 series
    assert engine_calls == 40
    assert calls[0][0] == 2 + 2 * 2
    # And every pair got exactly the signals it gets when analysed alone
    assert batched == alone
    assert batched["EUR_USD"] and batched["GBP_USD"]


@pytest.mark.django_db
def test_a_rerun_stores_no_second_signal_and_the_candle_metrics_once(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given a pair forced to trade without a model, and a minute in which the default rule signals
    times = load(seed_candles[:400])
    trade("EUR_USD", forced_without_model=True)
    offline = offline_signals("EUR_USD", DEFAULT_LIVE_RULE)
    time = next(t for t in reversed(times) if offline[t][0] != rules.HOLD)

    # When the analysis of that minute runs twice (a redelivered message)
    with django_capture_on_commit_callbacks(execute=False) as first_sends:
        first = signals_analyze_closed(pairs=["EUR_USD"], time=time, xp=np)[0]
    with django_capture_on_commit_callbacks(execute=False):
        again = signals_analyze_closed(pairs=["EUR_USD"], time=time, xp=np)[0]

    # Then one signal exists, made by the default rule, priced at the candle's close
    signal = TradingSignal.objects.get(pair_id="EUR_USD", time=time)
    assert first.signal_id == again.signal_id == str(signal.id)
    assert again.reason == "already stored"
    assert signal.pair_model is None and signal.status == TradingSignal.Status.NEW
    assert signal.qfh_metrics["rule_params"] == dict(DEFAULT_LIVE_RULE.params)
    close = next(c["close"] for c in seed_candles if c["time"].startswith(time.strftime("%FT%R")))
    assert signal.price is not None and float(signal.price) == pytest.approx(close)
    for key in ("coherence", "stability", "entropy", "rupture_ratio", "flip_ratio"):
        assert isinstance(signal.qfh_metrics[key], float)
    assert signal.qfh_metrics["damped_value"] == pytest.approx(
        CandleMetrics.objects.get(pair_id="EUR_USD", timeframe="M1", time=time).damped_value
    )
    # And the minute's metrics are stored once, and the execution was asked for after the commit
    assert CandleMetrics.objects.filter(pair_id="EUR_USD", timeframe="M1", time=time).count() == 1
    assert len(first_sends) == 1


@pytest.mark.django_db
def test_only_enabled_trading_pairs_with_a_rule_are_analysed(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    # Given candles for three pairs: one trading without a model, one ready, one disabled
    times = load(seed_candles[:300])
    load(seed_candles[:300], "GBP_USD")
    load(seed_candles[:300], "AUD_USD")
    trade("EUR_USD")
    Pair.objects.filter(symbol="GBP_USD").update(enabled=True, state=Pair.State.READY)
    trade("AUD_USD", enabled=False, forced_without_model=True)

    # When their minute closes
    outcomes = signals_analyze_closed(
        pairs=["EUR_USD", "GBP_USD", "AUD_USD"], time=times[-1], xp=np
    )

    # Then none is analysed, and each says why
    reasons = {outcome.pair: (outcome.outcome, outcome.reason) for outcome in outcomes}
    assert reasons == {
        "AUD_USD": ("skipped", "not an enabled pair in state trading or paper"),
        "GBP_USD": ("skipped", "not an enabled pair in state trading or paper"),
        "EUR_USD": ("skipped", "no promoted pair model"),
    }
    assert not TradingSignal.objects.exists()


@pytest.mark.django_db
def test_a_candle_without_enough_history_or_not_yet_closed_makes_no_signal(
    timescaledb: None, seed_candles: list[dict[str, Any]]
) -> None:
    times = load(seed_candles[:150])
    trade("EUR_USD", forced_without_model=True)

    short = signals_analyze_closed(pairs=["EUR_USD"], time=times[-1], xp=np)[0]
    missing = signals_analyze_closed(
        pairs=["EUR_USD"], time=times[-1] + timedelta(minutes=1), xp=np
    )[0]

    assert short.outcome == missing.outcome == "skipped"
    assert short.reason == "150 closed candles; 224 needed"
    assert missing.reason == "the candle is not stored as closed"


@pytest.mark.django_db
def test_a_signal_is_routed_to_its_pairs_node_queue_after_the_commit(
    timescaledb: None,
    seed_candles: list[dict[str, Any]],
    broker: redis.Redis,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Given a pair executed by node-a, and a minute in which its rule signals
    times = load(seed_candles[:400])
    node = Node.objects.create(name="node-a")
    trade("EUR_USD", forced_without_model=True, node=node)
    offline = offline_signals("EUR_USD", DEFAULT_LIVE_RULE)
    time = next(t for t in reversed(times) if offline[t][0] != rules.HOLD)

    # When the analysis runs and its transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        outcome = signals_analyze_closed(pairs=["EUR_USD"], time=time, xp=np)[0]

    # Then one execution message waits on exec.node-a, none on the default execution queue
    assert outcome.queue == "exec.node-a"
    assert broker.llen("exec.node-a") == 1
    assert broker.llen("execution") == 0


@pytest.mark.django_db
def test_a_pair_without_a_node_executes_on_the_default_queue_and_one_with_a_node_on_its_own() -> (
    None
):
    node = Node.objects.create(name="fra-1")
    pair = Pair.objects.get(symbol="EUR_USD")
    assert execution_queue_for(pair) == "execution"
    pair.node = node
    assert execution_queue_for(pair) == "exec.fra-1"
