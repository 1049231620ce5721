"""Each pair on its instrument class's schedule (or its own), read from the database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from marketdata.models import Pair
from septrader.services import config_set
from trading import services as trading_services
from trading.market import market_is_open, market_status_at, pair_schedule
from trading.models import MarketSchedule, PairSchedule, ScheduleBreak, ScheduleSession, Trade
from trading.schedule import CRYPTO, FX, METALS
from trading.services import market_state_refresh

pytestmark = pytest.mark.django_db

# 2025-06-04 is a Wednesday in summer: 17:05 New York is 21:05 UTC.
WEDNESDAY_17_05 = datetime(2025, 6, 4, 21, 5, tzinfo=UTC)
SATURDAY_NOON = datetime(2025, 6, 7, 16, 0, tzinfo=UTC)
FRIDAY_16_45 = datetime(2025, 6, 6, 20, 45, tzinfo=UTC)


def instrument(symbol: str, instrument_type: str) -> Pair:
    return Pair.objects.create(
        symbol=symbol, instrument_type=instrument_type, pip_location=-2, display_precision=3
    )


def open_trade(pair: str) -> Trade:
    return Trade.objects.create(
        account_id="001-001-0000001-001",
        broker_trade_id=str(Trade.objects.count() + 1),
        pair_id=pair,
        initial_units=Decimal(1),
        current_units=Decimal(1),
        open_price=Decimal("1.10000"),
        opened_at=WEDNESDAY_17_05,
    )


def test_the_migration_seeds_the_fx_metals_and_crypto_schedules_as_the_code_defaults() -> None:
    assert pair_schedule(None) == FX
    assert pair_schedule("EUR_USD") == FX
    instrument("XAU_USD", Pair.InstrumentType.METAL)
    instrument("BTC_USD", Pair.InstrumentType.CFD)
    assert pair_schedule("XAU_USD") == METALS
    assert pair_schedule("BTC_USD") == CRYPTO


def test_gold_is_closed_from_17_00_to_18_00_new_york_while_eur_usd_is_open_at_17_05() -> None:
    # Given a metal and a currency pair on a Wednesday at 17:05 New York.
    instrument("XAU_USD", Pair.InstrumentType.METAL)
    # When the executor asks, then gold is in its daily break and EUR_USD trades.
    gold = market_status_at(WEDNESDAY_17_05, pair="XAU_USD")
    assert not gold.open
    assert gold.reason == "daily break: 17:00-18:00 New York"
    assert (
        gold.summary()
        == "closed (daily break: 17:00-18:00 New York); reopens Wed 2025-06-04 18:00 New York"
    )
    assert market_is_open("EUR_USD", WEDNESDAY_17_05)[0]


def test_bitcoin_reads_open_on_a_saturday_while_eur_usd_reads_market_closed() -> None:
    instrument("BTC_USD", Pair.InstrumentType.CFD)
    assert market_is_open("BTC_USD", SATURDAY_NOON) == (True, "open; no closure ahead")
    is_open, reason = market_is_open("EUR_USD", SATURDAY_NOON)
    assert not is_open
    assert reason.startswith("closed (weekend: Friday 17:00 to Sunday 17:00 New York)")
    # The market as a whole (the beat task, monitoring, the dashboard) stays the FX market.
    assert not market_status_at(SATURDAY_NOON).open


def test_a_pair_override_puts_one_pair_on_another_schedule() -> None:
    # Given EUR_USD moved to the crypto schedule.
    PairSchedule.objects.create(
        pair_id="EUR_USD", schedule=MarketSchedule.objects.get(name="Crypto")
    )
    # Then it reads open on Saturday while another currency pair does not.
    assert market_is_open("EUR_USD", SATURDAY_NOON)[0]
    assert not market_is_open("GBP_USD", SATURDAY_NOON)[0]


def test_an_edited_schedule_is_read_on_the_next_question() -> None:
    metals = MarketSchedule.objects.get(instrument_type=Pair.InstrumentType.METAL)
    metals.breaks.update(starts_at="17:00", ends_at="17:04")
    instrument("XAG_USD", Pair.InstrumentType.METAL)
    assert market_is_open("XAG_USD", WEDNESDAY_17_05)[0]


def test_a_session_ending_before_it_starts_is_refused_naming_the_field_and_value() -> None:
    fx = MarketSchedule.objects.get(name="FX")
    session = ScheduleSession(
        schedule=fx, opens_day=4, opens_at="17:00", closes_day=6, closes_at="17:00"
    )
    with pytest.raises(ValidationError) as refused:
        session.full_clean()
    assert refused.value.message_dict == {
        "closes_at": [
            "closes_at=Sunday 17:00 is not valid; expected a close after the open (Friday 17:00) "
            "within one week running from Sunday to Saturday."
        ]
    }
    daily_break = ScheduleBreak(schedule=fx, starts_at="17:03", ends_at="16:58")
    with pytest.raises(ValidationError, match="ends_at=16:58 is not valid"):
        daily_break.full_clean()


def test_weekend_flattening_leaves_crypto_trades_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a EUR_USD and a BTC_USD trade open 15 minutes before the Friday close.
    instrument("BTC_USD", Pair.InstrumentType.CFD)
    open_trade("EUR_USD")
    open_trade("BTC_USD")
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(trading_services, "trades_close_all", lambda **kwargs: calls.append(kwargs))
    config_set(key="market.flatten_before_weekend_minutes", value=30)
    # When the beat refreshes the market, then only EUR_USD is flattened.
    assert market_state_refresh(now=FRIDAY_16_45).flattened
    assert calls == [
        {"actor": "system:schedule", "pair": "EUR_USD", "reason": "flatten before the weekend"}
    ]


def test_a_book_of_crypto_trades_only_is_not_flattened(monkeypatch: pytest.MonkeyPatch) -> None:
    instrument("BTC_USD", Pair.InstrumentType.CFD)
    open_trade("BTC_USD")
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(trading_services, "trades_close_all", lambda **kwargs: calls.append(kwargs))
    config_set(key="market.flatten_before_weekend_minutes", value=30)
    assert not market_state_refresh(now=FRIDAY_16_45).flattened
    assert calls == []


# ----- each process keeps the schedules a few seconds --------------------------------------------


def test_a_market_question_reads_only_the_settings_and_the_maintenance_windows_once_warm(
    django_assert_num_queries: Any,
) -> None:
    # Given the schedules read once by this process (the executor asks before every entry)
    instrument("BTC_USD", Pair.InstrumentType.CFD)
    market_status_at(SATURDAY_NOON, pair="BTC_USD")

    # When it asks again, for either pair, then two queries answer: market.* and the windows
    with django_assert_num_queries(2):
        assert market_status_at(SATURDAY_NOON, pair="BTC_USD").open
    with django_assert_num_queries(2):
        assert not market_status_at(SATURDAY_NOON, pair="EUR_USD").open


def test_an_edit_in_this_process_counts_at_once(db: None) -> None:
    # Given gold's schedule read while it was a metal
    gold = instrument("XAU_USD", Pair.InstrumentType.METAL)
    assert not market_status_at(WEDNESDAY_17_05, pair="XAU_USD").open

    # When the console gives gold a crypto schedule of its own (saved: signals fire)
    PairSchedule.objects.create(
        pair=gold, schedule=MarketSchedule.objects.get(instrument_type="CFD")
    )

    # Then the next question reads the new schedule
    assert market_status_at(WEDNESDAY_17_05, pair="XAU_USD").open


def test_an_edit_by_another_process_counts_within_the_time_a_process_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trading import market

    clock = [1000.0]
    monkeypatch.setattr(market, "_monotonic", lambda: clock[0])
    instrument("XAU_USD", Pair.InstrumentType.METAL)
    assert not market_status_at(WEDNESDAY_17_05, pair="XAU_USD").open

    # When another process turns gold into a crypto CFD (no signal reaches this one)
    Pair.objects.filter(symbol="XAU_USD").update(instrument_type=Pair.InstrumentType.CFD)

    # Then this process still answers from its copy, and reads the change once it is too old
    clock[0] += market.SCHEDULES_TTL_SECONDS - 0.5
    assert not market_status_at(WEDNESDAY_17_05, pair="XAU_USD").open
    clock[0] += 1.0
    assert market_status_at(WEDNESDAY_17_05, pair="XAU_USD").open
