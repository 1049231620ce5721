"""The operator console: Django's admin with a dashboard as its front page.

Installed through ``console.apps.ConsoleAdminConfig`` (in place of ``django.contrib.admin``), so
``admin.site`` everywhere, including ``septrader/urls.py``, is this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path

from console.dashboard import (
    PageRequestError,
    daily_days,
    daily_performance_summary,
    dashboard_summary,
    operator_time_zone,
)


class ConsoleAdminSite(admin.AdminSite):
    site_header = "SEP Trader console"
    site_title = "SEP Trader console"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

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
        # Before the default patterns, whose "<app_label>/" would take "performance/".
        return [daily, *super().get_urls()]

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
