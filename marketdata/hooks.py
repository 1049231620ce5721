"""What the streamer hands to the apps above it (septrader/hooks.py): the analysis of a closed
minute (registered by ``qfh``) and the account's transactions (registered by ``trading``, whose
ledger keeps them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from septrader.hooks import Hook

minute_closed: Hook[[list[str], datetime], Any] = Hook(
    "marketdata.minute_closed",
    "Live analysis of the pairs whose M1 candle starting at the time just closed; returns the "
    "Celery result of the analysis task.",
)
transactions_resume_id: Hook[[str], int | None] = Hook(
    "marketdata.transactions_resume_id",
    "The newest broker transaction id kept for the account, where the stream resumes (None when "
    "none is kept yet).",
)
transactions_apply: Hook[..., Any] = Hook(
    "marketdata.transactions_apply",
    "Keep the account's transactions (keyword arguments account_id and transactions) in the "
    "ledger; idempotent per transaction id.",
)
