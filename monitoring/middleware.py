"""Request metrics for Prometheus: a count and a latency histogram per route and status.

Counted in this process's registry; under several gunicorn workers each keeps its own, unless
PROMETHEUS_MULTIPROC_DIR is set (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "septrader_http_requests",
    "HTTP requests answered, by route, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "septrader_http_request_duration_seconds",
    "Time to answer an HTTP request, by route.",
    ["route"],
)


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        # The route pattern, not the path, so ids in URLs do not make a label per request.
        match = request.resolver_match
        route = (match.route or match.view_name) if match else "unmatched"
        LATENCY.labels(route=route).observe(time.perf_counter() - started)
        REQUESTS.labels(route=route, method=request.method, status=str(response.status_code)).inc()
        return response
