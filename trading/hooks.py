"""What trading asks of the apps above it (septrader/hooks.py): the parity reports' verdict on a
pair, which the promotion from paper to live needs (registered by the ``parity`` app).

Nothing here registers a default: a hook nobody registered raises ``HookNotRegistered``, and the
promotion gate reads that as "parity not available", never as zero mismatches.
"""

from __future__ import annotations

from datetime import date

from septrader.hooks import Hook

parity_unexplained: Hook[[str, date], int] = Hook(
    "trading.parity_unexplained",
    "The number of unexplained signal mismatches in the parity reports of PAIR for New York "
    "trading days from SINCE on (registered by the parity app).",
)
