"""M1 candles from a start time (how a backfill pages) equal what the general grouping gives."""

from __future__ import annotations

import itertools
import json
import math
import random
from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from oandasim.candles import (
    CandleQuery,
    _grouped_candles,
    build_candles,
    minute_candles_json,
)
from oandasim.instruments import INSTRUMENTS
from oandasim.market import (
    BUNDLED_DATA,
    NY,
    SYNTHETIC_MINUTE_SIGMA_PIPS,
    SYNTHETIC_SUBSTEPS,
    Series,
    load_candle_file,
)
from oandasim.timeutil import format_time, parse_time, schedule_open

REAL = Series(
    INSTRUMENTS["EUR_USD"],
    INSTRUMENTS["EUR_USD"].default_spread_pips,
    load_candle_file(BUNDLED_DATA, INSTRUMENTS["EUR_USD"]),
)
SYNTHETIC = Series(
    INSTRUMENTS["USD_JPY"],
    INSTRUMENTS["USD_JPY"].default_spread_pips,
    history_floor=parse_time("2025-12-01T00:00:00Z"),
)
# The clock: the real minutes end on 2025-07-25; the synthetic walk covers a weekend before it.
NOW = {
    id(REAL): parse_time("2025-07-24T09:00:00Z"),
    id(SYNTHETIC): parse_time("2025-12-15T10:00:00Z"),
}


# Full pages, as a backfill asks for them: 5000 candles across a weekend, to and from the clock.
@example(SYNTHETIC, 8 * 86400, None, 5000, 0.0, "M", True)
@example(SYNTHETIC, 5 * 86400, None, 5000, 30.0, "MBA", False)
@example(SYNTHETIC, 8 * 86400, 5000 * 60, None, 12.5, "BA", True)
@settings(max_examples=300, deadline=None)
@given(
    series=st.sampled_from([REAL, SYNTHETIC]),
    start_back=st.integers(min_value=0, max_value=8 * 86400),
    span=st.one_of(st.none(), st.integers(min_value=0, max_value=5000 * 60)),
    count=st.one_of(st.none(), st.integers(min_value=1, max_value=5000)),
    clock_offset=st.floats(min_value=0, max_value=59.5),
    price=st.sampled_from(["M", "B", "A", "BA", "MBA"]),
    include_first=st.booleans(),
)
def test_m1_candles_from_a_start_equal_the_general_grouping(
    series: Series,
    start_back: int,
    span: int | None,
    count: int | None,
    clock_offset: float,
    price: str,
    include_first: bool,
) -> None:
    now = NOW[id(series)] + clock_offset
    start = now - start_back
    params = {
        "granularity": "M1",
        "price": price,
        "from": format_time(start),
        "includeFirst": "true" if include_first else "false",
    }
    if span is not None:
        params["to"] = format_time(start + span)
    if count is not None and span is None:
        params["count"] = str(count)
    query = CandleQuery.parse(params, now)

    candles = build_candles(series, query, now)
    assert candles == _grouped_candles(series, query, now)
    # The text a backfill page is sent as: the bytes json.dumps would write.
    if query.start is not None and query.start <= now:
        assert minute_candles_json(series, query, now) == json.dumps(candles, separators=(",", ":"))


def reference_session(series: Series, session: datetime) -> dict[int, tuple[int, ...]]:
    """The synthetic session as the original plain-Python loop made it."""
    start_local = datetime(session.year, session.month, session.day, 17, tzinfo=NY) - timedelta(
        days=1
    )
    first = int(start_local.timestamp() // 60)
    minutes = [m for m in range(first, first + 1440) if schedule_open(m)]
    if not minutes:
        return {}
    rng = random.Random(f"oandasim-walk:{series.seed}:{series.instrument.name}:{session.date()}")
    sigma = (
        SYNTHETIC_MINUTE_SIGMA_PIPS
        * series.instrument.points_per_pip
        / math.sqrt(SYNTHETIC_SUBSTEPS)
    )
    steps = len(minutes) * SYNTHETIC_SUBSTEPS
    spread = sigma * math.sqrt(12.0)
    uniform = rng.random
    walk = [0.0, *itertools.accumulate((uniform() - 0.5) * spread for _ in range(steps))]
    start_level = series._level(session)
    end_level = series._level(session + timedelta(days=1))
    drift = (walk[-1] - (end_level - start_level)) / steps
    path = [round(start_level + value - drift * k) for k, value in enumerate(walk)]
    candles: dict[int, tuple[int, ...]] = {}
    for index, minute in enumerate(minutes):
        chunk = path[index * SYNTHETIC_SUBSTEPS : (index + 1) * SYNTHETIC_SUBSTEPS + 1]
        volume = 20 + int(uniform() * 220)
        candles[minute] = (chunk[0], max(chunk), min(chunk), chunk[-1], volume)
    return candles


@pytest.mark.parametrize("name", ["EUR_USD", "USD_JPY", "GBP_USD"])
def test_synthetic_sessions_are_the_walk_the_plain_python_loop_made(name: str) -> None:
    series = Series(INSTRUMENTS[name], INSTRUMENTS[name].default_spread_pips, seed=3)
    for day in range(12):  # a DST change, two weekends
        session = datetime(2025, 10, 28) + timedelta(days=day)
        expected = reference_session(series, session)
        assert {m: series.candle(m) for m in expected} == expected
    assert sum(map(len, (reference_session(series, s) for s in [datetime(2025, 11, 3)]))) > 1000
