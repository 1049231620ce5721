"""The schema of runtime settings kept in SystemConfig (pure: no ORM).

Each key has a type, bounds and a default; ``validate_config_value`` returns the value in its
stored JSON form or raises ``ConfigValueError`` naming the key, the value and what was expected.
Decimal settings (money, percentages, pips) are stored as strings so no float rounding creeps in.
Later parts of the system add their keys here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from septrader.decimals import ASCII_DIGITS, NonAsciiNumberError, parse_decimal

Kind = Literal["decimal", "int", "bool", "str", "list"]

# How much of a refused value an error message repeats: enough to recognise it, while a megabyte
# sent as a setting does not come back whole in the answer and the logs.
SHOWN_VALUE_CHARACTERS = 80


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) <= SHOWN_VALUE_CHARACTERS:
        return text
    return f"{text[:SHOWN_VALUE_CHARACTERS]}... ({len(text)} characters)"


class ConfigValueError(ValueError):
    def __init__(self, key: str, value: Any, expected: str) -> None:
        super().__init__(f"{key}={_shown(value)} is not valid; expected {expected}.")
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
    # For "str" and "list" settings: a check of the text (of each item, for a list) and the words
    # that describe what it accepts; the bounds above then limit the length of a list.
    accepts: Callable[[str], bool] | None = None
    accepts_text: str = ""
    # For "str" settings: the longest text, checked before ``accepts`` reads it.
    max_length: int | None = None

    def expectation(self) -> str:
        if self.kind in ("str", "list"):
            noun = "text" if self.kind == "str" else "a list of text items"
            described = f"{noun} ({self.accepts_text})" if self.accepts_text else noun
            if self.max_length:
                described += f" of at most {self.max_length} characters"
            return described + (f" of at most {self.maximum} items" if self.maximum else "")
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        noun = {
            "decimal": "a decimal number",
            "int": "an integer",
            "bool": "true or false",
        }[self.kind]
        return noun + (f" {' and '.join(bounds)}" if bounds else "")


def _is_holiday_date(text: str) -> bool:
    """MM-DD (any year; 02-29 allowed) or an ISO date YYYY-MM-DD."""
    try:
        if len(text) == 5:
            date.fromisoformat(f"2000-{text}")
        elif len(text) == 10:
            date.fromisoformat(text)
        else:
            return False
    except ValueError:
        return False
    return True


def _is_holiday_calendar(text: str) -> bool:
    if not text:
        return True
    # Imported here: the calendars are only needed when this setting is validated or read.
    import holidays

    return (
        text in holidays.list_supported_financial() or text in holidays.list_supported_countries()
    )


def _is_email_list(text: str) -> bool:
    """Empty (no alert e-mail), or e-mail addresses separated by commas.

    Each address must pass Django's EmailValidator and be plain: a quoted local part
    (``"<script>"@example.com``) is valid e-mail, but it would carry markup into the console and
    mail headers, and a comma inside one would split it in two (monitoring/channels.py).
    """
    if not text.strip():
        return True
    for address in text.split(","):
        address = address.strip()
        if '"' in address:
            return False
        try:
            validate_email(address)
        except ValidationError:
            return False
    return True


# About twenty addresses; alerts for a larger team belong on a mailing list.
EMAIL_TO_MAX_LENGTH = 1000

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
        "monitoring.margin_closeout_window_minutes",
        "int",
        1440,
        "A trade the broker closed out for lack of margin keeps its alert open this long.",
        1,
        10080,
    ),
    ConfigKey(
        "monitoring.sync_rejected_window_minutes",
        "int",
        60,
        "A sync bundle rejected within this window keeps its alert open.",
        1,
        10080,
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
    ConfigKey(
        "alerts.email_to",
        "str",
        "",
        "Comma-separated addresses for alert e-mail.",
        accepts=_is_email_list,
        accepts_text="empty, or e-mail addresses separated by commas",
        max_length=EMAIL_TO_MAX_LENGTH,
    ),
    ConfigKey(
        "alerts.email_min_severity",
        "str",
        "critical",
        "Least severity e-mailed.",
        accepts=SEVERITY_CHOICES.__contains__,
        accepts_text="off, info, warning or critical",
    ),
    ConfigKey(
        "alerts.webhook_min_severity",
        "str",
        "warning",
        "Least severity posted to ALERT_WEBHOOK_URL.",
        accepts=SEVERITY_CHOICES.__contains__,
        accepts_text="off, info, warning or critical",
    ),
    ConfigKey("alerts.telegram_chat_id", "str", "", "Telegram chat that receives alerts."),
    ConfigKey(
        "alerts.telegram_min_severity",
        "str",
        "critical",
        "Least severity sent to Telegram.",
        accepts=SEVERITY_CHOICES.__contains__,
        accepts_text="off, info, warning or critical",
    ),
    ConfigKey(
        "alerts.daily_summary",
        "bool",
        True,
        "Send the P&L, trades and alerts of each trading day at 17:00 New York.",
    ),
)

# The daily parity report (parity/, README "Parity report"): its alert thresholds.
PARITY_KEYS = (
    ConfigKey(
        "parity.slippage_alert_pips",
        "decimal",
        "1.5",
        "Alert (parity.slippage:<pair>) when a day's mean entry slippage against the replay's "
        "assumed price exceeds this many pips.",
        Decimal("0"),
        Decimal("1000"),
    ),
    ConfigKey(
        "parity.slippage_max_alert_pips",
        "decimal",
        "5",
        "Alert (parity.slippage:<pair>) when one entry of the day slipped more than this many "
        "pips against the replay's assumed price.",
        Decimal("0"),
        Decimal("1000"),
    ),
    ConfigKey(
        "parity.live_analysis_days",
        "int",
        400,
        "Keep the live analysis log (one row per pair and minute) this many days; a parity "
        "report of an older day cannot be rerun.",
        7,
        3650,
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
            "risk.max_units_per_order", "int", 1_000_000, "Most units in one order.", 1, 100_000_000
        ),
        ConfigKey(
            "risk.max_units_per_pair",
            "int",
            2_000_000,
            "Most units open on one pair.",
            1,
            100_000_000,
        ),
        ConfigKey(
            "risk.max_margin_used_percent",
            "decimal",
            "50",
            "No entry that would take margin used above this, % of NAV.",
            Decimal("1"),
            Decimal("100"),
        ),
        ConfigKey(
            "risk.one_position_per_pair",
            "bool",
            True,
            "Refuse an entry on a pair that already has an open trade.",
        ),
        ConfigKey(
            "risk.max_orders_per_minute", "int", 10, "Most entries sent in any 60 s.", 1, 1000
        ),
        ConfigKey(
            "risk.loss_streak_length",
            "int",
            3,
            "Losses in a row that start a cooldown (0 = never).",
            0,
            100,
        ),
        ConfigKey(
            "risk.loss_streak_cooldown_minutes",
            "int",
            60,
            "How long entries pause after a losing streak.",
            0,
            10080,
        ),
        ConfigKey(
            "execution.stop_loss_pips",
            "decimal",
            "15",
            "Stop-loss distance when the pair model names none.",
            Decimal("0.5"),
            Decimal("1000"),
        ),
        ConfigKey(
            "execution.take_profit_pips",
            "decimal",
            "30",
            "Take-profit distance when the pair model names none (0 = no take-profit).",
            Decimal("0"),
            Decimal("5000"),
        ),
        ConfigKey(
            "execution.kill_switch_closes_trades",
            "bool",
            True,
            "Whether the kill switch also closes every trade (it always cancels pending orders).",
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
        # Market schedule (trading/market.py) -------------------------------------------------
        ConfigKey(
            "market.holidays",
            "list",
            ["01-01", "12-25"],
            "Days the market is closed from 17:00 New York the evening before to 17:00 on the day: "
            "MM-DD every year, or YYYY-MM-DD once.",
            maximum=400,
            accepts=_is_holiday_date,
            accepts_text="MM-DD or YYYY-MM-DD dates",
        ),
        ConfigKey(
            "market.holiday_calendar",
            "str",
            "",
            "A calendar of the holidays package whose days also close the market: a financial "
            "market code (ECB, NYSE, ...) or a country code (US, GB, ...); empty for none.",
            accepts=_is_holiday_calendar,
            accepts_text="empty, or a financial market or country code of the holidays package",
        ),
        ConfigKey(
            "analysis.cpu_fallback",
            "bool",
            True,
            "Analyse on the droplet's CPU when no GPU worker is connected.",
        ),
        # Automatic demotion of a live pair (trading/demotion.py, README "Automatic demotion") --
        ConfigKey(
            "demotion.enabled",
            "bool",
            True,
            "Switch a live pair to reducing-only when its results fall far below its model's "
            "out-of-sample results.",
        ),
        ConfigKey(
            "demotion.min_trades",
            "int",
            20,
            "Live trades closed on the current model before demotion may judge it.",
            5,
            10000,
        ),
        ConfigKey(
            "demotion.confidence_percent",
            "decimal",
            "95",
            "Two-sided confidence of the Wilson intervals compared (live upper vs model lower).",
            Decimal("50"),
            Decimal("99.9"),
        ),
        ConfigKey(
            "demotion.drawdown_multiple",
            "decimal",
            "2",
            "Demote when the live drawdown exceeds this multiple of the out-of-sample maximum.",
            Decimal("1"),
            Decimal("100"),
        ),
        # The paper stage before live (trading/paper.py, README "Paper stage before live") -----
        ConfigKey(
            "paper.trading_days",
            "int",
            5,
            "New York trading days a pair trades on paper before it may advance to live.",
            1,
            250,
        ),
        ConfigKey(
            "paper.min_trades",
            "int",
            10,
            "Paper trades closed on the model before its paper results may be judged.",
            1,
            10000,
        ),
        # Multi-droplet scaling (nodes/services.py, DESIGN.md section 9) ---------------------
        ConfigKey(
            "cluster.node_silence_seconds",
            "int",
            30,
            "A node whose heartbeat is older than this is down: its pairs move to a healthy node.",
            3,
            3600,
        ),
        *MONITORING_KEYS,
        *PARITY_KEYS,
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
        # The length first, so an oversized value is refused before any check reads it all.
        if not isinstance(value, str) or (spec.max_length and len(value) > spec.max_length):
            raise ConfigValueError(key, value, spec.expectation())
        if "\x00" in value:
            raise ConfigValueError(key, value, spec.expectation() + " without NUL characters")
        if spec.accepts and not spec.accepts(value):
            raise ConfigValueError(key, value, spec.expectation())
        return value
    if spec.kind == "list":
        return _validate_list(spec, value)
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigValueError(key, value, spec.expectation())
        number: Decimal | int = value
    else:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ConfigValueError(key, value, spec.expectation() + " written as a string")
        try:
            number = parse_decimal(value)
        except NonAsciiNumberError:
            raise ConfigValueError(key, value, f"{spec.expectation()}, {ASCII_DIGITS}") from None
        except InvalidOperation:
            raise ConfigValueError(key, value, spec.expectation()) from None
        if not number.is_finite():
            raise ConfigValueError(key, value, spec.expectation())
    if spec.minimum is not None and number < spec.minimum:
        raise ConfigValueError(key, value, spec.expectation())
    if spec.maximum is not None and number > spec.maximum:
        raise ConfigValueError(key, value, spec.expectation())
    return str(number) if spec.kind == "decimal" else number


def _validate_list(spec: ConfigKey, value: Any) -> list[str]:
    """A list of text items, each passing the key's check, stored without duplicates in order."""
    if not isinstance(value, list | tuple) or any(not isinstance(item, str) for item in value):
        raise ConfigValueError(spec.name, value, spec.expectation())
    items = list(dict.fromkeys(item.strip() for item in value))
    if spec.maximum is not None and len(items) > spec.maximum:
        raise ConfigValueError(spec.name, value, spec.expectation())
    for item in items:
        if spec.accepts and not spec.accepts(item):
            raise ConfigValueError(spec.name, item, spec.expectation())
        if "\x00" in item:  # a JSON column cannot hold NUL
            raise ConfigValueError(spec.name, item, spec.expectation() + " without NUL characters")
    return items
