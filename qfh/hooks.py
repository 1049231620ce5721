"""What the live analysis hands to execution (septrader/hooks.py): ``trading`` registers the
function that stores a signal and sends it to its pair's executor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from marketdata.models import Pair
from qfh.models import PairModel
from septrader.hooks import Hook


@dataclass(frozen=True)
class NewSignal:
    """A BUY or SELL the live analysis made for one pair's closed M1 candle."""

    pair: Pair
    model: PairModel | None
    time: datetime
    direction: str  # BUY or SELL
    confidence: float
    price: Decimal
    metrics: dict[str, Any]


class StoredSignal(NamedTuple):
    """The stored signal: its id, as first stored (a rerun finds the row already there), and
    the queue it was sent to."""

    id: str
    direction: str
    confidence: float
    created: bool
    queue: str


signal_made: Hook[[NewSignal], StoredSignal] = Hook(
    "qfh.signal_made",
    "Store the signal (once per pair and minute) in the analysis's transaction and, while it is "
    "still new, send it to its pair's execution queue after the commit.",
)
