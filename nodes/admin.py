"""The nodes page of the console: drain, rejoin and rebalance (DESIGN.md section 9)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from nodes.services import (
    ClusterError,
    ClusterReport,
    node_drain,
    node_rejoin,
    node_save,
    nodes_rebalance,
)
from septrader.admin_tools import operator
from septrader.models import NODE_MARKETS, Node


class NodeForm(forms.ModelForm):
    markets = forms.MultipleChoiceField(
        choices=[(m, m) for m in NODE_MARKETS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The instrument types this node trades (none ticked = every market).",
    )

    class Meta:
        model = Node
        fields = ("name", "state", "markets")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    form = NodeForm
    list_display = (
        "name",
        "state",
        "market_list",
        "last_heartbeat",
        "queue",
        "pair_list",
        "created_at",
    )
    list_filter = ("state",)
    search_fields = ("name",)
    readonly_fields = ("last_heartbeat", "queue", "created_at")
    actions = ("drain_nodes", "rejoin_nodes", "rebalance_pairs")

    @admin.display(description="queue")
    def queue(self, obj: Node) -> str:
        return obj.queue

    @admin.display(description="markets")
    def market_list(self, obj: Node) -> str:
        return ", ".join(obj.markets) or "any"

    @admin.display(description="pairs")
    def pair_list(self, obj: Node) -> str:
        return ", ".join(pair.symbol for pair in obj.pairs.all()) or "-"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).prefetch_related("pairs")

    def _report(self, request: HttpRequest, report: ClusterReport, verb: str) -> None:
        moved = ", ".join(f"{pair} to {target}" for pair, _, target in report.moved)
        self.message_user(request, f"{verb}; moved: {moved or 'nothing'}.")
        if report.stranded:
            self.message_user(
                request,
                f"No healthy active node for {', '.join(report.stranded)}.",
                level=messages.WARNING,
            )

    @admin.action(description="Drain (maintenance): move their pairs to other nodes")
    def drain_nodes(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        for node in queryset:
            report = node_drain(name=node.name, actor=actor, address=address)
            self._report(request, report, f"{node.name} draining")

    @admin.action(description="Rejoin: make active again (then rebalance to give them pairs)")
    def rejoin_nodes(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        for node in queryset:
            node_rejoin(name=node.name, actor=actor, address=address)
        self.message_user(request, f"{queryset.count()} node(s) active.")

    @admin.action(description="Rebalance pairs over all active nodes (selection ignored)")
    def rebalance_pairs(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        try:
            report = nodes_rebalance(actor=actor, address=address)
        except ClusterError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self._report(request, report, "Rebalanced")

    def save_model(
        self, request: HttpRequest, obj: Node, form: forms.ModelForm, change: bool
    ) -> None:
        actor, address = operator(request)
        node_save(
            node=obj, changed=form.changed_data, created=not change, actor=actor, address=address
        )
