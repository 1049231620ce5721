"""What monitoring asks of the apps above it (septrader/hooks.py): the daily summary's parity
line (registered by ``parity``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from septrader.hooks import Hook

daily_summary_parity: Hook[[date], dict[str, Any]] = Hook(
    "monitoring.daily_summary_parity",
    "The parity figures of a finished trading day for the daily summary (reports, unexplained "
    "mismatches, the P&L difference live minus replay), running the day's reports first when "
    "they are missing.",
)
