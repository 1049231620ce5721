"""Reads of monitoring: health reports and alerts for the API, the command and the console."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from marketdata.selectors import broker_now
from monitoring.health import overall_status, run_checks
from monitoring.models import Alert
from septrader.selectors import config_generation
from trading.market import market_status_at
from trading.selectors import counts, trading_state_current

# The public endpoint may be polled by anyone: its report is reused for this long, so polling
# cannot turn it into a flood of calls to OANDA.
PUBLIC_REPORT_SECONDS = 5.0
_public_lock = threading.Lock()
_public_report: tuple[float, dict[str, Any]] | None = None


def health_report(*, components: Iterable[str] | None = None) -> dict[str, Any]:
    """Every component's health (or the named ones) with the worst status as the overall."""
    now = datetime.now(UTC)
    checked = run_checks(now=now, components=components)
    return {
        "status": overall_status(checked),
        "checked_at": now.isoformat(),
        "components": [component.as_dict() for component in checked],
    }


def health_summary() -> dict[str, Any]:
    """The public view: statuses only, no reasons (they may name hosts)."""
    global _public_report
    with _public_lock:
        if (
            _public_report is not None
            and time.monotonic() - _public_report[0] < PUBLIC_REPORT_SECONDS
        ):
            return _public_report[1]
        report = health_report()
        summary = {
            "status": report["status"],
            "checked_at": report["checked_at"],
            "components": {item["name"]: item["status"] for item in report["components"]},
        }
        _public_report = (time.monotonic(), summary)
        return summary


def health_detail() -> dict[str, Any]:
    """Every component's health (``health_report``) and the unresolved alerts."""
    report = health_report()
    report["alerts"] = [alert_as_dict(alert) for alert in alerts_unresolved()]
    return report


def _version() -> str:
    try:
        return version("sep-trader")
    except PackageNotFoundError:
        return "0.1.0"


def system_status() -> dict[str, Any]:
    """The version, the time, the trading mode, the market, the config generation and the
    counts of pairs, trades, orders and new signals (``GET /api/status`` adds the caller)."""
    state = trading_state_current()
    market = market_status_at(broker_now())
    return {
        "version": _version(),
        "time": timezone.now(),
        "trading_mode": state.mode,
        "trading_reason": state.reason,
        "market": {
            "open": market.open,
            "reason": market.reason,
            "next_change": market.next_change,
            "summary": market.summary(),
        },
        "config_generation": config_generation(),
        "counts": counts().__dict__,
    }


def alerts_unresolved() -> QuerySet[Alert]:
    return Alert.objects.filter(resolved_at__isnull=True).order_by("-last_seen")


def alert_as_dict(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "condition": alert.condition,
        "severity": alert.severity,
        "state": alert.state,
        "message": alert.message,
        "details": alert.details,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "count": alert.count,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "notifications": [
            {"channel": n.channel, "kind": n.kind, "status": n.status, "error": n.last_error}
            for n in alert.notifications.all()
        ],
    }
