"""The parity report's reasoning on plain values (parity/replay.py): how minutes are matched, how
each difference is given its cause, where a replayed trade leaves, and that the parts of the P&L
difference add up to it exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from parity import replay
from parity.replay import Minute, Signal

T0 = datetime(2025, 7, 24, 10, 0, tzinfo=UTC)
PIP = Decimal("0.0001")


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def test_equal_signals_match_and_every_kind_of_difference_is_a_mismatch() -> None:
    # Given the replay and live signals of six minutes
    replayed = {
        minute(0): Signal("BUY", 0.8),
        minute(1): Signal("SELL", 0.7),
        minute(2): Signal("BUY", 0.9),
        minute(3): Signal("BUY", 0.75),
        minute(4): Signal("BUY", 0.66),
    }
    live = {
        minute(0): Signal("BUY", 0.8 + 1e-12),
        minute(1): Signal("BUY", 0.7),
        minute(2): Signal("BUY", 0.9 + 1e-6),
        minute(5): Signal("SELL", 0.7),
    }
    analysed = {time: Minute("hold") for time in (minute(3), minute(4))}

    # When they are matched
    found = replay.match_signals(replay=replayed, live=live, minutes=analysed, logged=True)

    # Then a confidence within 1e-9 matches, and the rest are mismatches of their kind
    assert [(m.time, m.kind) for m in found] == [
        (minute(1), replay.DIRECTION),
        (minute(2), replay.CONFIDENCE),
        (minute(3), replay.REPLAY_ONLY),
        (minute(4), replay.REPLAY_ONLY),
        (minute(5), replay.LIVE_ONLY),
    ]
    # And none of them has a cause the records give: all are unexplained
    assert {m.cause for m in found} == {replay.UNEXPLAINED}


@pytest.mark.parametrize(
    ("record", "cause"),
    [
        (None, replay.CANDLE_LATE),
        (Minute("requested"), replay.WORKER_DOWN),
        (Minute("skipped", "history", "300 closed candles; 375 needed"), replay.HISTORY_SHORT),
        (Minute("skipped", "not_closed", "the candle is not stored as closed"), replay.CANDLE_LATE),
        (Minute("skipped", "not_trading", "not an enabled pair"), replay.PAIR_NOT_TRADING),
        (Minute("skipped", "no_model", "no promoted pair model"), replay.PAIR_NOT_TRADING),
        (Minute("skipped", "invalid_rule", "invalid rule: window=1"), replay.UNEXPLAINED),
        (Minute("hold"), replay.UNEXPLAINED),
    ],
    ids=lambda value: value.outcome if isinstance(value, Minute) else str(value),
)
def test_a_signal_missing_live_takes_its_cause_from_the_analysis_log(
    record: Minute | None, cause: str
) -> None:
    minutes = {minute(0): record} if record is not None else {}
    (found,) = replay.match_signals(
        replay={minute(0): Signal("BUY", 0.8)}, live={}, minutes=minutes, logged=True
    )
    assert (found.kind, found.cause) == (replay.REPLAY_ONLY, cause)
    assert found.detail


def test_without_any_log_for_the_day_a_missing_signal_is_unexplained() -> None:
    (found,) = replay.match_signals(
        replay={minute(0): Signal("BUY", 0.8)}, live={}, minutes={}, logged=False
    )
    assert found.cause == replay.UNEXPLAINED and "no live analysis is logged" in found.detail


def test_a_live_signal_on_other_candles_or_without_history_for_the_replay_is_explained() -> None:
    live = {minute(0): Signal("BUY", 0.8), minute(1): Signal("SELL", 0.7)}
    found = replay.match_signals(
        replay={minute(1): Signal("BUY", 0.7)},
        live=live,
        minutes={},
        logged=True,
        short_history={minute(0)},
        revised={minute(1)},
    )
    assert [(m.kind, m.cause) for m in found] == [
        (replay.LIVE_ONLY, replay.HISTORY_SHORT),
        (replay.DIRECTION, replay.CANDLE_REVISED),
    ]


def test_how_the_live_rule_differed_is_added_to_an_unexplained_mismatch_only() -> None:
    found = replay.match_signals(
        replay={minute(0): Signal("BUY", 0.8)},
        live={minute(1): Signal("SELL", 0.7)},
        minutes={minute(0): Minute("requested")},
        logged=True,
        rule_notes={minute(0): "note zero", minute(1): "the live rule had buy_threshold=0.4"},
    )
    assert "note zero" not in found[0].detail  # worker_down is explained
    assert found[1].cause == replay.UNEXPLAINED and "buy_threshold=0.4" in found[1].detail


# ----- where a replayed trade leaves -------------------------------------------------------------


def path(*bars: tuple[str, str, str, str]) -> replay.Path:
    return replay.Path(
        times=[minute(n) for n in range(len(bars))],
        open=[Decimal(bar[0]) for bar in bars],
        high=[Decimal(bar[1]) for bar in bars],
        low=[Decimal(bar[2]) for bar in bars],
        close=[Decimal(bar[3]) for bar in bars],
    )


def leave(bars: replay.Path, direction: str = "BUY", take: str | None = "10") -> replay.Exit:
    return replay.replay_exit(
        bars,
        entry_bar=0,
        direction=direction,
        entry=Decimal("1.10000"),
        stop_loss_pips=Decimal(10),
        take_profit_pips=Decimal(take) if take else None,
        pip=PIP,
    )


def test_a_long_leaves_at_its_stop_or_target_whichever_the_path_meets_first() -> None:
    entered = ("1.10000", "1.10000", "1.10000", "1.10000")
    # The open is nearer the low: the low (the stop) comes first.
    assert leave(path(entered, ("1.09990", "1.10100", "1.09900", "1.10000"))) == replay.Exit(
        1, Decimal("1.09900"), "stop_loss"
    )
    # The open is nearer the high: the target comes first.
    assert leave(path(entered, ("1.10010", "1.10100", "1.09900", "1.10000"))) == replay.Exit(
        1, Decimal("1.10100"), "take_profit"
    )
    # A bar that opens beyond the stop leaves at its open.
    assert leave(path(entered, ("1.09800", "1.09850", "1.09700", "1.09800"))) == replay.Exit(
        1, Decimal("1.09800"), "stop_loss"
    )
    # Untouched to the end of the path: still open, marked at the last close.
    quiet = path(entered, ("1.10000", "1.10050", "1.09950", "1.10020"))
    assert leave(quiet) == replay.Exit(None, Decimal("1.10020"), "open")


def test_a_short_mirrors_the_long_and_no_take_profit_means_the_stop_only() -> None:
    entered = ("1.10000", "1.10000", "1.10000", "1.10000")
    up = ("1.10000", "1.10100", "1.10000", "1.10100")
    assert leave(path(entered, up), "SELL") == replay.Exit(1, Decimal("1.10100"), "stop_loss")
    down = ("1.10000", "1.10000", "1.09000", "1.09000")
    assert leave(path(entered, down), "SELL") == replay.Exit(1, Decimal("1.09900"), "take_profit")
    assert leave(path(entered, down), "BUY", take=None) == replay.Exit(
        1, Decimal("1.09900"), "stop_loss"
    )


# ----- the attribution ---------------------------------------------------------------------------


def replayed(direction: str = "BUY", units: str = "12345") -> replay.ReplayTrade:
    return replay.ReplayTrade(
        time=minute(0),
        direction=direction,
        units=Decimal(units),
        entry=Decimal("1.100050"),
        exit=Decimal("1.100950"),
        exit_reason="take_profit",
        exit_time=minute(9),
    )


def lived(**changes: object) -> replay.LiveTrade:
    values: dict[str, object] = {
        "entry": Decimal("1.10021"),
        "units": Decimal(12345),
        "exit": Decimal("1.10088"),
        "closed_at": minute(8),
        "close_reason": "TAKE_PROFIT_ORDER",
        # 12,345 x 0.00067 = 8.27115, as the broker reports it (4 places).
        "realized": Decimal("8.2712"),
        "unrealized": Decimal(0),
        "financing": Decimal("-0.3012"),
    }
    values.update(changes)
    return replay.LiveTrade(**values)  # type: ignore[arg-type]


def test_a_filled_trades_difference_splits_into_entry_exit_financing_and_a_remainder() -> None:
    # Given a replayed buy of 12,345 units and the live fill 1.6 pips above the assumed entry
    ours, theirs = replayed(), lived()
    (row,) = replay.execution_rows(
        time=minute(0),
        replay=ours,
        live=replay.LiveSignal("BUY", "executed", trade=theirs),
        cause=None,
        pip=PIP,
    )

    # Then the parts are the entry, the exit, the financing, and the rounding left over
    assert row.outcome == replay.FILLED
    assert row.entry_slippage_pips == Decimal("1.6")
    assert row.parts == {
        "entry_slippage": Decimal("-1.9752"),  # 12,345 x -0.00016
        "exit": Decimal("-0.8642"),  # 12,345 x -0.00007 = -0.86415
        "financing": Decimal("-0.3012"),
        # The broker rounded 8.27115 up, the exit part rounded -0.86415 down.
        "other": Decimal("0.0001"),
    }
    assert sum(row.parts.values()) == row.difference == theirs.pl - ours.pl
    assert ours.pl == Decimal("11.1105")


def test_every_outcome_of_a_minute_lands_in_its_part_and_the_day_adds_up() -> None:
    # Given one minute of each outcome
    ours = replayed()
    refused = replay.LiveSignal(
        "BUY", "rejected", "EUR_USD already has an open position", ("one_position",)
    )
    rows = [
        *replay.execution_rows(time=minute(0), replay=ours, live=refused, cause=None, pip=PIP),
        *replay.execution_rows(
            time=minute(1),
            replay=ours,
            live=replay.LiveSignal("BUY", "expired", "too old"),
            cause=None,
            pip=PIP,
        ),
        *replay.execution_rows(
            time=minute(2),
            replay=ours,
            live=replay.LiveSignal("BUY", "rejected", "order cancelled: MARKET_HALTED"),
            cause=None,
            pip=PIP,
        ),
        *replay.execution_rows(
            time=minute(3), replay=ours, live=None, cause=replay.WORKER_DOWN, pip=PIP
        ),
        # Live sold where the replay bought: both trades count, in the mismatch's part.
        *replay.execution_rows(
            time=minute(4),
            replay=ours,
            live=replay.LiveSignal("SELL", "executed", trade=lived(realized=Decimal("-3"))),
            cause=replay.UNEXPLAINED,
            pip=PIP,
        ),
        *replay.execution_rows(
            time=minute(5),
            replay=ours,
            live=replay.LiveSignal("BUY", "executed", trade=lived()),
            cause=None,
            pip=PIP,
        ),
    ]

    # Then each row's outcome and part are the minute's
    assert [(row.outcome, tuple(row.parts)) for row in rows] == [
        (replay.RISK_REFUSED, ("risk_refused",)),
        (replay.EXPIRED, ("expired",)),
        (replay.NOT_FILLED, ("not_filled",)),
        (replay.MISSED, ("worker_down",)),
        (replay.MISSED, ("unexplained",)),
        (replay.LIVE_ONLY, ("unexplained",)),
        (replay.FILLED, ("entry_slippage", "exit", "financing", "other")),
    ]
    assert rows[0].risk_rules == ("one_position",)
    # And the day's parts add up exactly to live minus replay
    totals = replay.attribution(rows)
    assert list(totals) == list(replay.BUCKETS)
    live_total = sum((row.live_pl for row in rows), Decimal(0))
    replay_total = sum((row.replay_pl for row in rows), Decimal(0))
    assert sum(totals.values()) == live_total - replay_total
    assert totals["unexplained"] == Decimal("-3") + Decimal("-0.3012") - ours.pl


def test_the_equity_curves_step_at_each_close_and_count_open_trades_at_the_end() -> None:
    end = minute(60)
    still_open = replay.ReplayTrade(
        minute(1), "SELL", Decimal(1000), Decimal("1.1"), Decimal("1.09"), "open", None
    )
    rows = [
        *replay.execution_rows(
            time=minute(0),
            replay=replayed(),
            live=replay.LiveSignal("BUY", "executed", trade=lived()),
            cause=None,
            pip=PIP,
        ),
        *replay.execution_rows(time=minute(1), replay=still_open, live=None, cause="x", pip=PIP),
    ]
    points = replay.equity_curves(rows, end=end)
    assert [point["time"] for point in points] == [minute(8), minute(9), end]
    assert points[-1]["replay"] == replayed().pl + still_open.pl
    assert points[-1]["live"] == lived().pl
