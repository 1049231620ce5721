"""The operator console: Django's admin with a dashboard as its front page.

Installed through ``console.apps.ConsoleAdminConfig`` (in place of ``django.contrib.admin``), so
``admin.site`` everywhere, including ``septrader/urls.py``, is this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from console.dashboard import dashboard_summary


class ConsoleAdminSite(admin.AdminSite):
    site_header = "SEP Trader console"
    site_title = "SEP Trader console"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {"dashboard": dashboard_summary(), **(extra_context or {})}
        response: TemplateResponse = super().index(request, extra_context=context)
        return response
