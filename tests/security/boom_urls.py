"""A URL configuration for tests/security/test_secrets.py: the project's URLs plus two views that
fail, one under /api/ (JSON error) and one outside it (HTML error page)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from septrader.api.errors import json_server_error
from septrader.urls import urlpatterns as project_urlpatterns


def fail(request: HttpRequest) -> HttpResponse:
    # An error whose message carries a secret, as a careless one might.
    raise RuntimeError(f"could not reach OANDA with token {settings.OANDA_TOKEN}")


urlpatterns = [
    path("boom/", fail),
    path("api/boom/", fail),
    *project_urlpatterns,
]

handler500 = json_server_error
