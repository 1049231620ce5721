"""The operator console: Django's admin with a dashboard as its front page.

Installed through ``console.apps.ConsoleAdminConfig`` (in place of ``django.contrib.admin``), so
``admin.site`` everywhere, including ``septrader/urls.py``, is this site.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path
from django.utils import timezone
from django.views.decorators.cache import never_cache

from console.dashboard import (
    PageRequestError,
    daily_days,
    daily_performance_summary,
    dashboard_summary,
    operator_time_zone,
)


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
        # Before the default patterns, whose "<app_label>/" would take "performance/".
        return [daily, live, *super().get_urls()]

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
