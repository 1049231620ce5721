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
from marketdata.fields import PAIR_PATH, PairField, pair_or_404
from qfh.evaluation.services import pair_model_promote
from qfh.models import CandleMetrics, PairModel, RuleEvaluation
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


class MetricsListSerializer(serializers.Serializer[Any]):
    pair = serializers.CharField()
    timeframe = serializers.CharField()
    start = serializers.DateTimeField(source="from")
    end = serializers.DateTimeField(source="to")
    count = serializers.IntegerField()
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
        rows = CandleMetrics.objects.filter(
            pair_id=pair,
            timeframe=params["timeframe"],
            time__gte=params["from"],
            time__lt=params["to"],
        )
        if "params_version" in params:
            rows = rows.filter(params_version=params["params_version"])
        # Several parameter versions may cover one candle, hence a cap on rows as well as time.
        metrics = list(rows.order_by("time", "params_version")[: settings.API_MAX_CANDLES])
        answer = {
            "pair": pair,
            "timeframe": params["timeframe"],
            "from": params["from"],
            "to": params["to"],
            "count": len(metrics),
            "metrics": metrics,
        }
        return Response(MetricsListSerializer(answer).data)


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
        models = PairModel.objects.order_by("-created_at", "-id")
        if "pair" in filters:
            models = models.filter(pair_id=filters["pair"])
        if filters.get("promoted") is not None:
            models = models.filter(promoted=filters["promoted"])
        return models


class PairModelDetailView(generics.RetrieveAPIView[PairModel]):
    roles = {"GET": VIEWER}
    serializer_class = PairModelSerializer
    queryset = PairModel.objects.all()


class PairModelPromoteView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        request=None,
        responses=PairModelSerializer,
        summary="Promote a pair model (409 with the failed gates when it does not pass them)",
    )
    def post(self, request: Request, pk: int) -> Response:
        if not PairModel.objects.filter(pk=pk).exists():
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
        evaluations = RuleEvaluation.objects.order_by("-created_at", "-id")
        if "pair" in filters:
            evaluations = evaluations.filter(pair_id=filters["pair"])
        if filters.get("leaky") is not None:
            evaluations = evaluations.filter(leaky=filters["leaky"])
        return evaluations


class EvaluationDetailView(generics.RetrieveAPIView[RuleEvaluation]):
    roles = {"GET": VIEWER}
    serializer_class = RuleEvaluationSerializer
    queryset = RuleEvaluation.objects.all()
