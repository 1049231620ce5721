"""The trading app's API shapes: records, filters, action bodies and status answers."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from marketdata.fields import PairField
from marketdata.models import Pair
from septrader.api.fields import (
    AsciiDecimalField,
    BoundedDateField,
    TimeRangeSerializer,
    ascii_digits_only,
)
from trading.models import Order, Trade, TradingSignal, TradingState

# ----- records -----------------------------------------------------------------------------------


class TradingSignalSerializer(serializers.ModelSerializer[TradingSignal]):
    pair = serializers.CharField(source="pair_id", read_only=True)
    pair_model = serializers.IntegerField(source="pair_model_id", read_only=True, allow_null=True)

    class Meta:
        model = TradingSignal
        fields = [
            "id",
            "time",
            "pair",
            "timeframe",
            "direction",
            "confidence",
            "price",
            "qfh_metrics",
            "pair_model",
            "status",
            "status_reason",
            "executed",
            "result",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderSerializer(serializers.ModelSerializer[Order]):
    pair = serializers.CharField(source="pair_id", read_only=True)
    signal = serializers.UUIDField(source="signal_id", read_only=True, allow_null=True)

    class Meta:
        model = Order
        exclude = ["account_id"]
        read_only_fields = [
            field.name for field in Order._meta.fields if field.name != "account_id"
        ]


class TradeSerializer(serializers.ModelSerializer[Trade]):
    pair = serializers.CharField(source="pair_id", read_only=True)
    order = serializers.IntegerField(source="order_id", read_only=True, allow_null=True)

    class Meta:
        model = Trade
        exclude = ["account_id"]
        read_only_fields = [
            field.name for field in Trade._meta.fields if field.name != "account_id"
        ]


# ----- filters -----------------------------------------------------------------------------------


class SignalFilterSerializer(TimeRangeSerializer):
    pair = PairField(required=False)
    status = serializers.ChoiceField(choices=TradingSignal.Status.choices, required=False)
    direction = serializers.ChoiceField(choices=TradingSignal.Direction.choices, required=False)


class OrderFilterSerializer(TimeRangeSerializer):
    pair = PairField(required=False)
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Order.Kind.choices, required=False)
    paper = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: paper only; false: the broker's only; absent: both.",
    )


class TradeFilterSerializer(TimeRangeSerializer):
    pair = PairField(required=False)
    status = serializers.ChoiceField(
        choices=Trade.State.choices, required=False, help_text="OPEN or CLOSED."
    )
    paper = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: paper only; false: the broker's only; absent: both.",
    )


class DailyPerformanceQuerySerializer(serializers.Serializer[Any]):
    days = serializers.IntegerField(
        required=False, min_value=1, max_value=366, help_text="Trading days up to today (7)."
    )
    start = BoundedDateField(required=False, help_text="First trading day (YYYY-MM-DD).")
    end = BoundedDateField(required=False, help_text="Last trading day (YYYY-MM-DD).")
    pair = PairField(required=False)
    paper = serializers.BooleanField(
        required=False,
        default=False,
        help_text="true: the paper trades' results instead of the broker's (false).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None:
            if end < start:
                raise serializers.ValidationError(
                    {
                        "end": f"end={end.isoformat()} is not valid; "
                        "expected a day on or after start."
                    }
                )
            if (end - start).days > 366:
                raise serializers.ValidationError(
                    {"end": "the range is too long; expected at most 366 days."}
                )
        return attrs


# ----- action bodies -----------------------------------------------------------------------------


class PairEnableSerializer(serializers.Serializer[Any]):
    force = serializers.BooleanField(
        default=False, help_text="Trade the pair on the default rule when it has no promoted model."
    )


class ReasonSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, default="", max_length=500, allow_blank=True)


class PairUpdateSerializer(serializers.Serializer[Any]):
    node = serializers.CharField(
        required=False, allow_null=True, max_length=50, help_text="Execution node name, or null."
    )
    risk_overrides = serializers.DictField(
        required=False, help_text="risk.* settings without the prefix, e.g. {max_open_trades: 2}."
    )


class KillSwitchSerializer(serializers.Serializer[Any]):
    close_trades = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Also close every trade (default: execution.kill_switch_closes_trades).",
    )


class TradeCloseSerializer(serializers.Serializer[Any]):
    units = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=32,
        validators=[ascii_digits_only],
        help_text="Units to close (positive, at most the open units), or ALL (the default).",
    )


class TradeAmendSerializer(serializers.Serializer[Any]):
    stop_loss = AsciiDecimalField(
        max_digits=16, decimal_places=6, required=False, allow_null=True, min_value=0
    )
    take_profit = AsciiDecimalField(
        max_digits=16, decimal_places=6, required=False, allow_null=True, min_value=0
    )


# ----- answers -----------------------------------------------------------------------------------


class PositionSerializer(serializers.Serializer[Any]):
    trades = serializers.IntegerField()
    units = serializers.DecimalField(max_digits=18, decimal_places=2)
    unrealized_pl = serializers.DecimalField(max_digits=18, decimal_places=4)


class PriceSerializer(serializers.Serializer[Any]):
    bid = serializers.CharField(allow_null=True)
    ask = serializers.CharField(allow_null=True)
    time = serializers.CharField(allow_null=True)
    tradeable = serializers.BooleanField(allow_null=True)


class LastSignalSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    time = serializers.DateTimeField()
    timeframe = serializers.CharField()
    direction = serializers.CharField()
    confidence = serializers.FloatField()
    status = serializers.CharField()


class PairStatusSerializer(serializers.Serializer[Any]):
    pair = serializers.CharField()
    state = serializers.ChoiceField(choices=Pair.State.choices)
    state_reason = serializers.CharField()
    enabled = serializers.BooleanField()
    forced_without_model = serializers.BooleanField()
    paper_started_at = serializers.DateTimeField(
        allow_null=True, help_text="When the pair's paper stage began (the broker's clock)."
    )
    node = serializers.CharField(allow_null=True)
    risk_overrides = serializers.DictField()
    open_position = PositionSerializer(
        allow_null=True, help_text="The pair's position at the broker (real trades)."
    )
    paper_position = PositionSerializer(
        allow_null=True, help_text="The pair's open paper trades (never at the broker)."
    )
    last_price = PriceSerializer(allow_null=True)
    last_price_age_seconds = serializers.FloatField(allow_null=True)
    last_signal = LastSignalSerializer(allow_null=True)


class GateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="stage, model, trading_days, results or parity.")
    passed = serializers.BooleanField()
    reason = serializers.CharField(help_text="A sentence with the gate's figures.")
    figures = serializers.DictField()


class PairAdvanceSerializer(serializers.Serializer[Any]):
    """Whether a pair on paper may advance to live, and why (``GET /api/pairs/<pair>/advance``)."""

    pair = serializers.CharField()
    state = serializers.CharField(help_text="The pair's state, as in its status (paper ...).")
    paper_started_at = serializers.DateTimeField(allow_null=True)
    may_advance = serializers.BooleanField()
    reason = serializers.CharField(help_text="The failed gates' reasons, or 'every gate passes'.")
    gates = GateSerializer(many=True)


class PairStatusListSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    pairs = PairStatusSerializer(many=True)


class AccountSerializer(serializers.Serializer[Any]):
    time = serializers.DateTimeField()
    currency = serializers.CharField()
    balance = serializers.DecimalField(max_digits=18, decimal_places=4)
    nav = serializers.DecimalField(max_digits=18, decimal_places=4)
    unrealized_pl = serializers.DecimalField(max_digits=18, decimal_places=4)
    margin_used = serializers.DecimalField(max_digits=18, decimal_places=4)
    margin_available = serializers.DecimalField(max_digits=18, decimal_places=4)


class TodaySerializer(serializers.Serializer[Any]):
    day = serializers.DateField()
    pl = serializers.DecimalField(max_digits=18, decimal_places=4)
    realized_pl = serializers.DecimalField(max_digits=18, decimal_places=4)
    loss_percent = serializers.DecimalField(max_digits=10, decimal_places=4, allow_null=True)


class TradingStatusSerializer(serializers.Serializer[Any]):
    mode = serializers.ChoiceField(choices=TradingState.Mode.choices)
    reason = serializers.CharField()
    changed_by = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    market_open = serializers.BooleanField()
    market_reason = serializers.CharField()
    open_trades = serializers.IntegerField()
    pending_orders = serializers.IntegerField()
    unrealized_pl = serializers.DecimalField(max_digits=18, decimal_places=4)
    account = AccountSerializer(allow_null=True)
    today = TodaySerializer()


class KillSwitchResultSerializer(serializers.Serializer[Any]):
    mode = serializers.CharField()
    orders_cancelled = serializers.IntegerField()
    trades_closed = serializers.IntegerField()
    failures = serializers.ListField(child=serializers.CharField())
    entries_unsettled = serializers.ListField(
        child=serializers.CharField(),
        help_text="Client ids of entry orders whose outcome the broker has not told yet; "
        "a fill of one is closed at once.",
    )


class CloseAllResultSerializer(serializers.Serializer[Any]):
    pair = serializers.CharField()
    trades_closed = serializers.IntegerField()
    failures = serializers.ListField(child=serializers.CharField())


class TradingModeSerializer(serializers.Serializer[Any]):
    mode = serializers.ChoiceField(choices=TradingState.Mode.choices)
    reason = serializers.CharField()
    changed_by = serializers.CharField()


class TallySerializer(serializers.Serializer[Any]):
    realized_pl = serializers.DecimalField(max_digits=18, decimal_places=4)
    trades_closed = serializers.IntegerField()
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)


class DayPerformanceSerializer(TallySerializer):
    day = serializers.DateField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    pairs = serializers.DictField(child=TallySerializer())


class DailyPerformanceSerializer(serializers.Serializer[Any]):
    start = serializers.DateField()
    end = serializers.DateField()
    pair = serializers.CharField(allow_null=True)
    days = DayPerformanceSerializer(many=True)
