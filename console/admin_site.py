"""The operator console: Django's admin with a dashboard as its front page.

Installed through ``console.apps.ConsoleAdminConfig`` (in place of ``django.contrib.admin``), so
``admin.site`` everywhere, including ``septrader/urls.py``, is this site.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone
from django.views.decorators.cache import never_cache

from console.charts import parity_equity_svg
from console.dashboard import (
    PageRequestError,
    daily_days,
    daily_performance_summary,
    dashboard_summary,
    operator_time_zone,
)
from marketdata.models import pair_symbol_problem
from parity.selectors import reports_listed

# The parity page lists this many reports (a month of a dozen pairs).
PARITY_ROWS = 400


def live_view(
    site: admin.AdminSite, view: Callable[..., HttpResponse]
) -> Callable[..., HttpResponse]:
    """``view`` for a page's polling: staff only like ``site.admin_view``, but a signed-out poll
    is answered 403 rather than redirected to the login form, which the page would otherwise
    swap into itself; the page shows the connection as lost instead."""

    @wraps(view)
    def inner(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not site.has_permission(request):
            return JsonResponse(
                {
                    "error": {
                        "code": "not_authenticated",
                        "message": "Sign in to the console again: this session has ended.",
                        "field": "",
                    }
                },
                status=403,
            )
        return view(request, *args, **kwargs)

    return never_cache(inner)


class ConsoleAdminSite(admin.AdminSite):
    site_header = "SEP Trader console"
    site_title = "SEP Trader console"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        # Every console page may poll (templates/admin/base_site.html loads htmx and live.js).
        return {
            **super().each_context(request),
            "console_refresh_seconds": settings.CONSOLE_REFRESH_SECONDS,
        }

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {"dashboard": dashboard_summary(), **(extra_context or {})}
        response: TemplateResponse = super().index(request, extra_context=context)
        return response

    def get_urls(self) -> list[URLResolver | URLPattern]:
        daily = path(
            "performance/daily/",
            self.admin_view(self.daily_performance_view),
            name="performance_daily",
        )
        live = path(
            "live/dashboard/",
            live_view(self, self.dashboard_panels_view),
            name="live_dashboard",
        )
        parity = [
            path("parity/", self.admin_view(self.parity_view), name="parity_reports"),
            path(
                "parity/<int:report_id>/",
                self.admin_view(self.parity_report_view),
                name="parity_report",
            ),
        ]
        # Before the default patterns, whose "<app_label>/" would take "performance/".
        return [daily, live, *parity, *super().get_urls()]

    def parity_view(self, request: HttpRequest) -> HttpResponse:
        """The parity reports, newest day first (``?pair=`` and ``?unexplained=1`` filter)."""
        pair = request.GET.get("pair") or None
        error = ""
        if pair is not None and pair_symbol_problem(pair, field="pair"):
            error = str(pair_symbol_problem(pair, field="pair"))
            pair = None
        unexplained = request.GET.get("unexplained") in ("1", "true", "on")
        context = {
            **self.each_context(request),
            "title": "Parity: live against its replay",
            "reports": reports_listed(pair=pair, unexplained=unexplained)[:PARITY_ROWS],
            "pair": pair or "",
            "unexplained": unexplained,
            "error": error,
        }
        return TemplateResponse(request, "admin/parity_reports.html", context)

    def parity_report_view(self, request: HttpRequest, report_id: int) -> HttpResponse:
        """One report: its figures and parts, the chart of replayed against live P&L, the
        mismatches and the per-trade rows."""
        report = get_object_or_404(reports_listed(), pk=report_id)
        context = {
            **self.each_context(request),
            "title": f"Parity {report.pair_id} {report.day:%Y-%m-%d}",
            "report": report,
            "parts": [(name, Decimal(amount)) for name, amount in report.attribution.items()],
            "mismatches": report.mismatch_rows.all(),
            "executions": report.execution_rows.all(),
            "equity_svg": parity_equity_svg(report.equity),
            "equity_json": json.dumps(report.equity),
            "operator_time_zone": operator_time_zone(),
        }
        return TemplateResponse(request, "admin/parity_report.html", context)

    def dashboard_panels_view(self, request: HttpRequest) -> HttpResponse:
        """The dashboard's panels alone, which the open dashboard polls and swaps in."""
        context = {"dashboard": dashboard_summary(), "updated": timezone.now()}
        return TemplateResponse(request, "admin/dashboard_panels.html", context)

    def daily_performance_view(self, request: HttpRequest) -> HttpResponse:
        error = ""
        try:
            days = daily_days(request.GET.get("days"))
        except PageRequestError as problem:
            error = str(problem)
            days = daily_days(None)
        context = {
            **self.each_context(request),
            "title": "Daily performance",
            "page": daily_performance_summary(days),
            "days": days,
            "error": error,
            "operator_time_zone": operator_time_zone(),
        }
        return TemplateResponse(request, "admin/performance_daily.html", context)
