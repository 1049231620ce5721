"""Candle ingestion fed hypothesis batches of valid candles mixed with junk: the call never
raises, each bad row is refused with a message naming its field, every valid row is stored
exactly as sent, and nothing else in the table changes.

About 10 s: 40 batches of up to 12 rows against the real TimescaleDB.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.candle_input import parse_candle
from marketdata.models import Candle
from marketdata.services import candles_ingest

NOW = datetime(2026, 1, 9, 12, 0, tzinfo=UTC)
# Fuzzed candles fall in this window; the sentinel candles lie before it and must never change.
WINDOW = datetime(2026, 1, 6, 0, 0, tzinfo=UTC)
SENTINEL_TIME = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
PAIRS = ("EUR_USD", "GBP_USD", "USD_JPY")
PRICE_FIELDS = ("open", "high", "low", "close")

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _time_forms(moment: datetime) -> st.SearchStrategy[Any]:
    """The ways a broker or a file writes one (valid) candle time."""
    seconds = int(moment.timestamp())
    return st.sampled_from(
        [
            moment.strftime("%Y-%m-%dT%H:%M:%S.000000000Z"),
            moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            moment.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
            f"{seconds}.000000000",
            seconds,
            moment,
        ]
    )


@st.composite
def valid_candle(draw: st.DrawFn, minute: int) -> dict[str, Any]:
    moment = WINDOW + timedelta(minutes=minute)
    low = draw(st.integers(50_000, 200_000))
    high = low + draw(st.integers(0, 500))
    open_, close = (draw(st.integers(low, high)) for _ in range(2))
    number = draw(st.sampled_from(["str", "decimal", "float", "int"]))

    def price(units: int) -> Any:
        value = Decimal(units) / 100_000
        if number == "str":
            return str(value)
        if number == "decimal":
            return value
        if number == "float":
            return float(value)
        return units  # an integer price: a JPY-like 150000 is valid too

    row: dict[str, Any] = {
        draw(st.sampled_from(["pair", "instrument"])): draw(st.sampled_from(PAIRS)),
        draw(st.sampled_from(["timeframe", "granularity"])): "M1",
        "time": draw(_time_forms(moment)),
        "open": price(open_),
        "high": price(high),
        "low": price(low),
        "close": price(close),
    }
    if draw(st.booleans()):
        row["volume"] = draw(st.integers(0, 2**31 - 1))
    if draw(st.booleans()):
        row["complete"] = True
    if draw(st.booleans()):
        # Keys we do not know are ignored, whatever they hold.
        row[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in KNOWN_KEYS))] = draw(
            JUNK
        )
    return row


KNOWN_KEYS = {"pair", "instrument", "timeframe", "granularity", "time", "volume", "complete"}
KNOWN_KEYS.update(PRICE_FIELDS)

# Values that are never a price, a time, a pair or a timeframe.
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.text(alphabet="abcxyzé_ -!", max_size=10),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(float("-inf")),
    st.just("NaN"),
    st.just("-Infinity"),
    st.just(Decimal("sNaN")),
)
BAD_PRICE = st.one_of(
    JUNK,
    st.sampled_from([0, -1, "-1.1", "0", 1e12, "1e999", 10**30, "1.0000001", 1.0000001, "1,1"]),
    st.floats(max_value=0.0, allow_nan=False),
)
BAD_TIME = st.one_of(
    JUNK,
    st.sampled_from(
        [
            "2026-01-06T00:00:30Z",  # not aligned to M1
            "2026-01-06T00:00:00.5Z",
            "2026-01-06T00:00:00",  # no zone
            "2026-02-30T00:00:00Z",
            "9999-12-31T23:59:00-01:00",  # past the last representable moment
            "0001-01-01T00:00:00+01:00",  # before the first one
            "2027-01-06T00:00:00Z",  # in the future
            datetime(2026, 1, 6),  # naive
            datetime.max.replace(tzinfo=UTC),
            1e20,
            -1e20,
            10**30,
            "99999999999",
            2**63,
        ]
    ),
)


@st.composite
def junk_candle(draw: st.DrawFn, minute: int) -> tuple[Any, set[str]]:
    """A candle that must be refused, and the fields a refusal may name."""
    row = draw(valid_candle(minute))
    how = draw(
        st.sampled_from(
            [
                "not-object",
                "missing",
                "pair",
                "timeframe",
                "time",
                "price",
                "order",
                "volume",
                "complete",
            ]
        )
    )
    if how == "not-object":
        return draw(
            st.one_of(
                st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
            )
        ), {"candle"}
    if how == "missing":
        name = draw(st.sampled_from(["pair", "timeframe", "time", *PRICE_FIELDS]))
        for key in {"pair": ["pair", "instrument"], "timeframe": ["timeframe", "granularity"]}.get(
            name, [name]
        ):
            row.pop(key, None)
        return row, {name}
    if how in ("pair", "timeframe"):
        key = "pair" if how == "pair" and "pair" in row else "instrument"
        if how == "timeframe":
            key = "timeframe" if "timeframe" in row else "granularity"
        row[key] = draw(
            st.one_of(
                JUNK.filter(lambda v: bool(v)),
                st.sampled_from(
                    ["XXX_YYY", "eur_usd", "M7", "D", "EUR_USD " if how == "pair" else "m1"]
                ),
            )
        )
        return row, {how}
    if how == "time":
        row["time"] = draw(BAD_TIME)
        return row, {"time", "complete"}
    if how == "price":
        name = draw(st.sampled_from(PRICE_FIELDS))
        row[name] = draw(BAD_PRICE)
        # Another price may then be the one outside the new range.
        return row, set(PRICE_FIELDS)
    if how == "order":
        row["high"], row["low"] = row["low"], row["high"]
        if row["high"] == row["low"] or Decimal(str(row["high"])) == Decimal(str(row["low"])):
            row["high"] = "0.5"  # below any generated low
        return row, set(PRICE_FIELDS)
    if how == "volume":
        row["volume"] = draw(st.one_of(st.sampled_from([-1, 1.5, "10", None, True]), JUNK))
        return row, {"volume"}
    row["complete"] = draw(
        st.one_of(
            st.sampled_from([1, 0, "true", None]),
            JUNK.filter(lambda v: v is not True and v is not False),
        )
    )
    return row, {"complete"}


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Any], dict[int, set[str]], dict[int, dict[str, Any]]]:
    size = draw(st.integers(1, 12))
    minutes = draw(st.lists(st.integers(0, 2000), min_size=size, max_size=size, unique=True))
    rows: list[Any] = []
    bad: dict[int, set[str]] = {}
    good: dict[int, dict[str, Any]] = {}
    for index, minute in enumerate(minutes):
        if draw(st.booleans()):
            row, fields = draw(junk_candle(minute))
            rows.append(row)
            bad[index] = fields
        else:
            good[index] = draw(valid_candle(minute))
            rows.append(good[index])
    return rows, bad, good


def table() -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {
        (pair, timeframe, time): tuple(values)
        for pair, timeframe, time, *values in Candle.objects.values_list(
            "pair_id", "timeframe", "time", "open", "high", "low", "close", "volume", "complete"
        )
    }


@pytest.fixture
def sentinels(timescaledb: None) -> None:
    candles_ingest(
        candles=[
            {
                "pair": pair,
                "timeframe": "M1",
                "time": SENTINEL_TIME,
                "open": "1.1",
                "high": "1.2",
                "low": "1.0",
                "close": "1.1",
                "volume": 7,
            }
            for pair in PAIRS
        ],
        now=NOW,
    )


@pytest.mark.django_db
@FUZZ
@given(batch=batches())
def test_a_batch_of_mixed_candles_stores_the_valid_ones_and_names_each_bad_one(
    sentinels: None, batch: tuple[list[Any], dict[int, set[str]], dict[int, dict[str, Any]]]
) -> None:
    rows, bad, good = batch
    Candle.objects.filter(time__gte=WINDOW).delete()
    before = table()

    result = candles_ingest(candles=rows, now=NOW)

    # Each bad row is refused once, naming a field it got wrong; no valid row is refused
    refused = {rejection.row: rejection for rejection in result.rejected}
    assert len(refused) == len(result.rejected)
    assert set(refused) == set(bad), [str(r) for r in result.rejected]
    for index, rejection in refused.items():
        assert rejection.field in bad[index], str(rejection)
        assert str(rejection).startswith(f"row {index}") and f"{rejection.field}=" in str(rejection)
    assert (result.received, result.stored) == (len(rows), len(good))

    # Every valid row is stored exactly as sent, and nothing else changed
    after = table()
    for row in good.values():
        expected = parse_candle(0, row, pair=None, timeframe=None, known_pairs=set(PAIRS), now=NOW)
        assert not hasattr(expected, "reason"), expected
        stored = after.pop(expected.key)  # type: ignore[union-attr]
        assert stored == (
            *(Decimal(str(row[name])) for name in PRICE_FIELDS),
            row.get("volume", 0),
            True,
        )
    assert after == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time", 1e20),  # was OverflowError: timestamp out of range for platform time_t
        ("time", float("nan")),  # was ValueError: Invalid value NaN
        ("time", "9999-12-31T23:59:00-01:00"),  # was OverflowError: date value out of range
        ("time", datetime.max.replace(tzinfo=UTC)),
        ("pair", Decimal("sNaN")),  # was TypeError: Cannot hash a signaling NaN value
        ("pair", ["EUR_USD"]),  # was TypeError: unhashable type: 'list'
        ("timeframe", {"M1": 1}),
    ],
    ids=[
        "huge-seconds",
        "nan-seconds",
        "offset-past-9999",
        "datetime-max",
        "snan-pair",
        "list-pair",
        "dict-timeframe",
    ],
)
def test_a_candle_the_fuzzer_found_crashing_ingestion_is_refused_by_name(
    timescaledb: None, field: str, value: Any
) -> None:
    candle = {
        "pair": "EUR_USD",
        "timeframe": "M1",
        "time": "2026-01-06T00:00:00Z",
        "open": "1.1",
        "high": "1.2",
        "low": "1.0",
        "close": "1.1",
    }

    result = candles_ingest(candles=[dict(candle, **{field: value})], now=NOW)

    assert result.stored == 0
    assert [rejection.field for rejection in result.rejected] == [field]
