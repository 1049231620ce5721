from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from marketdata.models import Candle
from tests.conftest import SEED_CANDLES


def run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("load_candles", *args, stdout=out, stderr=StringIO(), no_progress=True, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_loading_the_seed_file_twice_stores_it_once(timescaledb: None, seed_candles: list) -> None:
    first = run(str(SEED_CANDLES), pair="EUR_USD", timeframe="M1")
    second = run(str(SEED_CANDLES), pair="EUR_USD", timeframe="M1")

    assert f"stored {len(seed_candles)}, unchanged 0, rejected 0" in first
    assert f"stored 0, unchanged {len(seed_candles)}, rejected 0" in second
    assert Candle.objects.filter(pair_id="EUR_USD", timeframe="M1").count() == len(seed_candles)
    # The seed writes floats; they are stored as the five-decimal prices they stand for.
    first_candle = Candle.objects.filter(pair_id="EUR_USD").order_by("time").first()
    assert first_candle is not None
    assert str(first_candle.close.normalize()) == repr(seed_candles[0]["close"])


@pytest.mark.django_db
def test_an_oanda_candles_response_is_loaded_with_the_chosen_price(
    timescaledb: None, tmp_path: Path, seed_candles: list
) -> None:
    # Given an OANDA candles response with bid and ask, the last candle still forming
    candles = []
    for index, candle in enumerate(seed_candles[:30]):
        bid = {k[0]: f"{candle[k]:.5f}" for k in ("open", "high", "low", "close")}
        ask = {k: f"{float(v) + 0.00012:.5f}" for k, v in bid.items()}
        candles.append(
            {
                "time": candle["time"],
                "volume": candle["volume"],
                "complete": index < 29,
                "bid": bid,
                "ask": ask,
            }
        )
    document = {"instrument": "GBP_USD", "granularity": "M1", "candles": candles}
    path = tmp_path / "oanda.json"
    path.write_text(json.dumps(document))

    # When it is loaded asking for the ask side, naming neither the pair nor the timeframe
    output = run(str(path), price="ask")

    # Then the file's instrument and granularity are used, and the ask prices are stored
    assert "GBP_USD M1: stored 30, unchanged 0, rejected 0" in output
    stored = Candle.objects.filter(pair_id="GBP_USD").order_by("time")
    assert [str(c.close.normalize()) for c in stored] == [
        str(float(c["ask"]["c"])) for c in candles
    ]
    assert [c.complete for c in stored][-2:] == [True, False]


@pytest.mark.django_db
def test_a_file_with_bad_candles_loads_the_rest_and_exits_non_zero(
    timescaledb: None, tmp_path: Path, seed_candles: list
) -> None:
    broken = [dict(c) for c in seed_candles[:100]]
    broken[10]["high"] = broken[10]["low"] - 0.001
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    err = StringIO()

    with pytest.raises(CommandError, match="1 candle"):
        call_command(
            "load_candles",
            str(path),
            pair="EUR_USD",
            timeframe="M1",
            no_progress=True,
            stdout=StringIO(),
            stderr=err,
        )

    assert "rejected row 10 (EUR_USD 2025-07-23T20:50:00.000000Z): high=" in err.getvalue()
    assert Candle.objects.filter(pair_id="EUR_USD").count() == 99


@pytest.mark.django_db
def test_a_file_that_is_not_json_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CommandError, match=r"notes\.txt: is not JSON"):
        run(str(path), pair="EUR_USD", timeframe="M1")
