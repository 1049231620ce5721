"""The schema of runtime settings kept in SystemConfig (pure: no ORM).

Each key has a type, bounds and a default; ``validate_config_value`` returns the value in its
stored JSON form or raises ``ConfigValueError`` naming the key, the value and what was expected.
Decimal settings (money, percentages, pips) are stored as strings so no float rounding creeps in.
Later parts of the system add their keys here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

Kind = Literal["decimal", "int", "bool", "str"]


class ConfigValueError(ValueError):
    def __init__(self, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{key}={value!r} is not valid; expected {expected}.")
        self.key = key
        self.value = value
        self.expected = expected


@dataclass(frozen=True)
class ConfigKey:
    name: str
    kind: Kind
    default: Any
    help: str
    minimum: Decimal | int | None = None
    maximum: Decimal | int | None = None
    # For "str" keys: the only values allowed (None allows any text).
    choices: tuple[str, ...] | None = None

    def expectation(self) -> str:
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        noun = {
            "decimal": "a decimal number",
            "int": "an integer",
            "bool": "true or false",
            "str": "text",
        }[self.kind]
        return noun + (f" {' and '.join(bounds)}" if bounds else "")


SEVERITY_CHOICES = ("off", "info", "warning", "critical")

# Health thresholds, alert rules and notification channels (monitoring/, DESIGN.md section 8).
# The webhook URL and the Telegram bot token are secrets and live in the environment instead.
MONITORING_KEYS = (
    ConfigKey(
        "monitoring.heartbeat_stale_seconds",
        "int",
        60,
        "A worker queue or beat silent for longer than this is reported missing.",
        2,
        3600,
    ),
    ConfigKey(
        "monitoring.stream_stale_seconds",
        "int",
        30,
        "The streamer (or one of its streams) silent for longer than this is reported down.",
        2,
        3600,
    ),
    ConfigKey(
        "monitoring.stale_price_seconds",
        "int",
        120,
        "On an open market, a pair without a price for longer than this is stale.",
        2,
        86400,
    ),
    ConfigKey(
        "monitoring.missed_analysis_seconds",
        "int",
        90,
        "A closed candle without its analysis this long after the close is a missed analysis.",
        5,
        3600,
    ),
    ConfigKey(
        "monitoring.order_burst_count",
        "int",
        20,
        "More orders than this within 60 seconds is an order burst.",
        1,
        10000,
    ),
    ConfigKey(
        "monitoring.loss_streak_count",
        "int",
        5,
        "This many losing trades in a row (the last closed within 24 h) is a loss streak.",
        2,
        100,
    ),
    ConfigKey(
        "monitoring.fill_slippage_pips",
        "decimal",
        "5",
        "A fill this far from the requested price (in the last hour) is reported.",
        Decimal("0.1"),
        Decimal("1000"),
    ),
    ConfigKey(
        "monitoring.reconciliation_window_minutes",
        "int",
        15,
        "Reconciliation differences logged within this window keep their alert open.",
        1,
        1440,
    ),
    ConfigKey(
        "monitoring.disk_percent",
        "int",
        90,
        "Disk use above this percentage of the data volume is reported.",
        0,
        100,
    ),
    ConfigKey(
        "monitoring.memory_percent",
        "int",
        90,
        "Memory use above this percentage is reported.",
        0,
        100,
    ),
    ConfigKey(
        "alerts.cooldown_seconds",
        "int",
        300,
        "A condition raised again within this long after its last notification is not re-sent.",
        0,
        86400,
    ),
    ConfigKey(
        "alerts.rate_limit_per_hour",
        "int",
        30,
        "Most notifications per channel per hour; beyond it they are stored as suppressed.",
        1,
        10000,
    ),
    ConfigKey("alerts.email_to", "str", "", "Comma-separated addresses for alert e-mail."),
    ConfigKey(
        "alerts.email_min_severity",
        "str",
        "critical",
        "Least severity e-mailed.",
        choices=SEVERITY_CHOICES,
    ),
    ConfigKey(
        "alerts.webhook_min_severity",
        "str",
        "warning",
        "Least severity posted to ALERT_WEBHOOK_URL.",
        choices=SEVERITY_CHOICES,
    ),
    ConfigKey("alerts.telegram_chat_id", "str", "", "Telegram chat that receives alerts."),
    ConfigKey(
        "alerts.telegram_min_severity",
        "str",
        "critical",
        "Least severity sent to Telegram.",
        choices=SEVERITY_CHOICES,
    ),
    ConfigKey(
        "alerts.daily_summary",
        "bool",
        True,
        "Send the P&L, trades and alerts of each trading day at 17:00 New York.",
    ),
)

CONFIG_KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in (
        ConfigKey(
            "risk.per_trade_percent",
            "decimal",
            "0.5",
            "Risk per trade, % of NAV.",
            Decimal("0.01"),
            Decimal("5"),
        ),
        ConfigKey("risk.max_open_trades", "int", 5, "Most trades open at once.", 0, 200),
        ConfigKey(
            "risk.daily_loss_limit_percent",
            "decimal",
            "2",
            "Loss on the 17:00 New York day that trips reducing mode, % of NAV.",
            Decimal("0.1"),
            Decimal("50"),
        ),
        ConfigKey(
            "risk.max_drawdown_percent",
            "decimal",
            "10",
            "Drawdown from the equity peak that trips reducing mode, %.",
            Decimal("0.5"),
            Decimal("90"),
        ),
        ConfigKey(
            "risk.max_spread_pips",
            "decimal",
            "3",
            "No entry above this spread.",
            Decimal("0.1"),
            Decimal("100"),
        ),
        ConfigKey(
            "risk.stale_price_seconds",
            "int",
            10,
            "No entry when the last price is older than this.",
            1,
            3600,
        ),
        ConfigKey(
            "signals.max_age_seconds",
            "int",
            120,
            "A signal older than this expires unexecuted.",
            5,
            86400,
        ),
        ConfigKey(
            "market.flatten_before_weekend_minutes",
            "int",
            0,
            "Close every trade this long before Friday 17:00 New York (0 = never).",
            0,
            1440,
        ),
        ConfigKey(
            "analysis.cpu_fallback",
            "bool",
            True,
            "Analyse on the droplet's CPU when no GPU worker is connected.",
        ),
        *MONITORING_KEYS,
    )
}


def validate_config_value(key: str, value: Any) -> Any:
    spec = CONFIG_KEYS.get(key)
    if spec is None:
        raise ConfigValueError("key", key, f"one of {', '.join(sorted(CONFIG_KEYS))}")
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigValueError(key, value, spec.expectation())
        return value
    if spec.kind == "str":
        if not isinstance(value, str) or (spec.choices is not None and value not in spec.choices):
            raise ConfigValueError(key, value, spec.expectation())
        return value
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigValueError(key, value, spec.expectation())
        number: Decimal | int = value
    else:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ConfigValueError(key, value, spec.expectation() + " written as a string")
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ConfigValueError(key, value, spec.expectation()) from None
        if not number.is_finite():
            raise ConfigValueError(key, value, spec.expectation())
    if spec.minimum is not None and number < spec.minimum:
        raise ConfigValueError(key, value, spec.expectation())
    if spec.maximum is not None and number > spec.maximum:
        raise ConfigValueError(key, value, spec.expectation())
    return str(number) if spec.kind == "decimal" else number
