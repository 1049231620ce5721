"""Candles of one pair by time range: ``GET /api/candles/{PAIR}?timeframe=&from=&to=``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.fields import PAIR_PATH, PairRangeListSerializer, pair_or_404
from marketdata.selectors import SERVED_TIMEFRAMES, candles_between
from marketdata.timeframes import timeframe_duration
from septrader.api.fields import TimeRangeSerializer, query
from septrader.api.permissions import VIEWER


class CandleQuerySerializer(TimeRangeSerializer):
    timeframe = serializers.ChoiceField(choices=list(SERVED_TIMEFRAMES), default="M1")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        limit: int = settings.API_MAX_CANDLES
        width = timeframe_duration(attrs["timeframe"]) * limit
        start, end = attrs.get("from"), attrs.get("to")
        # Without a range the newest candles are served; a range may span at most ``limit``
        # periods of the timeframe, so one request never reads more than that many rows.
        if end is None:
            end = (start + width) if start is not None else timezone.now()
        if start is None:
            start = end - width
        if end - start > width:
            raise serializers.ValidationError(
                {
                    "to": f"the range from {start.isoformat()} to {end.isoformat()} is too long; "
                    f"expected at most {limit} {attrs['timeframe']} candles ({width})."
                }
            )
        attrs["from"], attrs["to"] = start, end
        return attrs


class CandleSerializer(serializers.Serializer[Any]):
    time = serializers.DateTimeField()
    open = serializers.DecimalField(max_digits=16, decimal_places=6)
    high = serializers.DecimalField(max_digits=16, decimal_places=6)
    low = serializers.DecimalField(max_digits=16, decimal_places=6)
    close = serializers.DecimalField(max_digits=16, decimal_places=6)
    volume = serializers.IntegerField()
    complete = serializers.BooleanField()


class CandleListSerializer(PairRangeListSerializer):
    rows_name = "candles"
    candles = CandleSerializer(many=True)


class CandleListView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(
        parameters=[PAIR_PATH, CandleQuerySerializer],
        responses=CandleListSerializer,
        summary="Candles in [from, to), oldest first (at most API_MAX_CANDLES)",
    )
    def get(self, request: Request, pair: str) -> Response:
        pair_or_404(pair)
        params = query(CandleQuerySerializer, request)
        bars = candles_between(
            pair=pair,
            timeframe=params["timeframe"],
            start=params["from"],
            end=params["to"],
        )
        rows = [bar._asdict() for bar in bars]
        return Response(CandleListSerializer.answer(pair=pair, params=params, rows=rows))
