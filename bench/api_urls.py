"""The project's URLs plus one bench-only view (bench/api_settings.py): the floor that bench/api.py
measures ``GET /api/pairs/status`` against.

``GET /bench/pairs/status-bare`` answers the same bytes as ``/api/pairs/status`` (the same
per-process copy) after the same JWT authentication, in a plain Django view: no DRF request,
content negotiation, role check or throttle. With both measured in one run on one machine, their
ratio says what the API's machinery costs whatever the machine's speed.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.exceptions import AuthenticationFailed

from septrader import urls
from septrader.api.authentication import JWTAuthentication
from trading.api import pairs_status_json


def pairs_status_bare(request: HttpRequest) -> HttpResponse:
    try:
        # simplejwt reads only the Authorization header, which a plain request has too.
        authenticated = JWTAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        authenticated = None
    if authenticated is None:
        return HttpResponse(status=401)
    return HttpResponse(pairs_status_json(False), content_type="application/json")


urlpatterns = [path("bench/pairs/status-bare", pairs_status_bare), *urls.urlpatterns]
handler404 = urls.handler404
handler500 = urls.handler500
