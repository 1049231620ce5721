from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from septrader.config import ConfigValueError
from septrader.models import SystemConfig
from septrader.selectors import config_get
from septrader.services import ConfigMergeOutcome, config_merge, config_set


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
def test_every_change_moves_updated_at_and_records_when_and_on_which_node_it_was_made(
    settings: Any,
) -> None:
    # Given a setting first written on one node
    settings.SYNC_NODE_NAME = "droplet-1"
    first = config_set(key="risk.max_open_trades", value=3, updated_by="ops")

    # When it is changed later, on a node with another name
    settings.SYNC_NODE_NAME = "droplet-2"
    second = config_set(key="risk.max_open_trades", value=4, updated_by="admin")

    # Then its write time, change time and node move on with it
    assert second.updated_at > first.updated_at
    assert first.origin_node == "droplet-1" and first.changed_at <= first.updated_at
    assert second.changed_at > first.changed_at
    assert (second.origin_node, second.updated_by, second.version) == ("droplet-2", "admin", 2)

    # And setting the same value again writes nothing
    third = config_set(key="risk.max_open_trades", value=4, updated_by="someone")
    assert (third.updated_at, third.updated_by, third.version) == (second.updated_at, "admin", 2)


@pytest.mark.django_db
def test_a_change_here_is_stamped_after_the_one_it_replaces_though_that_nodes_clock_runs_ahead(
    settings: Any,
) -> None:
    # Given a value imported from a node whose clock is an hour ahead of this one's
    ahead = timezone.now() + timedelta(hours=1)
    config_set(key="risk.max_open_trades", value=3)
    SystemConfig.objects.update(changed_at=ahead, origin_node="fast-clock")

    # When it is changed here
    settings.SYNC_NODE_NAME = "droplet"
    changed = config_set(key="risk.max_open_trades", value=4)

    # Then the change counts as later than the one it replaced, so no import brings that back
    assert changed.changed_at > ahead and changed.origin_node == "droplet"


@pytest.mark.django_db
def test_a_later_change_to_the_same_value_elsewhere_moves_the_change_record_not_the_version(
    settings: Any,
) -> None:
    # Given a setting changed here
    settings.SYNC_NODE_NAME = "droplet"
    config_set(key="risk.max_open_trades", value=3)
    later = timezone.now() + timedelta(minutes=1)

    # When another node's later change to the same value is merged, even by an operator
    merge = config_merge(
        key="risk.max_open_trades",
        value=3,
        changed_at=later,
        origin_node="gpu-pc",
        updated_by="operator",
        may_change=False,
    )

    # Then nothing changed in force, but both nodes now agree on when and where it was set, so
    # they judge a third node's change alike
    stored = SystemConfig.objects.get(key="risk.max_open_trades")
    assert merge.outcome == ConfigMergeOutcome.SAME
    assert (stored.value, stored.version, stored.changed_at) == (3, 1, later)
    assert stored.origin_node == "gpu-pc"


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
