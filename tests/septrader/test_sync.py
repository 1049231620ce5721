"""Air-gapped sync: signed bundles exported, verified whole, and imported once, all or nothing;
settings merged by time of change, audited, and changed only by admins."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from monitoring.models import Alert
from monitoring.services import alerts_evaluate
from qfh.models import PairModel
from septrader.models import AuditLog, SyncImport, SystemConfig
from septrader.selectors import config_get
from septrader.services import config_set, config_update
from sync import services as sync
from tests.api.conftest import client_for, make_user
from tests.qfh.test_live_signals import make_pair_model
from trading.models import TradingSignal

SECRET = "a-test-sync-secret-that-is-long-enough-0123456789"
TIME = datetime(2025, 7, 24, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def sync_settings(settings: Any, tmp_path: Path) -> Path:
    settings.SEPTRADER_SYNC_SECRET = SECRET
    settings.SYNC_INBOX_DIR = tmp_path / "inbox"
    settings.SYNC_OUTBOX_DIR = tmp_path / "outbox"
    return tmp_path


def make_signals(model: PairModel) -> list[TradingSignal]:
    return [
        TradingSignal.objects.create(
            time=TIME + timedelta(minutes=minute),
            pair_id="EUR_USD",
            direction="BUY" if minute % 2 else "SELL",
            confidence=0.7 + minute / 100,
            price="1.17718",
            qfh_metrics={"coherence": 0.4, "rule_type": "testbed"},
            pair_model=model,
        )
        for minute in range(3)
    ]


def snapshot() -> dict[str, Any]:
    """What a user sees of the synced tables (ids of models differ between nodes)."""
    return {
        "signals": sorted(
            TradingSignal.objects.values_list(
                "id", "time", "pair_id", "direction", "confidence", "price", "qfh_metrics", "status"
            )
        ),
        "signal_models": sorted(
            TradingSignal.objects.values_list("id", "pair_model__inputs_hash", "pair_model__seed")
        ),
        "models": sorted(
            PairModel.objects.values_list("pair_id", "rule_type", "inputs_hash", "promoted")
        ),
        "config": sorted(SystemConfig.objects.values_list("key", "value", "version")),
    }


def exported(tmp_path: Path) -> Path:
    """A bundle of one promoted model, its three signals and two settings, in the inbox."""
    model = make_pair_model("EUR_USD", "testbed", {"buy_threshold": 0.55})
    make_signals(model)
    config_set(key="risk.max_open_trades", value=3)
    config_set(key="analysis.cpu_fallback", value=False)
    path = sync.sync_export()
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return Path(shutil.copy(path, inbox / path.name))


def assert_nothing_written(before: dict[str, Any]) -> None:
    assert snapshot() == before
    assert not SyncImport.objects.exists()


def import_bundle(path: Path) -> sync.ImportResult:
    return sync.sync_import(path=path, actor="tester", config_allowed=True)


def to_inbox(path: Path, inbox: Path, name: str | None = None) -> Path:
    inbox.mkdir(exist_ok=True)
    return Path(shutil.copy(path, inbox / (name or path.name)))


def setting(key: str) -> tuple[Any, int, str]:
    row = SystemConfig.objects.get(key=key)
    return row.value, row.version, row.origin_node


def config_bundle(
    inbox: Path, name: str, node: str, created_at: datetime, config: list[dict[str, Any]]
) -> Path:
    """A bundle of settings only, as another node would sign it."""
    payload = {"signals": [], "pair_models": [], "config": config}
    inbox.mkdir(exist_ok=True)
    path = inbox / name
    path.write_bytes(sync.bundle_bytes(payload, source_node=node, created_at=created_at))
    return path


@pytest.mark.django_db
def test_an_import_restores_what_was_lost_keeps_newer_config_and_a_second_import_changes_nothing(
    sync_settings: Path,
) -> None:
    # Given a bundle exported from this node
    bundle = exported(sync_settings)
    original = snapshot()

    # When the rows are lost and one setting is changed here after the export
    TradingSignal.objects.all().delete()
    PairModel.objects.all().delete()
    SystemConfig.objects.filter(key="risk.max_open_trades").delete()
    config_set(key="analysis.cpu_fallback", value=True)  # False in the bundle
    pulled = sync.sync_pull(actor="tester", config_allowed=True)

    # Then the signals, the promoted model and the lost setting are back, the later one is kept
    [result] = pulled.imported
    assert not result.already_imported
    assert result.counts["signals_created"] == 3
    assert result.counts["pair_models_created"] == result.counts["pair_models_promoted"] == 1
    assert result.counts["config_updated"] == result.counts["config_kept_newer_here"] == 1
    assert [conflict["key"] for conflict in result.config_conflicts] == ["analysis.cpu_fallback"]
    restored = snapshot()
    assert restored["signals"] == original["signals"]
    assert restored["signal_models"] == original["signal_models"]
    assert restored["models"] == original["models"]
    assert ("analysis.cpu_fallback", True, 2) in restored["config"]
    assert ("risk.max_open_trades", 3, 1) in restored["config"]

    # And importing the same bundle again changes nothing
    again = import_bundle(bundle)
    assert again.already_imported
    assert snapshot() == restored
    assert SyncImport.objects.get().file_name == bundle.name


@pytest.mark.django_db
def test_importing_into_a_node_that_has_everything_already_creates_nothing(
    sync_settings: Path,
) -> None:
    bundle = exported(sync_settings)
    before = snapshot()

    result = import_bundle(bundle)

    assert result.counts["signals_unchanged"] == 3
    assert result.counts["signals_created"] == result.counts["pair_models_created"] == 0
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data.replace(b'"BUY"', b'"SELL"', 1), "signature does not match"),
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:-1], "truncated"),
        (lambda data: data + b"extra\n", "truncated or not a bundle"),
        (lambda data: b"", "truncated"),
    ],
    ids=["altered", "half", "last-byte", "appended", "empty"],
)
def test_a_damaged_bundle_is_rejected_whole_with_the_reason(
    sync_settings: Path, damage: Any, message: str
) -> None:
    bundle = exported(sync_settings)
    bundle.write_bytes(damage(bundle.read_bytes()))
    TradingSignal.objects.all().delete()
    before = snapshot()

    with pytest.raises(sync.BundleRejectedError, match=message) as error:
        import_bundle(bundle)

    assert bundle.name in str(error.value) and "nothing was imported" in str(error.value)
    assert_nothing_written(before)


@pytest.mark.django_db
def test_a_bundle_signed_with_another_secret_or_format_version_is_rejected(
    sync_settings: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = exported(sync_settings)
    TradingSignal.objects.all().delete()
    before = snapshot()

    settings.SEPTRADER_SYNC_SECRET = "another-secret-of-the-required-length-000000"
    with pytest.raises(sync.BundleRejectedError, match="another SEPTRADER_SYNC_SECRET"):
        import_bundle(bundle)

    settings.SEPTRADER_SYNC_SECRET = SECRET
    version = sync.FORMAT_VERSION
    for other in (version - 1, version + 1):
        monkeypatch.setattr(sync, "FORMAT_VERSION", other)
        other_path = bundle.with_name(f"v{other}{sync.SUFFIX}")
        other_path.write_bytes(sync.bundle_bytes({}, source_node="pc", created_at=TIME))
        monkeypatch.setattr(sync, "FORMAT_VERSION", version)
        with pytest.raises(
            sync.BundleRejectedError,
            match=f"format version={other}; this node reads version {version}",
        ):
            import_bundle(other_path)
    assert_nothing_written(before)


@pytest.mark.django_db
def test_a_record_the_database_refuses_after_others_were_written_rolls_back_the_whole_bundle(
    sync_settings: Path,
) -> None:
    # Given a correctly signed bundle whose last signal has a price the database cannot hold
    bundle = exported(sync_settings)
    _, payload = sync.verify_bundle(bundle)
    payload["signals"][-1]["price"] = "1e20"
    bundle.write_bytes(sync.bundle_bytes(payload, source_node="pc", created_at=datetime.now(UTC)))
    TradingSignal.objects.all().delete()
    PairModel.objects.all().delete()
    SystemConfig.objects.all().delete()
    before = snapshot()

    # When it is imported
    with pytest.raises(sync.BundleRejectedError, match="applying it failed"):
        import_bundle(bundle)

    # Then none of the rows applied before the failure remain
    assert_nothing_written(before)


@pytest.mark.django_db
def test_a_bundle_with_an_invalid_record_names_the_record_field_and_expectation(
    sync_settings: Path,
) -> None:
    bundle = exported(sync_settings)
    _, payload = sync.verify_bundle(bundle)
    payload["signals"][1]["direction"] = "HOLD"
    bundle.write_bytes(sync.bundle_bytes(payload, source_node="pc", created_at=TIME))

    with pytest.raises(
        sync.BundleRejectedError, match=r"signals\[1\]\.direction='HOLD'; expected BUY or SELL"
    ):
        import_bundle(bundle)


@pytest.mark.django_db
def test_syncing_without_a_secret_says_which_setting_is_missing(settings: Any) -> None:
    settings.SEPTRADER_SYNC_SECRET = None

    with pytest.raises(sync.SyncConfigurationError, match="SEPTRADER_SYNC_SECRET is not set"):
        sync.sync_export()
    with pytest.raises(CommandError, match="SEPTRADER_SYNC_SECRET"):
        call_command("sync", "import")


@pytest.mark.django_db
def test_the_sync_command_exports_and_imports_the_newest_bundle_of_the_inbox(
    sync_settings: Path,
) -> None:
    make_signals(make_pair_model("EUR_USD", "testbed", {}))
    inbox = sync_settings / "inbox"
    out = StringIO()
    call_command("sync", "export", "--dir", str(inbox), stdout=out)
    assert out.getvalue().startswith(f"Wrote {inbox}")
    TradingSignal.objects.all().delete()

    out = StringIO()
    call_command("sync", "import", stdout=out)
    assert "signals_created=3" in out.getvalue()
    out = StringIO()
    call_command("sync", "import", stdout=out)
    assert "1 bundle(s) were imported before; nothing changed" in out.getvalue()
    assert TradingSignal.objects.count() == 3

    (inbox / "zz-not-a-bundle.txt").write_text("ignored")
    with pytest.raises(CommandError, match="is not valid; expected an ISO 8601 time"):
        call_command("sync", "export", "--since", "yesterday")


@pytest.mark.django_db
def test_an_empty_inbox_is_a_clear_error(sync_settings: Path) -> None:
    with pytest.raises(sync.SyncError, match="no sync bundle"):
        sync.sync_pull(actor="tester", config_allowed=True)


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_or_truncation_is_rejected_cleanly_and_writes_nothing(
    sync_settings: Path, data: st.DataObject
) -> None:
    # Given a bundle (made once per test run) and a node that lost its signals
    bundle = sync_settings / "fuzz.bundle"
    if not bundle.exists():
        shutil.copy(exported(sync_settings), bundle)
        TradingSignal.objects.all().delete()
    original = bundle.read_bytes()
    before = snapshot()

    # When one byte is changed, or the file is cut short
    if data.draw(st.booleans(), label="flip"):
        position = data.draw(st.integers(0, len(original) - 1), label="position")
        mask = data.draw(st.integers(1, 255), label="mask")
        damaged = bytearray(original)
        damaged[position] ^= mask
        candidate = bytes(damaged)
    else:
        candidate = original[: data.draw(st.integers(0, len(original) - 1), label="length")]
    damaged_path = sync_settings / "damaged.bundle"
    damaged_path.write_bytes(candidate)

    # Then the import refuses it with a reason, and nothing is written
    with pytest.raises(sync.BundleRejectedError, match="nothing was imported"):
        import_bundle(damaged_path)
    assert_nothing_written(before)


# ---------------------------------------------------------------------------------------------
# Settings merge by time of change, are audited, and are changed only by admins.


@pytest.mark.django_db
def test_an_older_change_from_another_node_does_not_roll_back_a_later_admin_change_here(
    sync_settings: Path, settings: Any
) -> None:
    # Given a bundle exported on the PC after eight changes of a setting there (version 8); the
    # test plays both nodes on one database
    settings.SYNC_NODE_NAME = "gpu-pc"
    for trades in range(1, 9):
        config_set(key="risk.max_open_trades", value=trades, updated_by="pc-user")
    bundle = sync.sync_export()

    # And, later, four changes of the same setting on the droplet, the last by an admin
    settings.SYNC_NODE_NAME = "droplet"
    SystemConfig.objects.all().delete()
    for trades in (20, 21, 22):
        config_set(key="risk.max_open_trades", value=trades)
    config_update(values={"risk.max_open_trades": 4}, actor="admin")

    # When the droplet imports the PC's bundle
    out = StringIO()
    call_command("sync", "import", "--file", str(bundle), stdout=out)

    # Then the admin's later change is kept (the times decide, not the versions 8 and 4), and
    # the import says so
    assert config_get("risk.max_open_trades") == 4
    assert setting("risk.max_open_trades") == (4, 4, "droplet")
    assert "Kept risk.max_open_trades=4: changed here at" in out.getvalue()
    assert "later than the bundle's 8 of" in out.getvalue()
    assert not AuditLog.objects.filter(action="config.sync").exists()


@pytest.mark.django_db
def test_a_later_change_from_another_node_wins_though_its_version_counter_is_lower(
    sync_settings: Path, settings: Any
) -> None:
    # Given a setting changed five times on the droplet (version 5)
    settings.SYNC_NODE_NAME = "droplet"
    for trades in range(1, 6):
        config_set(key="risk.max_open_trades", value=trades)
    droplet_row = SystemConfig.objects.get(key="risk.max_open_trades")

    # And a later, single change of it on the PC (version 1 there), exported
    settings.SYNC_NODE_NAME = "gpu-pc"
    SystemConfig.objects.all().delete()
    config_set(key="risk.max_open_trades", value=2, updated_by="pc-user")
    bundle = sync.sync_export()

    # When the droplet, holding its own row again, imports the PC's bundle
    settings.SYNC_NODE_NAME = "droplet"
    SystemConfig.objects.all().delete()
    droplet_row.save()
    call_command("sync", "import", "--file", str(bundle), stdout=StringIO())

    # Then the PC's later value is in force, as this node's sixth version of the setting
    assert config_get("risk.max_open_trades") == 2
    assert setting("risk.max_open_trades") == (2, 6, "gpu-pc")


@pytest.mark.django_db
def test_two_changes_at_the_same_instant_settle_on_the_greater_node_name_whatever_the_order(
    sync_settings: Path, settings: Any
) -> None:
    inbox = sync_settings / "inbox"
    moment = datetime(2025, 7, 24, 15, 31, 32, tzinfo=UTC)

    def change(node: str, value: int) -> dict[str, Any]:
        return {
            "key": "risk.max_open_trades",
            "value": value,
            "changed_at": moment.isoformat(),
            "origin_node": node,
        }

    alpha = config_bundle(inbox, "alpha.bundle", "alpha", moment, [change("alpha", 7)])
    beta = config_bundle(inbox, "beta.bundle", "beta", moment, [change("beta", 9)])

    # Given node alpha's own change, it takes beta's (the greater name)
    settings.SYNC_NODE_NAME = "alpha"
    import_bundle(alpha)
    assert import_bundle(beta).config_changed == ["risk.max_open_trades"]
    assert setting("risk.max_open_trades")[::2] == (9, "beta")

    # And node beta, given alpha's, keeps its own
    settings.SYNC_NODE_NAME = "beta"
    SystemConfig.objects.all().delete()
    SyncImport.objects.all().delete()
    import_bundle(beta)
    kept = import_bundle(alpha)
    assert kept.config_changed == [] and kept.config_conflicts[0]["key"] == "risk.max_open_trades"
    assert setting("risk.max_open_trades")[::2] == (9, "beta")


def pull_as(role: str) -> dict[str, Any]:
    """POST /api/sync/pull as a new user of ``role``; the answer's result."""
    user = make_user(role, name=f"{role}-{uuid.uuid4().hex[:8]}")
    response = client_for(user).post("/api/sync/pull")
    assert response.status_code == 200, response.content
    result: dict[str, Any] = response.json()["result"]
    return result


@pytest.mark.django_db
@pytest.mark.parametrize("way", ["cli", "api"])
def test_every_setting_an_import_changes_is_audited_with_its_source_bundle(
    sync_settings: Path, settings: Any, way: str
) -> None:
    # Given a bundle of the PC with two settings this droplet does not have
    bundle = exported(sync_settings)
    SystemConfig.objects.all().delete()
    manifest, _ = sync.verify_bundle(bundle)

    # When it is imported by the command, or pulled by an admin
    if way == "cli":
        call_command("sync", "import", stdout=StringIO())
        actor = "system:manage.py"
    else:
        pull_as("admin")
        actor = AuditLog.objects.filter(action="sync.pull").get().actor

    # Then each setting changed has an audit entry naming the bundle it came from
    entries = {
        entry.target: entry for entry in AuditLog.objects.filter(action="config.sync", actor=actor)
    }
    assert sorted(entries) == ["analysis.cpu_fallback", "risk.max_open_trades"]
    details = entries["risk.max_open_trades"].details
    assert (details["from"], details["to"]) == (None, 3)
    assert details["bundle_id"] == manifest["bundle_id"]
    assert details["bundle_created_at"] == manifest["created_at"]
    assert details["bundle_source_node"] == manifest["source_node"]
    assert details["bundle_file"] == bundle.name
    assert AuditLog.objects.filter(action="sync.import", target=bundle.name).count() == 1


@pytest.mark.django_db
def test_an_operators_pull_imports_models_and_signals_but_leaves_settings_for_an_admin(
    sync_settings: Path,
) -> None:
    # Given a bundle of a model, its signals and two settings, none of which this droplet has
    exported(sync_settings)
    TradingSignal.objects.all().delete()
    PairModel.objects.all().delete()
    SystemConfig.objects.all().delete()

    # When an operator pulls it
    result = pull_as("operator")

    # Then the signals and the model are in, but no setting changed, and the answer says which
    # settings wait for an admin
    assert TradingSignal.objects.count() == 3 and PairModel.objects.count() == 1
    assert not SystemConfig.objects.exists()
    assert result["config_waiting_for_admin"] == ["analysis.cpu_fallback", "risk.max_open_trades"]
    assert sorted(result["imported"][0]["config_refused"]) == result["config_waiting_for_admin"]
    assert not AuditLog.objects.filter(action="config.sync").exists()

    # And an operator's second pull changes nothing
    assert pull_as("operator")["config_waiting_for_admin"] == result["config_waiting_for_admin"]
    assert not AuditLog.objects.filter(action="config.sync").exists()

    # When an admin pulls, the settings are applied and audited under the admin's name
    admin_result = pull_as("admin")
    assert admin_result["config_waiting_for_admin"] == []
    assert sorted(SystemConfig.objects.values_list("key", "value")) == [
        ("analysis.cpu_fallback", False),
        ("risk.max_open_trades", 3),
    ]
    actors = set(AuditLog.objects.filter(action="config.sync").values_list("actor", flat=True))
    assert len(actors) == 1 and actors.pop().startswith("admin-")
    assert TradingSignal.objects.count() == 3 and PairModel.objects.count() == 1


@pytest.mark.django_db
def test_a_bad_file_in_the_inbox_is_skipped_with_an_alert_and_blocks_no_bundle(
    sync_settings: Path, settings: Any
) -> None:
    # Given a good bundle and, sorting after it, a file that is not one
    inbox = sync_settings / "inbox"
    bundle = exported(sync_settings)
    junk = inbox / "septrader-sync-v9-99999999T999999999999Z-ffffffff.bundle"
    junk.write_text("not a bundle\n")
    TradingSignal.objects.all().delete()

    # When the inbox is pulled
    result = pull_as("admin")

    # Then the good bundle is imported and the bad file skipped with its reason
    assert [item["path"] for item in result["imported"]] == [str(bundle)]
    assert TradingSignal.objects.count() == 3
    assert [item["file"] for item in result["rejected"]] == [junk.name]
    assert "truncated or not a bundle" in result["rejected"][0]["reason"]

    # And the monitor raises an alert naming the file
    evaluation = alerts_evaluate()
    assert "sync.bundle_rejected" in evaluation.raised
    alert = Alert.objects.get(condition="sync.bundle_rejected", resolved_at__isnull=True)
    assert junk.name in alert.message and alert.severity == "warning"

    # And a bundle arriving later is still imported, by the command as well (which exits
    # non-zero because of the bad file)
    later = to_inbox(sync.sync_export(), inbox)
    TradingSignal.objects.all().delete()
    with pytest.raises(CommandError, match="1 file\\(s\\) of the inbox were rejected"):
        call_command("sync", "import", stdout=StringIO(), stderr=StringIO())
    assert SyncImport.objects.filter(file_name=later.name).exists()
    assert TradingSignal.objects.count() == 3


@pytest.mark.django_db
def test_bundles_are_applied_in_the_order_of_their_signed_creation_time_not_their_names(
    sync_settings: Path, settings: Any
) -> None:
    # Given two bundles of the PC, the earlier named to sort last
    inbox = sync_settings / "inbox"
    settings.SYNC_NODE_NAME = "gpu-pc"
    config_set(key="risk.max_open_trades", value=1)
    first = to_inbox(sync.sync_export(), inbox, "septrader-sync-zz.bundle")
    config_set(key="risk.max_open_trades", value=2)
    second = to_inbox(sync.sync_export(), inbox, "septrader-sync-aa.bundle")

    # When a droplet without the setting pulls them
    settings.SYNC_NODE_NAME = "droplet"
    SystemConfig.objects.all().delete()
    result = pull_as("admin")

    # Then both are imported, oldest first, and the setting went 1 then 2
    changes = AuditLog.objects.filter(action="config.sync").order_by("id")
    assert [(entry.details["from"], entry.details["to"]) for entry in changes] == [
        (None, 1),
        (1, 2),
    ]
    assert [item["path"] for item in result["imported"]] == [str(first), str(second)]
    assert setting("risk.max_open_trades") == (2, 2, "gpu-pc")
