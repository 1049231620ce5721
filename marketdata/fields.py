"""API fields of the pairs, shared by the apps' serializers and views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from marketdata.models import PAIR_SYMBOL_MAX_LENGTH, PAIR_SYMBOL_PATTERN, pair_symbol_problem
from marketdata.selectors import pair_exists
from septrader.api.errors import not_found

# The {pair} of a URL (septrader/urls.py matches only this shape; anything else is a 404).
PAIR_PATH = OpenApiParameter(
    "pair",
    str,
    OpenApiParameter.PATH,
    description="Pair symbol, such as EUR_USD.",
    pattern=PAIR_SYMBOL_PATTERN,
)


class PairField(serializers.CharField):
    """A pair symbol in a query or a body: a 400 naming the value when it is not a known pair."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", PAIR_SYMBOL_MAX_LENGTH)
        kwargs.setdefault("help_text", "A pair symbol, such as EUR_USD.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        symbol = super().to_internal_value(data)
        problem = pair_symbol_problem(symbol, field=self.field_name or "pair")
        if problem is not None:
            raise serializers.ValidationError(problem)
        if not pair_exists(symbol):
            raise serializers.ValidationError(
                f"pair={symbol!r} is not a known pair; expected a symbol such as EUR_USD."
            )
        return symbol


def pair_or_404(pair: str) -> str:
    """``pair`` when it is a known pair; otherwise the API's 404 naming it."""
    if not pair_exists(pair):
        raise not_found("pair", pair, "pair")
    return pair


class PairRangeListSerializer(serializers.Serializer[Any]):
    """The answer of a time-range list of one pair: the pair, the timeframe and range asked,
    and the rows found, under the name a subclass gives them (``rows_name``, a field of it)."""

    rows_name: ClassVar[str]

    pair = serializers.CharField()
    timeframe = serializers.CharField()
    start = serializers.DateTimeField(source="from")
    end = serializers.DateTimeField(source="to")
    count = serializers.IntegerField()

    @classmethod
    def answer(cls, *, pair: str, params: Mapping[str, Any], rows: Sequence[Any]) -> Any:
        """The serialized answer: ``params`` is the checked query (timeframe, from, to)."""
        answer = {
            "pair": pair,
            "timeframe": params["timeframe"],
            "from": params["from"],
            "to": params["to"],
            "count": len(rows),
            cls.rows_name: rows,
        }
        return cls(answer).data
