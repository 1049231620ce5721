"""Console pages for trained pair models and rule evaluations: figures are read-only.

A model is promoted through ``pair_model_promote`` (the admin action below calls it), so the
gates are checked whichever way an operator promotes; a refusal lists the failed gates.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from qfh import reports
from qfh.evaluation.services import PromotionRefusedError, pair_model_promote
from qfh.models import CandleMetrics, PairModel, RuleEvaluation
from septrader.admin_tools import EstimatedCountPaginator, operator, significant_column


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by services only; the console shows them and never edits them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(PairModel)
class PairModelAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "pair",
        "rule_type",
        "horizon",
        "oos_trades",
        significant_column("oos_hit_rate"),
        significant_column("oos_hit_low"),
        significant_column("oos_expectancy_pips"),
        significant_column("oos_max_drawdown_pips"),
        "passed_gates",
        "promoted",
        "created_at",
    )
    list_filter = ("pair", "passed_gates", "promoted", "rule_type", "timeframe")
    search_fields = ("inputs_hash",)
    actions = ["promote"]
    readonly_fields = (
        "pair",
        "timeframe",
        "rule_type",
        "horizon",
        "data_start",
        "data_end",
        "candles",
        "inputs_hash",
        "seed",
        "failed_gate_reasons",
        "passed_gates",
        "promoted",
        "promoted_at",
        *PairModel.OOS_FIGURES,
        "params_pretty",
        "gates_pretty",
        "folds_pretty",
        "search_pretty",
        "created_at",
    )
    exclude = ("params", "gates", "folds", "search", "out_of_sample", "failed_gates")

    @admin.display(description="failed gates")
    def failed_gate_reasons(self, obj: PairModel) -> str:
        if not obj.failed_gates:
            return "none: every gate passed"
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{}</li>", ((reason,) for reason in obj.failed_gates)),
        )

    @admin.display(description="parameters")
    def params_pretty(self, obj: PairModel) -> str:
        return _pretty(obj.params)

    @admin.display(description="gates checked")
    def gates_pretty(self, obj: PairModel) -> str:
        return _pretty(obj.gates)

    @admin.display(description="walk-forward folds")
    def folds_pretty(self, obj: PairModel) -> str:
        return _pretty(obj.folds)

    @admin.display(description="search")
    def search_pretty(self, obj: PairModel) -> str:
        return _pretty(obj.search)

    @admin.action(description="Promote the selected model (gates are checked)")
    def promote(self, request: HttpRequest, queryset: QuerySet[PairModel]) -> None:
        actor, address = operator(request)
        for model in queryset:
            try:
                pair_model_promote(model_id=model.pk, actor=actor, address=address)
            except PromotionRefusedError as error:
                self.message_user(request, str(error), messages.ERROR)
            else:
                self.message_user(request, f"{model} promoted for {model.pair_id}")


@admin.register(RuleEvaluation)
class RuleEvaluationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "pair",
        "rule_type",
        "horizon",
        "leaky",
        "trades",
        significant_column("hit_rate"),
        significant_column("hit_low"),
        significant_column("hit_high"),
        significant_column("pnl_pips"),
        "created_at",
    )
    list_filter = ("pair", "leaky", "rule_type", "timeframe", "horizon")
    readonly_fields = (
        "pair",
        "timeframe",
        "rule_type",
        "horizon",
        "leaky",
        "alignment_label",
        "data_start",
        "data_end",
        "candles",
        "trades",
        "hit_rate",
        "hit_low",
        "hit_high",
        "pnl_pips",
        "inputs_hash",
        "equity_curve",
        "hit_rate_by_confidence",
        "baseline_comparison",
        "params_pretty",
        "costs_pretty",
        "performance_pretty",
        "baselines_pretty",
        "original_pretty",
        "created_at",
    )
    exclude = ("params", "costs", "performance", "baselines", "original", "equity", "by_confidence")

    @admin.display(description="equity curve (net pips)")
    def equity_curve(self, obj: RuleEvaluation) -> str:
        return reports.equity_svg(obj.equity)

    @admin.display(description="hit rate by confidence")
    def hit_rate_by_confidence(self, obj: RuleEvaluation) -> str:
        return reports.confidence_table(obj.by_confidence)

    @admin.display(description="against the baselines")
    def baseline_comparison(self, obj: RuleEvaluation) -> str:
        return reports.baseline_table(obj.performance, obj.baselines)

    @admin.display(description="parameters")
    def params_pretty(self, obj: RuleEvaluation) -> str:
        return _pretty(obj.params)

    @admin.display(description="costs")
    def costs_pretty(self, obj: RuleEvaluation) -> str:
        return _pretty(obj.costs)

    @admin.display(description="figures")
    def performance_pretty(self, obj: RuleEvaluation) -> str:
        return _pretty(obj.performance)

    @admin.display(description="baselines")
    def baselines_pretty(self, obj: RuleEvaluation) -> str:
        return _pretty(obj.baselines)

    @admin.display(description="original's measures (gross, dead band)")
    def original_pretty(self, obj: RuleEvaluation) -> str:
        return _pretty(obj.original)


@admin.register(CandleMetrics)
class CandleMetricsAdmin(ReadOnlyAdmin):
    """One row per closed candle and parameter set: millions of rows, so never counted."""

    list_display = (
        "time",
        "pair",
        "timeframe",
        "params_version",
        significant_column("coherence"),
        significant_column("rupture_ratio"),
        significant_column("entropy"),
        "collapse",
        significant_column("trajectory_confidence"),
    )
    list_filter = ("pair", "timeframe")
    # The natural key's index order, read backwards (see CandleAdmin: no index on time alone).
    ordering = ("-pair", "-timeframe", "-params_version", "-time")
    sortable_by = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
