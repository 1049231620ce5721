"""QFH endpoints: candle metrics by time range, pair models (list, detail, promote), evaluations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.api import CandleQuerySerializer
from marketdata.fields import PAIR_PATH, PairField, PairRangeListSerializer, pair_or_404
from qfh.evaluation.services import pair_model_promote
from qfh.models import CandleMetrics, PairModel, RuleEvaluation
from qfh.selectors import (
    candle_metrics_between,
    pair_model_exists,
    pair_models,
    rule_evaluations,
)
from septrader.api.client import actor_of, client_address
from septrader.api.errors import not_found
from septrader.api.fields import query
from septrader.api.permissions import OPERATOR, VIEWER


class MetricsQuerySerializer(CandleQuerySerializer):
    params_version = serializers.CharField(
        required=False, max_length=32, help_text="Engine parameters and window (all by default)."
    )


class CandleMetricsSerializer(serializers.ModelSerializer[CandleMetrics]):
    class Meta:
        model = CandleMetrics
        exclude = ["id", "pair"]


class MetricsListSerializer(PairRangeListSerializer):
    rows_name = "metrics"
    metrics = CandleMetricsSerializer(many=True)


class MetricsView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(
        parameters=[PAIR_PATH, MetricsQuerySerializer],
        responses=MetricsListSerializer,
        summary="QFH metrics of the candles in [from, to), oldest first",
    )
    def get(self, request: Request, pair: str) -> Response:
        pair_or_404(pair)
        params = query(MetricsQuerySerializer, request)
        metrics = candle_metrics_between(
            pair=pair,
            timeframe=params["timeframe"],
            start=params["from"],
            end=params["to"],
            params_version=params.get("params_version"),
            limit=settings.API_MAX_CANDLES,
        )
        return Response(MetricsListSerializer.answer(pair=pair, params=params, rows=metrics))


class PairModelSerializer(serializers.ModelSerializer[PairModel]):
    pair = serializers.CharField(source="pair_id", read_only=True)

    class Meta:
        model = PairModel
        fields = "__all__"


class RuleEvaluationSerializer(serializers.ModelSerializer[RuleEvaluation]):
    pair = serializers.CharField(source="pair_id", read_only=True)

    class Meta:
        model = RuleEvaluation
        fields = "__all__"


class PairModelFilterSerializer(serializers.Serializer[Any]):
    pair = PairField(required=False)
    promoted = serializers.BooleanField(required=False, allow_null=True, default=None)


class EvaluationFilterSerializer(serializers.Serializer[Any]):
    pair = PairField(required=False)
    leaky = serializers.BooleanField(required=False, allow_null=True, default=None)


@extend_schema(parameters=[PairModelFilterSerializer], summary="Pair models, newest first")
class PairModelListView(generics.ListAPIView[PairModel]):
    roles = {"GET": VIEWER}
    serializer_class = PairModelSerializer

    def get_queryset(self) -> QuerySet[PairModel]:
        filters = query(PairModelFilterSerializer, self.request)
        return pair_models(pair=filters.get("pair"), promoted=filters.get("promoted"))


class PairModelDetailView(generics.RetrieveAPIView[PairModel]):
    roles = {"GET": VIEWER}
    serializer_class = PairModelSerializer

    def get_queryset(self) -> QuerySet[PairModel]:
        return pair_models()


class PairModelPromoteView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        request=None,
        responses=PairModelSerializer,
        summary="Promote a pair model (409 with the failed gates when it does not pass them)",
    )
    def post(self, request: Request, pk: int) -> Response:
        if not pair_model_exists(pk):
            raise not_found("id", pk, "pair model")
        model = pair_model_promote(
            model_id=pk, actor=actor_of(request), address=client_address(request)
        )
        return Response(PairModelSerializer(model).data)


@extend_schema(parameters=[EvaluationFilterSerializer], summary="Rule evaluations, newest first")
class EvaluationListView(generics.ListAPIView[RuleEvaluation]):
    roles = {"GET": VIEWER}
    serializer_class = RuleEvaluationSerializer

    def get_queryset(self) -> QuerySet[RuleEvaluation]:
        filters = query(EvaluationFilterSerializer, self.request)
        return rule_evaluations(pair=filters.get("pair"), leaky=filters.get("leaky"))


class EvaluationDetailView(generics.RetrieveAPIView[RuleEvaluation]):
    roles = {"GET": VIEWER}
    serializer_class = RuleEvaluationSerializer

    def get_queryset(self) -> QuerySet[RuleEvaluation]:
        return rule_evaluations()
