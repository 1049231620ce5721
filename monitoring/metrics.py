"""Trading gauges for Prometheus, read from the database and Redis at scrape time.

A custom collector rather than gauges set by each process: the figures live in the database
(orders, trades, snapshots, alerts), the cache (the streamer's state) and the broker (queue
depths), so reading them when Prometheus asks is both simpler and always current.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Count
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from marketdata.selectors import broker_now, stream_state
from monitoring.health import STATUS_RANK, _parse, queue_depths, run_checks
from monitoring.models import Alert, Severity
from trading.models import Order, Trade, TradingSignal
from trading.schedule import trading_day, trading_day_bounds
from trading.selectors import account_snapshot_latest, account_snapshot_opening

logger = logging.getLogger(__name__)

# Seconds from sending an order to its fill.
ORDER_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _gauge(name: str, documentation: str, value: float | Decimal | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    if value is not None:
        family.add_metric([], float(value))
    return family


class TradingCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        for part in (
            self._stream,
            self._trading,
            self._orders,
            self._alerts,
            self._queues,
            self._health,
        ):
            try:
                yield from part(now)
            except Exception:
                # One unreadable source must not blank the whole scrape.
                logger.exception("event=metrics_part_failed part=%s", part.__name__)

    def _stream(self, now: datetime) -> Iterator[Metric]:

        state = stream_state() or {}
        age = GaugeMetricFamily(
            "septrader_price_age_seconds", "Seconds since the pair's last price.", labels=["pair"]
        )
        lag = GaugeMetricFamily(
            "septrader_stream_lag_seconds",
            "Delay from the broker's price time to its arrival, for the last price.",
            labels=["pair"],
        )
        for pair, values in sorted((state.get("pairs") or {}).items()):
            received = _parse(values.get("last_price_received"))
            priced = _parse(values.get("last_price_time"))
            if received is not None:
                age.add_metric([pair], (now - received).total_seconds())
                if priced is not None:
                    lag.add_metric([pair], (received - priced).total_seconds())
        yield age
        yield lag
        prices = CounterMetricFamily(
            "septrader_prices_received", "Prices the streamer received (rate() gives prices/s)."
        )
        candles = CounterMetricFamily(
            "septrader_candles_written", "Complete M1 candles the streamer stored."
        )
        if state:
            prices.add_metric([], float(state.get("prices_received") or 0))
            candles.add_metric([], float(state.get("candles_written") or 0))
        yield prices
        yield candles

    def _trading(self, now: datetime) -> Iterator[Metric]:

        yield _gauge(
            "septrader_signals_last_minute",
            "Signals made in the last 60 seconds.",
            TradingSignal.objects.filter(created_at__gte=now - timedelta(minutes=1)).count(),
        )
        yield _gauge(
            "septrader_open_trades",
            "Trades open at the broker.",
            Trade.objects.filter(state=Trade.State.OPEN, paper=False).count(),
        )
        yield _gauge(
            "septrader_paper_open_trades",
            "Paper trades open (pairs on paper; never at the broker).",
            Trade.objects.filter(state=Trade.State.OPEN, paper=True).count(),
        )
        snapshot = account_snapshot_latest()
        yield _gauge("septrader_nav", "Net asset value.", snapshot.nav if snapshot else None)
        yield _gauge(
            "septrader_margin_used", "Margin in use.", snapshot.margin_used if snapshot else None
        )
        # The trading day of the broker's clock, which stamps the account snapshots.
        start, _ = trading_day_bounds(trading_day(broker_now(now)))
        opening = account_snapshot_opening(start)
        daily = snapshot.nav - opening.nav if snapshot and opening else None
        yield _gauge(
            "septrader_daily_pl", "NAV change since 17:00 New York (account currency).", daily
        )

    def _orders(self, now: datetime) -> Iterator[Metric]:
        from django.db.models import (
            Case,
            DurationField,
            ExpressionWrapper,
            F,
            IntegerField,
            Sum,
            When,
        )

        filled = Order.objects.filter(
            status=Order.Status.FILLED, sent_at__isnull=False, filled_at__isnull=False
        ).annotate(
            latency=ExpressionWrapper(F("filled_at") - F("sent_at"), output_field=DurationField())
        )
        aggregates = {
            f"le_{index}": Count(
                Case(
                    When(latency__lte=timedelta(seconds=bound), then=1),
                    output_field=IntegerField(),
                )
            )
            for index, bound in enumerate(ORDER_LATENCY_BUCKETS)
        }
        totals = filled.aggregate(total=Count("id"), latency_sum=Sum("latency"), **aggregates)
        buckets = [
            (str(bound), float(totals[f"le_{index}"]))
            for index, bound in enumerate(ORDER_LATENCY_BUCKETS)
        ]
        buckets.append(("+Inf", float(totals["total"])))
        histogram = HistogramMetricFamily(
            "septrader_order_latency_seconds", "Seconds from sending an order to its fill."
        )
        total_latency = totals["latency_sum"] or timedelta(0)
        histogram.add_metric([], buckets, total_latency.total_seconds())
        yield histogram

    def _alerts(self, now: datetime) -> Iterator[Metric]:

        family = GaugeMetricFamily(
            "septrader_alerts_open", "Unresolved alerts by severity.", labels=["severity"]
        )
        counts = dict(
            Alert.objects.filter(resolved_at__isnull=True)
            .values_list("severity")
            .annotate(count=Count("id"))
        )
        for severity in Severity.values:
            family.add_metric([severity], float(counts.get(severity, 0)))
        yield family
        raised = CounterMetricFamily(
            "septrader_alerts_raised", "Alerts ever raised, by severity.", labels=["severity"]
        )
        totals = dict(Alert.objects.values_list("severity").annotate(count=Count("id")))
        for severity in Severity.values:
            raised.add_metric([severity], float(totals.get(severity, 0)))
        yield raised

    def _queues(self, now: datetime) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "septrader_celery_queue_depth", "Messages waiting in the queue.", labels=["queue"]
        )
        for queue, depth in queue_depths().items():
            family.add_metric([queue], float(depth))
        yield family

    def _health(self, now: datetime) -> Iterator[Metric]:
        # The cheap checks only: a scrape must not call the broker's API.
        components = run_checks(
            now=now,
            components=["database", "cache", "broker", "workers", "stream", "disk", "memory"],
        )
        status = GaugeMetricFamily(
            "septrader_component_status",
            "Health per component: 0 ok, 1 degraded, 2 down.",
            labels=["component"],
        )
        age = GaugeMetricFamily(
            "septrader_component_last_success_age_seconds",
            "Seconds since the component last proved healthy.",
            labels=["component"],
        )
        for component in components:
            status.add_metric([component.name], float(STATUS_RANK[component.status]))
            if component.last_success is not None:
                age.add_metric([component.name], (now - component.last_success).total_seconds())
        yield status
        yield age
