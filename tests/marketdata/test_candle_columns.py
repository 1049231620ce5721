"""The batch (column) validation accepts and rejects exactly what the row validation does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.candle_input import (
    MAX_VOLUME,
    CandleTimeError,
    broker_time_micros,
    oanda_candle_fields,
    parse_broker_time,
    parse_candle,
    validate_candle_columns,
)
from marketdata.models import Candle
from marketdata.services import COPY_THRESHOLD, _validate_rows, candles_ingest
from tests.marketdata.test_ingestion import NOW, minute_candles

KNOWN = frozenset({"EUR_USD", "GBP_USD"})
START = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
ROW_OFFSET = 7

# Times in the batch's own form (the column path reads UTC datetimes and OANDA's text)...
ODD_DATETIMES: list[Any] = [
    START + timedelta(seconds=30),
    START + timedelta(microseconds=1),
    START + timedelta(minutes=3),
    NOW,
    NOW + timedelta(minutes=1),
    NOW - timedelta(minutes=1),
    NOW - timedelta(seconds=30),
    datetime(1969, 12, 31, 23, 59, tzinfo=UTC),
]
ODD_TEXT_TIMES: list[Any] = [
    "2026-01-05T00:03:00.000000500Z",
    "2026-01-05T00:03:00.000001000Z",
    "2026-01-05T00:03:30.000000000Z",
    "2025-02-30T00:00:00.000000000Z",
    "0000-01-01T00:00:00.000000000Z",
    "2026-01-05T24:00:00.000000000Z",
    "2026-01-04T23:59:60.000000000Z",
    "2026-01-09T12:00:00.000000000Z",
    "2026-01-09T11:59:00.000000000Z",
    "2026-01-09T12:01:00.000000000Z",
    "1969-12-31T23:59:00.000000000Z",
    "\u0661\u0662\u0663\u0664-01-05T00:04:00.000000000Z",
]
# ... and the others, which send the batch to the row path.
OTHER_TIMES: list[Any] = [
    datetime(2026, 1, 5, 0, 0),  # naive
    datetime(2026, 1, 5, 1, 0, tzinfo=timezone(timedelta(hours=1))),
    "2026-01-05 00:04:00.000000000Z",
    "2026-01-05T00:04:00Z",
    "2026-01-05T00:04:00",
    "yesterday",
    "",
    1767571500,
    None,
    ["2026"],
]
ODD_PRICES: list[Any] = [
    Decimal("1.1"),
    Decimal("1.1000000"),
    Decimal("1.12345678"),
    Decimal("0.000001"),
    Decimal("0.0000001"),
    Decimal("999999999.999999"),
    Decimal("1000000000"),
    Decimal("1E+3"),
    Decimal("-1.1"),
    Decimal("-0"),
    Decimal("0"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    1.1,
    0.0,
    1e-7,
    1e16,
    float("nan"),
    float("inf"),
    1,
    0,
    -1,
    10**30,
    "1.10000",
    "01.5",
    " 1.1",
    "1_1",
    ".5",
    "5.",
    "1.2.3",
    "\u0661.\u0665",  # Arabic-Indic digits, which Decimal reads
    "1e-3",
    "abc",
    "",
    "Infinity",
    True,
    None,
    [1],
]
ODD_VOLUMES: list[Any] = [0, -1, MAX_VOLUME, MAX_VOLUME + 1, 10**20, True, 3.0, "3", None]
ODD_COMPLETES: list[Any] = [True, False, 1, 0, None, "true"]
ODD_PAIRS: list[Any] = ["EUR_USD", "GBP_USD", "XXX_YYY", "", None, ["EUR_USD"]]
ODD_TIMEFRAMES: list[Any] = ["M1", "M5", "M7", "", None]


def base_batch(size: int, text_times: bool, complete: bool) -> list[dict[str, Any]]:
    rows = []
    for minute, candle in enumerate(minute_candles(size)):
        row: dict[str, Any] = dict(candle, complete=complete)
        if not text_times:
            row["time"] = START + timedelta(minutes=minute)
            for name in ("open", "high", "low", "close"):
                row[name] = Decimal(row[name])
        rows.append(row)
    return rows


PRICE_FIELDS = ["open", "high", "low", "close"]
ROW_FIELDS = {
    "volume": st.sampled_from(ODD_VOLUMES),
    "complete": st.sampled_from(ODD_COMPLETES),
    "pair": st.sampled_from(ODD_PAIRS),
    "instrument": st.sampled_from(ODD_PAIRS),
    "timeframe": st.sampled_from(ODD_TIMEFRAMES),
    "granularity": st.sampled_from(ODD_TIMEFRAMES),
    "time": st.sampled_from(OTHER_TIMES),
}
rows = st.integers(0, 19)


def changes(text_times: bool) -> st.SearchStrategy[list[tuple[int, str, Any]]]:
    own_times = st.sampled_from(ODD_TEXT_TIMES if text_times else ODD_DATETIMES)
    common = st.one_of(
        st.tuples(rows, st.sampled_from(PRICE_FIELDS), st.sampled_from(ODD_PRICES)),
        st.tuples(rows, st.just("time"), own_times),
        st.tuples(rows, st.just("volume"), st.sampled_from(ODD_VOLUMES)),
        st.tuples(rows, st.just("complete"), st.sampled_from(ODD_COMPLETES)),
    )
    rare = st.one_of(
        st.tuples(rows, st.sampled_from(sorted(ROW_FIELDS))).flatmap(
            lambda where: st.tuples(st.just(where[0]), st.just(where[1]), ROW_FIELDS[where[1]])
        ),
        # A field left out, a row that is not an object, a time repeated from another row.
        st.tuples(rows, st.just("-"), st.sampled_from([*PRICE_FIELDS, *ROW_FIELDS])),
        st.tuples(rows, st.just("row"), st.sampled_from([None, [], "candle"])),
        st.tuples(rows, st.just("repeat"), rows),
    )
    return st.lists(st.one_of(common, common, common, common, common, rare), max_size=8)


def apply(batch: list[Any], changes: list[tuple[int, str, Any]]) -> list[Any]:
    for index, field, value in changes:
        if field == "row":
            batch[index] = value
        elif not isinstance(batch[index], dict):
            continue
        elif field == "-":
            batch[index].pop(value, None)
        elif field == "repeat":
            if isinstance(batch[value], dict):
                batch[index]["time"] = batch[value].get("time")
        else:
            batch[index][field] = value
    return batch


def exact(rows: list[Any]) -> list[tuple[str, ...]]:
    # Equal Decimals may differ in their places (1.1 and 1.10): compare the text as well.
    return [tuple(map(repr, row)) for row in rows]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), text_times=st.booleans(), complete=st.booleans())
def test_the_batch_validation_agrees_with_the_row_validation(
    data: st.DataObject, text_times: bool, complete: bool
) -> None:
    batch = apply(base_batch(20, text_times, complete), data.draw(changes(text_times)))

    rows, reference = _validate_rows(batch, "EUR_USD", "M1", NOW, ROW_OFFSET, KNOWN)
    checked = validate_candle_columns(
        batch, pair="EUR_USD", timeframe="M1", known_pairs=KNOWN, now=NOW, row_offset=ROW_OFFSET
    )

    # A batch the column path declines is validated row by row; one it takes must come out the
    # same: the same valid candles, and the same rejections with the same messages, in order.
    if checked is not None:
        columns, rejected = checked
        assert exact(columns.rows()) == exact(rows)
        assert rejected == reference.rejected
        assert [str(r) for r in rejected] == [str(r) for r in reference.rejected]
        assert reference.unchanged == 0


def oanda_form(row: Any) -> Any:
    """A flat candle as OANDA's candles response holds it (what a backfill page brings)."""
    if not isinstance(row, dict):
        return row
    candle = {key: row[key] for key in ("time", "volume", "complete") if key in row}
    candle["mid"] = {key[0]: row[key] for key in ("open", "high", "low", "close") if key in row}
    return candle


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    complete=st.booleans(),
    broken=st.lists(st.tuples(rows, st.sampled_from([None, "1.1", [], {}])), max_size=3),
)
def test_oanda_candles_are_validated_as_their_flattened_fields(
    data: st.DataObject, complete: bool, broken: list[tuple[int, Any]]
) -> None:
    batch = [
        oanda_form(row) for row in apply(base_batch(20, True, complete), data.draw(changes(True)))
    ]
    for index, component in broken:  # a candle without a usable price component
        if isinstance(batch[index], dict):
            batch[index]["mid"] = component

    checked = validate_candle_columns(
        batch,
        pair="EUR_USD",
        timeframe="M1",
        known_pairs=KNOWN,
        now=NOW,
        row_offset=ROW_OFFSET,
        oanda_price="mid",
    )

    if checked is not None:
        flat = [oanda_candle_fields(candle, "mid") for candle in batch]
        rows, reference = _validate_rows(flat, "EUR_USD", "M1", NOW, ROW_OFFSET, KNOWN)
        columns, rejected = checked
        assert exact(columns.rows()) == exact(rows)
        assert rejected == reference.rejected
        assert reference.unchanged == 0


@pytest.mark.parametrize("text_times", [True, False], ids=["oanda-text", "datetimes"])
@pytest.mark.parametrize("complete", [True, False])
def test_ordinary_batches_take_the_column_path(text_times: bool, complete: bool) -> None:
    # Given a batch with a candle whose high equals its close (a tie to compare exactly) and a
    # candle with a price that is not a number
    batch = base_batch(500, text_times, complete)
    tied = batch[100]
    tied["high"] = tied["close"] = max(tied["open"], tied["close"], key=Decimal)
    batch[200]["close"] = "abc"

    # When it is validated as columns
    checked = validate_candle_columns(
        batch, pair="EUR_USD", timeframe="M1", known_pairs=KNOWN, now=NOW
    )

    # Then the column path takes it, keeps the tied candle and rejects only the other
    assert checked is not None
    columns, rejected = checked
    assert len(columns) == 499
    assert [(r.row, r.field) for r in rejected] == [(200, "close")]


def test_a_batch_with_a_time_twice_is_left_to_the_row_path() -> None:
    batch = base_batch(10, True, True)
    batch[5]["time"] = batch[4]["time"]

    assert (
        validate_candle_columns(batch, pair="EUR_USD", timeframe="M1", known_pairs=KNOWN, now=NOW)
        is None
    )


def test_a_volume_too_large_for_the_table_is_rejected() -> None:
    candle = dict(minute_candles(1)[0], volume=MAX_VOLUME + 1)

    rejection = parse_candle(0, candle, pair="EUR_USD", timeframe="M1", known_pairs=KNOWN, now=NOW)

    assert str(rejection).endswith(f"volume={MAX_VOLUME + 1} is too large (at most {MAX_VOLUME})")


@pytest.mark.django_db
def test_prices_in_every_accepted_form_are_stored_alike_by_both_paths(timescaledb: None) -> None:
    # Given the same large batch with prices as text, Decimals, floats and integers
    forms: list[Callable[[str], Any]] = [str, Decimal, float, lambda text: text.rjust(9, "0")]
    candles = minute_candles(COPY_THRESHOLD + 10)
    for index, candle in enumerate(candles):
        form = forms[index % len(forms)]
        for name in ("open", "high", "low", "close"):
            candle[name] = form(candle[name])
    candles[7].update(open=1, high=2, low=1, close=2)

    # When one copy goes through the column path and the other row by row, in small batches
    large = candles_ingest(candles=candles, pair="EUR_USD", timeframe="M1", now=NOW)
    for start in range(0, len(candles), 100):
        candles_ingest(
            candles=candles[start : start + 100], pair="GBP_USD", timeframe="M1", now=NOW
        )

    # Then both pairs hold the same candles
    columns = ("time", "open", "high", "low", "close", "volume", "complete")
    eur = list(Candle.objects.filter(pair_id="EUR_USD").order_by("time").values_list(*columns))
    gbp = list(Candle.objects.filter(pair_id="GBP_USD").order_by("time").values_list(*columns))
    assert (large.stored, large.rejected) == (COPY_THRESHOLD + 10, [])
    assert eur == gbp
    assert len(eur) == COPY_THRESHOLD + 10


@settings(max_examples=300, deadline=None)
@given(
    moments=st.lists(
        st.datetimes(
            min_value=datetime(1960, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
        ),
        max_size=20,
    ),
    noise=st.lists(st.text(alphabet="0123456789-T:.Z 9", min_size=28, max_size=31), max_size=10),
)
def test_reading_a_column_of_broker_times_agrees_with_the_row_parser(
    moments: list[datetime], noise: list[str]
) -> None:
    # OANDA's form (whole seconds, and some with microseconds), near misses and other text
    texts = [moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z" for moment in moments]
    texts += [moment.strftime("%Y-%m-%dT%H:%M:%S.000000000Z") for moment in moments]
    texts += noise

    micros, readable = broker_time_micros(texts)

    for text, micro, ok in zip(texts, micros.tolist(), readable.tolist(), strict=True):
        try:
            expected = (parse_broker_time(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
                microseconds=1
            )
        except CandleTimeError:
            assert not ok, text
        else:
            assert ok, text
            assert micro == expected, text
