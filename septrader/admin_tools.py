"""Admin helpers shared by the apps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from septrader import formatting


class EstimatedCountPaginator(Paginator):
    """A paginator that asks PostgreSQL for an estimate instead of counting a huge table.

    ``SELECT count(*)`` over ten million candles takes seconds; the planner's estimate
    (TimescaleDB's ``approximate_row_count`` for hypertables) is instant and close enough for page
    links. A filtered list of a big table is estimated by the planner too (``EXPLAIN``: one pair's
    year of minutes counted exactly took 0.4 s). Small results, and every list on other
    databases, are counted exactly.
    """

    # Below this many rows an exact count is cheap and page links should be exact.
    EXACT_BELOW = 10_000

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        query = getattr(self.object_list, "query", None)
        if connection.vendor != "postgresql" or query is None:
            return super().count
        table = self.object_list.model._meta.db_table  # type: ignore[attr-defined]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
            if cursor.fetchone():
                cursor.execute("SELECT approximate_row_count(%s::regclass)", [table])
            else:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            row = cursor.fetchone()
            estimate = int(row[0]) if row and row[0] is not None else -1
            if estimate > self.EXACT_BELOW and query.where:
                sql, params = self.object_list.order_by().query.sql_with_params()  # type: ignore[attr-defined]
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()
                estimate = int(_plan_rows(plan[0])) if plan else -1
        # A table never analysed reports -1 or 0: count it for real, it is small.
        return estimate if estimate > self.EXACT_BELOW else super().count


def _plan_rows(plan: Any) -> float:
    """The planner's row estimate from ``EXPLAIN (FORMAT JSON)`` (psycopg may return it parsed)."""
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


def operator(request: HttpRequest) -> tuple[str, str | None]:
    """Who acts and from where, as the services' ``actor`` and ``address`` for the AuditLog."""
    return request.user.get_username(), request.META.get("REMOTE_ADDR") or None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows owned by the broker or written by the system: the console shows them, never edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class LiveChangeListAdmin(admin.ModelAdmin):
    """A list that refreshes itself while open (signals, orders, trades): its page polls its own
    address (filters, search and page kept) for the result table alone, which htmx swaps in
    (templates/admin/live_change_list.html; console/static/console/live.js pauses it while rows
    are selected, so an action is never pulled from under the operator)."""

    change_list_template = "admin/live_change_list.html"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        # The same context, rendered as the table alone: one bounded read, a small answer.
        if request.headers.get("HX-Request") and isinstance(response, TemplateResponse):
            response.template_name = "admin/live_change_list_results.html"
        return response


# Columns of the admin lists, written by ``septrader.formatting`` as the console's pages write
# them. Each returns a function for ``list_display`` that keeps the column sortable by its field.


def significant_column(field: str, description: str = "") -> Callable[[Any], str]:
    """A confidence or a metric to four significant digits."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj: Any) -> str:
        return formatting.significant(getattr(obj, field))

    return column


def price_column(field: str, description: str = "") -> Callable[[Any], str]:
    """A price to the display precision of the row's pair (``obj.pair``, which the admin joins
    when ``pair`` is a column of the list)."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj: Any) -> str:
        return formatting.price(getattr(obj, field), obj.pair.display_precision)

    return column


def money_column(
    field: str, description: str = "", *, signed: bool = False, currency_field: str = ""
) -> Callable[[Any], str]:
    """An amount with two decimals (with its sign for a P&L), in the row's currency when the
    row has one."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj: Any) -> str:
        value = getattr(obj, field)
        if signed:
            return formatting.signed_money(value)
        return formatting.money(value, getattr(obj, currency_field) if currency_field else "")

    return column
