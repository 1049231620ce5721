"""Celery tasks of the trading app, routed to the ``execution`` queue by their ``trading.`` name."""

from __future__ import annotations

from celery import shared_task

# Market schedule ----------------------------------------------------------------------------------
# Run by beat every minute (CELERY_BEAT_SCHEDULE in settings); see trading/market.py.


@shared_task(name="trading.refresh_market_state_task", ignore_result=False)
def refresh_market_state_task() -> dict[str, object]:
    """Move the system between open and closed by the market schedule; safe to run twice."""
    # Imported here so this section stands apart from the rest of the module's imports.
    from trading.market import market_state_refresh

    refresh = market_state_refresh()
    return {
        "open": refresh.status.open,
        "reason": refresh.status.reason,
        "next_change": refresh.status.next_change.isoformat(),
        "changed": refresh.changed,
        "flattened": refresh.flattened,
    }
