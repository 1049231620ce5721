"""Console page for candles: read-only (ingestion writes them)."""

from __future__ import annotations

from django.contrib import admin

from marketdata.models import Candle
from septrader.admin_tools import EstimatedCountPaginator, ReadOnlyAdmin, price_column


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    """Candles are written by ingestion only; the console shows them read-only."""

    list_display = (
        "time",
        "pair",
        "timeframe",
        price_column("open"),
        price_column("high"),
        price_column("low"),
        price_column("close"),
        "volume",
        "complete",
    )
    list_filter = ("pair", "timeframe")
    # The order of the (pair, timeframe, time) index, read backwards: the hypertable has no index
    # on time alone, so "-time" (which the admin makes "-time, -id") sorted every row, 1.5 s with
    # 2 million stored; this order is a few milliseconds, filtered or not (bench/console.py).
    # It is complete (a unique key), so the admin adds no "-pk"; column sorting stays off.
    ordering = ("-pair", "-timeframe", "-time")
    sortable_by = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_select_related = False
