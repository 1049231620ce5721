"""Lists come in pages of at most 500 items: ``?limit=&offset=``, with ``count`` and links."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from septrader.api.errors import invalid


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 500

    def _number(self, request: Request, name: str, default: int, low: int, high: int) -> int:
        text = request.query_params.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise invalid(name, text, f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise invalid(name, text, f"an integer from {low} to {high}")
        return value

    # DRF silently falls back to the default on a bad limit or offset; a client that sent one
    # deserves to know instead.
    def get_limit(self, request: Request) -> int:
        return self._number(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._number(request, self.offset_query_param, 0, 0, 10_000_000)
