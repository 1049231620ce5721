"""Trading endpoints: status, pairs, signals, orders, trades, performance, start/stop/kill.

Views parse and validate, call one service or selector, and shape the answer; the services
write the AuditLog (with the user and the client's address) for every control action.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from marketdata.fields import PAIR_PATH
from septrader.api.client import actor_of, client_address
from septrader.api.errors import ApiError, invalid, not_found
from septrader.api.fields import query
from septrader.api.permissions import ADMIN, OPERATOR, VIEWER, has_role
from trading import selectors as overview
from trading import serializers, services
from trading.models import AccountSnapshot, Order, Trade, TradingSignal, TradingState
from trading.paper import AdvanceVerdict
from trading.performance import daily_performance
from trading.selectors import (
    orders_listed,
    signals_listed,
    trades_listed,
)


def _body(serializer_class: type[BaseSerializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


# ----- status ------------------------------------------------------------------------------------


class TradingStatusPayload(TypedDict):
    """The answer of ``GET /api/trading/status`` (serializers.TradingStatusSerializer)."""

    mode: str
    reason: str
    changed_by: str
    changed_at: datetime | None
    market_open: bool
    market_reason: str
    open_trades: int
    pending_orders: int
    unrealized_pl: Decimal
    account: AccountSnapshot | None
    today: overview.TodayPl


def trading_status_payload() -> TradingStatusPayload:
    state = overview.trading_state_current()
    counts = overview.counts()
    account = overview.account_latest()
    return {
        "mode": state.mode,
        "reason": state.reason,
        "changed_by": state.changed_by,
        "changed_at": state.changed_at,
        "market_open": state.market_open,
        "market_reason": state.market_reason,
        "open_trades": counts.open_trades,
        "pending_orders": counts.pending_orders,
        "unrealized_pl": overview.open_trades_unrealized(),
        "account": account,
        "today": overview.today_pl(),
    }


class TradingStatusView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(responses=serializers.TradingStatusSerializer, summary="Trading mode and money")
    def get(self, request: Request) -> Response:
        return Response(serializers.TradingStatusSerializer(trading_status_payload()).data)


class TradingModeView(APIView):
    """POST /api/trading/start (trading) and /stop (reducing: exits only)."""

    roles = {"POST": OPERATOR}
    mode: str = TradingState.Mode.TRADING

    @extend_schema(
        request=serializers.ReasonSerializer, responses=serializers.TradingModeSerializer
    )
    def post(self, request: Request) -> Response:
        body = _body(serializers.ReasonSerializer, request)
        state = services.trading_mode_set(
            mode=self.mode,
            actor=actor_of(request),
            reason=body["reason"],
            address=client_address(request),
        )
        return Response(serializers.TradingModeSerializer(state).data)


class TradingStartView(TradingModeView):
    mode = TradingState.Mode.TRADING

    @extend_schema(
        request=serializers.ReasonSerializer,
        responses=serializers.TradingModeSerializer,
        summary="Start trading (new entries allowed)",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class TradingStopView(TradingModeView):
    mode = TradingState.Mode.REDUCING

    @extend_schema(
        request=serializers.ReasonSerializer,
        responses=serializers.TradingModeSerializer,
        summary="Stop entries (reducing mode: open trades keep their stops)",
    )
    def post(self, request: Request) -> Response:
        return super().post(request)


class KillSwitchView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        request=serializers.KillSwitchSerializer,
        responses=serializers.KillSwitchResultSerializer,
        summary="Kill switch: halt, cancel pending orders, close trades",
    )
    def post(self, request: Request) -> Response:
        body = _body(serializers.KillSwitchSerializer, request)
        result = services.kill_switch_engage(
            actor=actor_of(request),
            address=client_address(request),
            close_trades=body["close_trades"],
        )
        return Response(
            {
                "mode": TradingState.Mode.HALTED,
                "orders_cancelled": result.orders_cancelled,
                "trades_closed": result.trades_closed,
                "failures": result.failures,
                "entries_unsettled": result.entries_unsettled,
            }
        )


# ----- pairs -------------------------------------------------------------------------------------


def _json_pair_row(row: overview.PairStatusRow) -> dict[str, object]:
    """A pair status row as PairStatusSerializer writes it, built directly: the status list is
    polled by every dashboard, and DRF's nested serializers took a third of its time (9 of
    29 ms for 28 pairs, measured with cProfile)."""
    answer: dict[str, object] = dict(row)
    for key in ("open_position", "paper_position"):
        position = row[key]
        if position is not None:
            answer[key] = {
                "trades": position["trades"],
                "units": f"{position['units']:.2f}",
                "unrealized_pl": f"{position['unrealized_pl']:.4f}",
            }
    if row["paper_started_at"] is not None:
        answer["paper_started_at"] = _iso(row["paper_started_at"])
    signal = row["last_signal"]
    if signal is not None:
        answer["last_signal"] = {**signal, "time": _iso(signal["time"])}
    return answer


def _iso(moment: datetime) -> str:
    text = str(moment.isoformat())
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class PairsStatusView(APIView):
    roles = {"GET": VIEWER}
    active_only = False

    @extend_schema(responses=serializers.PairStatusListSerializer, summary="Every pair's state")
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(pairs_status_json(self.active_only), content_type="application/json")


class PairsActiveView(PairsStatusView):
    active_only = True

    @extend_schema(
        responses=serializers.PairStatusListSerializer, summary="The pairs enabled for trading"
    )
    def get(self, request: Request) -> HttpResponse:
        return super().get(request)


# Dashboards poll the pairs' status every second or so; each web process answers with the JSON of
# a copy at most API_PAIRS_STATUS_CACHE_MS old instead of reading four tables and rendering every
# row per poll (bench/api.py). The bytes are kept, not the rows: rendering 28 rows again took
# 0.2 ms a request.
_pairs_answers: dict[bool, tuple[float, bytes]] = {}


def pairs_status_json(active_only: bool) -> bytes:
    """The body of ``GET /api/pairs/status`` (or ``/active``), as the JSON renderer writes it."""
    now = time.monotonic()
    cached = _pairs_answers.get(active_only)
    if cached is not None and (now - cached[0]) * 1000 < settings.API_PAIRS_STATUS_CACHE_MS:
        return cached[1]
    rows = [_json_pair_row(row) for row in overview.pairs_status(active_only=active_only)]
    answer: bytes = JSONRenderer().render({"count": len(rows), "pairs": rows})
    _pairs_answers[active_only] = (now, answer)
    return answer


def _pair_answer(symbol: str) -> Response:
    rows = overview.pairs_status(symbol=symbol)
    if not rows:
        raise not_found("pair", symbol, "pair")
    return Response(serializers.PairStatusSerializer(rows[0]).data)


class PairEnableView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        parameters=[PAIR_PATH],
        request=serializers.PairEnableSerializer,
        responses=serializers.PairStatusSerializer,
        summary="Enable a pair for trading",
    )
    def post(self, request: Request, pair: str) -> Response:
        body = _body(serializers.PairEnableSerializer, request)
        services.pair_enable(
            symbol=pair,
            actor=actor_of(request),
            address=client_address(request),
            force=body["force"],
        )
        return _pair_answer(pair)


class PairDisableView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        parameters=[PAIR_PATH],
        request=serializers.ReasonSerializer,
        responses=serializers.PairStatusSerializer,
        summary="Disable a pair (no new entries; open trades keep their stops)",
    )
    def post(self, request: Request, pair: str) -> Response:
        body = _body(serializers.ReasonSerializer, request)
        services.pair_disable(
            symbol=pair,
            actor=actor_of(request),
            address=client_address(request),
            reason=body["reason"],
        )
        return _pair_answer(pair)


def _advance_answer(symbol: str, verdict: AdvanceVerdict) -> Response:
    pair = overview.pairs_status(symbol=symbol)[0]
    return Response(
        serializers.PairAdvanceSerializer(
            {
                "pair": symbol,
                "state": pair["state"],
                "paper_started_at": pair["paper_started_at"],
                "may_advance": verdict.allowed,
                "reason": verdict.reason,
                "gates": [
                    {
                        "name": gate.name,
                        "passed": gate.passed,
                        "reason": gate.reason,
                        "figures": gate.figures,
                    }
                    for gate in verdict.gates
                ],
            }
        ).data
    )


class PairAdvanceView(APIView):
    """GET whether a pair on paper may advance to live, gate by gate; POST advances it."""

    roles = {"GET": VIEWER, "POST": OPERATOR}

    @extend_schema(
        parameters=[PAIR_PATH],
        responses=serializers.PairAdvanceSerializer,
        summary="Whether a pair on paper may advance to live, each gate with its figure",
    )
    def get(self, request: Request, pair: str) -> Response:
        return _advance_answer(pair, services.pair_advance_check(symbol=pair))

    @extend_schema(
        parameters=[PAIR_PATH],
        request=None,
        responses=serializers.PairStatusSerializer,
        summary="Advance a pair from paper to live (409 naming each failed gate)",
    )
    def post(self, request: Request, pair: str) -> Response:
        services.pair_advance(symbol=pair, actor=actor_of(request), address=client_address(request))
        return _pair_answer(pair)


class PairFlattenView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        parameters=[PAIR_PATH],
        request=serializers.ReasonSerializer,
        responses=serializers.CloseAllResultSerializer,
        summary="Close every open trade of a pair",
    )
    def post(self, request: Request, pair: str) -> Response:
        body = _body(serializers.ReasonSerializer, request)
        result = services.trades_close_all(
            actor=actor_of(request),
            pair=pair,
            reason=body["reason"] or "flattened by the operator",
            address=client_address(request),
        )
        return Response(
            {"pair": pair, "trades_closed": result.trades_closed, "failures": result.failures}
        )


class PairDetailView(APIView):
    """GET one pair's status; PATCH its node (operator) or risk overrides (admin)."""

    roles = {"GET": VIEWER, "PATCH": OPERATOR}

    @extend_schema(parameters=[PAIR_PATH], responses=serializers.PairStatusSerializer)
    def get(self, request: Request, pair: str) -> Response:
        return _pair_answer(pair)

    @extend_schema(
        parameters=[PAIR_PATH],
        request=serializers.PairUpdateSerializer,
        responses=serializers.PairStatusSerializer,
        summary="Assign a node (operator) or set risk overrides (admin)",
    )
    def patch(self, request: Request, pair: str) -> Response:
        body = _body(serializers.PairUpdateSerializer, request)
        if "risk_overrides" in body and not has_role(request.user, ADMIN):
            raise ApiError(
                "changing risk_overrides needs the admin role.",
                code="permission_denied",
                field="risk_overrides",
                status_code=403,
            )
        services.pair_settings_set(
            symbol=pair, changes=body, actor=actor_of(request), address=client_address(request)
        )
        return _pair_answer(pair)


# ----- signals, orders, trades -------------------------------------------------------------------


@extend_schema(parameters=[serializers.SignalFilterSerializer], summary="Signals, newest first")
class SignalListView(generics.ListAPIView[TradingSignal]):
    roles = {"GET": VIEWER}
    serializer_class = serializers.TradingSignalSerializer

    def get_queryset(self) -> QuerySet[TradingSignal]:
        filters = query(serializers.SignalFilterSerializer, self.request)
        return signals_listed(
            pair=filters.get("pair"),
            status=filters.get("status"),
            direction=filters.get("direction"),
            start=filters.get("from"),
            end=filters.get("to"),
        )


class SignalDetailView(generics.RetrieveAPIView[TradingSignal]):
    roles = {"GET": VIEWER}
    serializer_class = serializers.TradingSignalSerializer
    queryset = TradingSignal.objects.all()


@extend_schema(
    parameters=[serializers.OrderFilterSerializer],
    summary="Orders, newest first (from/to: created_at)",
)
class OrderListView(generics.ListAPIView[Order]):
    roles = {"GET": VIEWER}
    serializer_class = serializers.OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        filters = query(serializers.OrderFilterSerializer, self.request)
        return orders_listed(
            pair=filters.get("pair"),
            status=filters.get("status"),
            kind=filters.get("kind"),
            paper=filters.get("paper"),
            start=filters.get("from"),
            end=filters.get("to"),
        )


class OrderDetailView(generics.RetrieveAPIView[Order]):
    roles = {"GET": VIEWER}
    serializer_class = serializers.OrderSerializer
    queryset = Order.objects.all()


@extend_schema(
    parameters=[serializers.TradeFilterSerializer],
    summary="Trades, newest first (from/to: opened_at; status: OPEN or CLOSED)",
)
class TradeListView(generics.ListAPIView[Trade]):
    roles = {"GET": VIEWER}
    serializer_class = serializers.TradeSerializer

    def get_queryset(self) -> QuerySet[Trade]:
        filters = query(serializers.TradeFilterSerializer, self.request)
        return trades_listed(
            pair=filters.get("pair"),
            state=filters.get("status"),
            paper=filters.get("paper"),
            start=filters.get("from"),
            end=filters.get("to"),
        )


class TradeDetailView(generics.RetrieveAPIView[Trade]):
    """GET a trade; PATCH moves its stop-loss and/or take-profit at the broker."""

    roles = {"GET": VIEWER, "PATCH": OPERATOR}
    serializer_class = serializers.TradeSerializer
    queryset = Trade.objects.all()

    @extend_schema(
        request=serializers.TradeAmendSerializer,
        responses=serializers.TradeSerializer,
        summary="Move a trade's stop-loss and/or take-profit",
    )
    def patch(self, request: Request, pk: int) -> Response:
        body = _body(serializers.TradeAmendSerializer, request)
        trade = services.trade_amend(
            trade_id=pk,
            actor=actor_of(request),
            stop_loss=body.get("stop_loss"),
            take_profit=body.get("take_profit"),
            address=client_address(request),
        )
        return Response(serializers.TradeSerializer(trade).data)


class TradeCloseView(APIView):
    roles = {"POST": OPERATOR}

    @extend_schema(
        request=serializers.TradeCloseSerializer,
        responses=serializers.TradeSerializer,
        summary="Close a trade at the broker, fully or partly",
    )
    def post(self, request: Request, pk: int) -> Response:
        body = _body(serializers.TradeCloseSerializer, request)
        trade = services.trade_close(
            trade_id=pk,
            actor=actor_of(request),
            units=body["units"],
            address=client_address(request),
        )
        return Response(serializers.TradeSerializer(trade).data)


# ----- performance -------------------------------------------------------------------------------


class DailyPerformanceView(APIView):
    roles = {"GET": VIEWER}

    @extend_schema(
        parameters=[serializers.DailyPerformanceQuerySerializer],
        responses=serializers.DailyPerformanceSerializer,
        summary="P&L per 17:00 New York trading day (by default the 7 up to the day of the "
        "newest account snapshot)",
    )
    def get(self, request: Request) -> Response:
        params = query(serializers.DailyPerformanceQuerySerializer, request)
        end = params.get("end") or overview.performance_today()
        start = params.get("start") or end - timedelta(days=params.get("days", 7) - 1)
        if start > end:
            raise invalid("start", start.isoformat(), "a day on or before end")
        days = daily_performance(start, end, params.get("pair"), paper=params["paper"])
        return Response(
            serializers.DailyPerformanceSerializer(
                {"start": start, "end": end, "pair": params.get("pair"), "days": days}
            ).data
        )
