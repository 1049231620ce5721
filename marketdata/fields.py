"""API fields of the pairs, shared by the apps' serializers and views."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from marketdata.models import PAIR_SYMBOL_PATTERN
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
        kwargs.setdefault("max_length", 7)
        kwargs.setdefault("help_text", "A pair symbol, such as EUR_USD.")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        symbol = super().to_internal_value(data)
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
