"""Celery tasks of the trading app, routed to the ``execution`` queue by their ``trading.`` name.

Thin wrappers that take ids and call one service.
"""

from __future__ import annotations

from typing import TypedDict

from celery import shared_task

from trading.execution import late_fills_close, signal_execute
from trading.reconciliation import account_reconcile
from trading.services import (
    market_state_refresh,
    pair_demotion_check,
    pairs_demotion_check,
    paper_trades_follow,
)


class SignalTaskResult(TypedDict):
    signal: str
    status: str
    reason: str


class MarketStateTaskResult(TypedDict):
    open: bool
    reason: str
    next_change: str
    changed: bool
    flattened: bool


@shared_task(name="trading.execute_signal_task", acks_late=True)  # type: ignore[untyped-decorator]  # celery: no hints
def execute_signal_task(signal_id: str) -> SignalTaskResult:
    """Execute one signal. Safe to deliver twice: the claim lets only one delivery act."""
    outcome = signal_execute(signal_id=signal_id)
    return {"signal": outcome.signal_id, "status": outcome.status, "reason": outcome.reason}


@shared_task(name="trading.reconcile_account_task", acks_late=True)  # type: ignore[untyped-decorator]  # celery: no hints
def reconcile_account_task() -> str:
    """One reconciliation pass (beat, every few minutes; also after start-up and reconnects)."""
    report = account_reconcile()
    return report.summary() if report is not None else "skipped: another pass is running"


@shared_task(name="trading.close_late_fills_task", acks_late=True)  # type: ignore[untyped-decorator]  # celery: no hints
def close_late_fills_task() -> list[str]:
    """Close the trades of entries that filled after a stop; safe to run twice (only open
    trades are closed, under the entry lock)."""
    return late_fills_close()


@shared_task(name="trading.refresh_market_state_task", ignore_result=False)  # type: ignore[untyped-decorator]  # celery: no hints
def refresh_market_state_task() -> MarketStateTaskResult:
    """Move the system between open and closed by the market schedule; safe to run twice.

    Run by beat every minute (CELERY_BEAT_SCHEDULE in settings); see trading/services.py.
    """
    refresh = market_state_refresh()
    return {
        "open": refresh.status.open,
        "reason": refresh.status.reason,
        "next_change": refresh.status.next_change.isoformat(),
        "changed": refresh.changed,
        "flattened": refresh.flattened,
    }


@shared_task(name="trading.check_pair_demotion_task", acks_late=True)  # type: ignore[untyped-decorator]  # celery: no hints
def check_pair_demotion_task(symbol: str) -> str:
    """Demote the pair if its live results fell far below its model (enqueued by the ledger when
    one of its trades closes); safe to run twice: a pair is demoted and audited once."""
    check = pair_demotion_check(symbol=symbol)
    if check.demoted and check.verdict is not None:
        return f"{symbol} demoted: {check.verdict.reason}"
    return f"{symbol} kept: {check.skipped or (check.verdict.reason if check.verdict else '')}"


@shared_task(name="trading.follow_paper_trades_task")  # type: ignore[untyped-decorator]  # celery: no hints
def follow_paper_trades_task() -> list[str]:
    """Close the paper trades whose stop-loss or take-profit the broker's newest complete minutes
    reached (beat, each minute); safe to run twice: a paper trade is closed once, under its row
    lock. Returns the trade ids it closed."""
    return paper_trades_follow().closed


@shared_task(name="trading.check_demotions_task")  # type: ignore[untyped-decorator]  # celery: no hints
def check_demotions_task() -> list[str]:
    """Every live pair's demotion check (beat): catches closes that reached us another way."""
    return [check.pair for check in pairs_demotion_check() if check.demoted]
