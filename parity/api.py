"""``GET /api/parity`` (reports, filtered) and ``GET /api/parity/{id}`` (one report with its
mismatches and per-trade rows): read-only, for the viewer role and above."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from marketdata.fields import PairField
from parity.models import ParityExecution, ParityMismatch, ParityReport
from parity.selectors import reports_listed
from septrader.api.fields import BoundedDateField, query
from septrader.api.permissions import VIEWER


class ParityFilterSerializer(serializers.Serializer[Any]):
    """``pair``, the days ``from`` and ``to`` (inclusive, YYYY-MM-DD) and ``unexplained``."""

    pair = PairField(required=False)
    unexplained = serializers.BooleanField(
        required=False, help_text="Only reports with an unexplained signal mismatch (true)."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so the fields are added by name.
        self.fields["from"] = BoundedDateField(
            required=False, help_text="First trading day, inclusive (YYYY-MM-DD)."
        )
        self.fields["to"] = BoundedDateField(
            required=False, help_text="Last trading day, inclusive (YYYY-MM-DD)."
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start is not None and end is not None and end < start:
            raise serializers.ValidationError(
                {"to": f"to={end.isoformat()} is not valid; expected a day on or after from."}
            )
        return attrs


class ParityMismatchSerializer(serializers.ModelSerializer[ParityMismatch]):
    signal = serializers.UUIDField(source="signal_id", read_only=True, allow_null=True)

    class Meta:
        model = ParityMismatch
        exclude = ["id", "report"]


class ParityExecutionSerializer(serializers.ModelSerializer[ParityExecution]):
    signal = serializers.UUIDField(source="signal_id", read_only=True, allow_null=True)

    class Meta:
        model = ParityExecution
        exclude = ["id", "report"]


class ParityReportSerializer(serializers.ModelSerializer[ParityReport]):
    pair = serializers.CharField(source="pair_id", read_only=True)
    pair_model = serializers.IntegerField(source="pair_model_id", read_only=True, allow_null=True)
    mismatch_rows = ParityMismatchSerializer(many=True, read_only=True)

    class Meta:
        model = ParityReport
        exclude = ["equity"]


class ParityReportDetailSerializer(ParityReportSerializer):
    execution_rows = ParityExecutionSerializer(many=True, read_only=True)

    class Meta:
        model = ParityReport
        fields = "__all__"


@extend_schema(
    parameters=[ParityFilterSerializer],
    summary="Parity reports (live against the replay of each New York trading day), newest first",
)
class ParityListView(generics.ListAPIView[ParityReport]):
    roles = {"GET": VIEWER}
    serializer_class = ParityReportSerializer

    def get_queryset(self) -> QuerySet[ParityReport]:
        filters = query(ParityFilterSerializer, self.request)
        return reports_listed(
            pair=filters.get("pair"),
            start=filters.get("from"),
            end=filters.get("to"),
            unexplained=bool(filters.get("unexplained")),
        ).prefetch_related("mismatch_rows")


@extend_schema(summary="One parity report with its mismatches and per-trade rows")
class ParityDetailView(generics.RetrieveAPIView[ParityReport]):
    roles = {"GET": VIEWER}
    serializer_class = ParityReportDetailSerializer

    def get_queryset(self) -> QuerySet[ParityReport]:
        return reports_listed().prefetch_related("mismatch_rows", "execution_rows")
