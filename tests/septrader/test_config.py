from __future__ import annotations

import pytest

from septrader.config import ConfigValueError
from septrader.models import SystemConfig
from septrader.selectors import config_get
from septrader.services import config_set


@pytest.mark.django_db
def test_a_setting_reads_its_default_until_set_and_each_change_bumps_its_version() -> None:
    assert config_get("risk.max_open_trades") == 5

    config_set(key="risk.max_open_trades", value=3, updated_by="ops")
    config_set(key="risk.max_open_trades", value=3, updated_by="ops")
    config_set(key="risk.max_open_trades", value=4, updated_by="ops")

    setting = SystemConfig.objects.get(key="risk.max_open_trades")
    assert (setting.value, setting.version) == (4, 2)
    assert config_get("risk.max_open_trades") == 4


@pytest.mark.django_db
def test_decimal_settings_are_stored_as_exact_text() -> None:
    config_set(key="risk.per_trade_percent", value="0.25")
    assert config_get("risk.per_trade_percent") == "0.25"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key, value, message",
    [
        ("risk.max_open_trades", "3", "risk.max_open_trades='3' is not valid; expected an integer"),
        ("risk.max_open_trades", 500, "expected an integer >= 0 and <= 200"),
        ("risk.per_trade_percent", 0.5, "written as a string"),
        ("risk.per_trade_percent", "abc", "risk.per_trade_percent='abc' is not valid"),
        ("risk.per_trade_percent", "NaN", "risk.per_trade_percent='NaN' is not valid"),
        ("analysis.cpu_fallback", "yes", "expected true or false"),
        ("no.such.key", 1, "key='no.such.key' is not valid; expected one of"),
        # Digits of another script (Arabic-Indic 0.5) read as a number by Decimal() itself.
        ("risk.per_trade_percent", "\u0660.\u0665", "written with the ASCII digits 0-9"),
        (
            "alerts.email_to",
            "<script>alert(1)</script>",
            "alerts.email_to='<script>alert(1)</script>' is not valid; expected text (empty, or "
            "e-mail addresses separated by commas) of at most 1000 characters.",
        ),
        ("alerts.email_to", "ops@example.com; desk@example.com", "separated by commas"),
        ("alerts.email_to", "ops@example.com,", "separated by commas"),
        ("alerts.email_to", '"<b>"@example.com', "separated by commas"),
        # A megabyte is refused by its length, and only its start is repeated in the message.
        (
            "alerts.email_to",
            "x" * 1_000_000,
            "alerts.email_to='" + "x" * 79 + "... (1000002 characters) is not valid; expected",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_the_key_value_and_expectation(
    key: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigValueError) as error:
        config_set(key=key, value=value)
    assert message in str(error.value)
    assert not SystemConfig.objects.filter(key=key).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "addresses", ["", "ops@example.com", "ops@example.com, desk+fx@trader.example.org"]
)
def test_alert_email_is_empty_or_plain_addresses_separated_by_commas(addresses: str) -> None:
    config_set(key="alerts.email_to", value=addresses)
    assert config_get("alerts.email_to") == addresses
