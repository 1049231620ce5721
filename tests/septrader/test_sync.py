"""Air-gapped sync: signed bundles exported, verified whole, and imported once, all or nothing."""

from __future__ import annotations

import shutil
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

from qfh.models import PairModel
from septrader import sync
from septrader.models import SyncImport, SystemConfig
from septrader.services import config_set
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
    config_set(key="analysis.cpu_fallback", value=True)
    config_set(key="analysis.cpu_fallback", value=False)  # version 3 here, 1 in the bundle
    result = sync.sync_import_newest()

    # Then the signals, the promoted model and the lost setting are back, the newer one is kept
    assert not result.already_imported
    assert result.counts["signals_created"] == 3
    assert result.counts["pair_models_created"] == result.counts["pair_models_promoted"] == 1
    assert result.counts["config_updated"] == result.counts["config_kept_newer_here"] == 1
    restored = snapshot()
    assert restored["signals"] == original["signals"]
    assert restored["signal_models"] == original["signal_models"]
    assert restored["models"] == original["models"]
    assert ("analysis.cpu_fallback", False, 3) in restored["config"]
    assert ("risk.max_open_trades", 3, 1) in restored["config"]

    # And importing the same bundle again changes nothing
    again = sync.sync_import(path=bundle)
    assert again.already_imported
    assert snapshot() == restored
    assert SyncImport.objects.get().file_name == bundle.name


@pytest.mark.django_db
def test_importing_into_a_node_that_has_everything_already_creates_nothing(
    sync_settings: Path,
) -> None:
    bundle = exported(sync_settings)
    before = snapshot()

    result = sync.sync_import(path=bundle)

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
        sync.sync_import_newest()

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
        sync.sync_import(path=bundle)

    settings.SEPTRADER_SYNC_SECRET = SECRET
    monkeypatch.setattr(sync, "FORMAT_VERSION", 2)
    future = bundle.with_name("future" + sync.SUFFIX)
    future.write_bytes(sync.bundle_bytes({}, source_node="pc", created_at=TIME))
    monkeypatch.setattr(sync, "FORMAT_VERSION", 1)
    with pytest.raises(
        sync.BundleRejectedError, match="format version=2; this node reads version 1"
    ):
        sync.sync_import(path=future)
    assert_nothing_written(before)


@pytest.mark.django_db
def test_a_record_that_breaks_a_database_constraint_at_the_end_rolls_back_the_whole_bundle(
    sync_settings: Path,
) -> None:
    # Given a correctly signed bundle whose last row (a config version) the database refuses
    bundle = exported(sync_settings)
    _, payload = sync.verify_bundle(bundle)
    payload["config"][-1]["version"] = 2**31
    bundle.write_bytes(sync.bundle_bytes(payload, source_node="pc", created_at=datetime.now(UTC)))
    TradingSignal.objects.all().delete()
    PairModel.objects.all().delete()
    SystemConfig.objects.all().delete()
    before = snapshot()

    # When it is imported
    with pytest.raises(sync.BundleRejectedError, match="applying it failed"):
        sync.sync_import(path=bundle)

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
        sync.sync_import(path=bundle)


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
    assert "was imported before; nothing changed" in out.getvalue()
    assert TradingSignal.objects.count() == 3

    (inbox / "zz-not-a-bundle.txt").write_text("ignored")
    with pytest.raises(CommandError, match="is not valid; expected an ISO 8601 time"):
        call_command("sync", "export", "--since", "yesterday")


@pytest.mark.django_db
def test_an_empty_inbox_is_a_clear_error(sync_settings: Path) -> None:
    with pytest.raises(sync.SyncError, match="no sync bundle"):
        sync.sync_import_newest()


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
        sync.sync_import(path=damaged_path)
    assert_nothing_written(before)
