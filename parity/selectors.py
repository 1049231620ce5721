"""Reads of the parity app: reports for the console and the API."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet, Sum

from parity.models import ParityReport


def reports_listed(
    *,
    pair: str | None = None,
    start: date | None = None,
    end: date | None = None,
    unexplained: bool = False,
) -> QuerySet[ParityReport]:
    """Reports newest day first, filtered by pair, by day (inclusive) and to those with an
    unexplained mismatch."""
    reports = ParityReport.objects.select_related("pair_model").order_by("-day", "pair")
    if pair:
        reports = reports.filter(pair_id=pair)
    if start is not None:
        reports = reports.filter(day__gte=start)
    if end is not None:
        reports = reports.filter(day__lte=end)
    if unexplained:
        reports = reports.filter(unexplained__gt=0)
    return reports


def unexplained_since(pair: str, since: date) -> int:
    """Unexplained signal mismatches in the reports of ``pair`` for New York trading days from
    ``since`` on: the paper stage's parity gate asks it (``trading.parity_unexplained``)."""
    total = ParityReport.objects.filter(pair_id=pair, day__gte=since).aggregate(
        total=Sum("unexplained")
    )["total"]
    return int(total or 0)
