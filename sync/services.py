"""Air-gapped sync (DESIGN.md section 1): signed, versioned bundles of signals, pair models and
config, exported on one node and imported on another.

A bundle is one text file of exactly three lines:

1. the manifest, canonical JSON: format name and version, bundle id, creation time, source node
   (``SYNC_NODE_NAME``), record counts and the SHA-256 of line 2;
2. the payload, canonical JSON: ``signals``, ``pair_models`` and ``config`` lists;
3. the HMAC-SHA256 (hex) of lines 1 and 2 joined by a newline, keyed with
   ``SEPTRADER_SYNC_SECRET``.

An import verifies the signature (constant-time compare) before it parses anything, then the
format, the payload hash, the counts and every record's fields; only then does it write, in one
transaction, so a bundle is applied whole or not at all. The rows are upserted on natural keys:

* signals on their id; a signal whose candle (pair, timeframe, time) already has another signal
  here is skipped, and an existing signal is never changed (this node owns its execution state);
* pair models on a content key (pair, timeframe, rule, parameters, horizon, data range, inputs
  hash, seed); a model promoted in the bundle is promoted here unless this node promoted another
  model of the pair later;
* config on its key, by time of change: each setting carries when (UTC) and on which node it was
  last changed, and the later change wins; of two changes at the same instant, the greater node
  name wins (``septrader.services.config_merge``). Version counters are per node and are not
  compared. A key where this node's change is later and the values differ is a conflict: it is
  kept, and reported. Only an admin's import changes settings; an operator's import applies the
  rest and leaves those keys (``SyncImport.config_refused``) for an admin's import of the bundle.
  Every setting an import changes is audited (``config.sync``) with its source bundle.

Each imported bundle is recorded (``SyncImport``) and audited (``sync.import``), so importing it
again changes nothing. A pull (``sync_pull``: ``manage.py sync import``, ``POST /api/sync/pull``)
imports every bundle of the inbox not imported yet, in the order of their signed creation times;
a file that fails is skipped and audited (``sync.rejected``, which the monitor turns into the
``sync.bundle_rejected`` alert), and the other bundles are still imported.

Imported signals are history for the console: they are not sent to execution (by the time a
bundle arrives they are stale; this node's own analysis trades on the imported models).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.dateparse import parse_datetime

from marketdata.models import Pair
from qfh.models import PairModel
from septrader.config import ConfigValueError, validate_config_value
from septrader.models import SyncImport, SystemConfig
from septrader.services import (
    ConfigMergeOutcome,
    audit_record,
    config_generation_bump,
    config_merge,
)
from trading.models import TradingSignal

logger = logging.getLogger(__name__)

FORMAT = "septrader-sync"
# Version 2: config records carry when and where they were changed instead of a version counter.
FORMAT_VERSION = 2
SUFFIX = ".bundle"
# A shorter shared secret is guessable offline from any captured bundle.
MIN_SECRET_LENGTH = 32


class SyncError(Exception):
    """Base of the sync errors; the message says what failed and what was expected."""


class SyncConfigurationError(SyncError):
    """The node is not set up to sync (no secret, no inbox)."""


class BundleRejectedError(SyncError):
    """A bundle failed verification or could not be applied; nothing of it was written."""


@dataclass(frozen=True)
class ImportResult:
    path: Path
    bundle_id: str
    already_imported: bool
    counts: dict[str, int] = field(default_factory=dict)
    source_node: str = ""
    created_at: str = ""
    # The settings this import changed.
    config_changed: list[str] = field(default_factory=list)
    # Settings whose value differs in the bundle but changed later here, so kept: for each, the
    # key and when, where and to what it was changed here and in the bundle.
    config_conflicts: list[dict[str, Any]] = field(default_factory=list)
    # Settings the bundle would change that the importer's role may not (admin needed); they
    # wait for an admin's import of the same bundle.
    config_refused: list[str] = field(default_factory=list)


@dataclass
class PullResult:
    inbox: Path
    imported: list[ImportResult] = field(default_factory=list)
    already_imported: list[str] = field(default_factory=list)
    # Files skipped as bad or unappliable: {"file": name, "reason": why}.
    rejected: list[dict[str, str]] = field(default_factory=list)
    # Settings of the inbox's bundles still waiting for an admin's import.
    config_waiting_for_admin: list[str] = field(default_factory=list)


def _secret() -> bytes:
    secret = settings.SEPTRADER_SYNC_SECRET
    if not secret:
        raise SyncConfigurationError(
            "SEPTRADER_SYNC_SECRET is not set; set it (or SEPTRADER_SYNC_SECRET_FILE) to the same "
            f"random string of at least {MIN_SECRET_LENGTH} characters on every node that syncs."
        )
    if len(secret) < MIN_SECRET_LENGTH:
        raise SyncConfigurationError(
            f"SEPTRADER_SYNC_SECRET has {len(secret)} characters; expected at least "
            f"{MIN_SECRET_LENGTH}."
        )
    return secret.encode()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _signature(secret: bytes, manifest: bytes, payload: bytes) -> str:
    return hmac.new(secret, manifest + b"\n" + payload, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Export.


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def pair_model_key(fields: Mapping[str, Any]) -> str:
    """The natural key of a pair model: a hash of what defines it, the same on every node."""
    identity = {
        name: fields[name]
        for name in (
            "pair",
            "timeframe",
            "rule_type",
            "params",
            "horizon",
            "data_start",
            "data_end",
            "inputs_hash",
            "seed",
        )
    }
    return hashlib.sha256(_canonical(identity)).hexdigest()


_MODEL_FIELDS = (
    "timeframe",
    "rule_type",
    "params",
    "horizon",
    "candles",
    "inputs_hash",
    "seed",
    "search",
    "folds",
    "out_of_sample",
    *PairModel.OOS_FIGURES,
    "gates",
    "failed_gates",
    "passed_gates",
    "promoted",
)


def _model_record(model: PairModel) -> dict[str, Any]:
    record: dict[str, Any] = {name: getattr(model, name) for name in _MODEL_FIELDS}
    record.update(
        pair=model.pair_id,
        data_start=_iso(model.data_start),
        data_end=_iso(model.data_end),
        promoted_at=_iso(model.promoted_at),
    )
    record["key"] = pair_model_key(record)
    return record


def _payload(since: datetime | None) -> dict[str, Any]:
    models = list(PairModel.objects.order_by("id"))
    keys = {}
    model_records = []
    for model in models:
        record = _model_record(model)
        keys[model.pk] = record["key"]
        model_records.append(record)
    signals = TradingSignal.objects.order_by("time", "pair_id")
    if since is not None:
        signals = signals.filter(created_at__gte=since)
    signal_records = [
        {
            "id": str(signal.id),
            "time": _iso(signal.time),
            "pair": signal.pair_id,
            "timeframe": signal.timeframe,
            "direction": signal.direction,
            "confidence": signal.confidence,
            "price": None if signal.price is None else str(signal.price),
            "qfh_metrics": signal.qfh_metrics,
            "pair_model": keys.get(signal.pair_model_id) if signal.pair_model_id else None,
            "status": signal.status,
            "status_reason": signal.status_reason,
        }
        for signal in signals
    ]
    config = [
        {
            "key": row.key,
            "value": row.value,
            "changed_at": _iso(row.changed_at),
            # A change recorded without its node was made here (before origins were recorded).
            "origin_node": row.origin_node or settings.SYNC_NODE_NAME,
        }
        for row in SystemConfig.objects.order_by("key")
    ]
    return {"signals": signal_records, "pair_models": model_records, "config": config}


def bundle_bytes(
    payload: Mapping[str, Any],
    *,
    source_node: str,
    created_at: datetime,
    bundle_id: str | None = None,
) -> bytes:
    """A signed bundle of ``payload`` (exposed so tests can sign bundles of their own)."""
    secret = _secret()
    payload_line = _canonical(payload)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "bundle_id": bundle_id or str(uuid.uuid4()),
        "created_at": created_at.astimezone(UTC).isoformat(),
        "source_node": source_node,
        "counts": {name: len(payload.get(name, [])) for name in _SECTIONS},
        "payload_sha256": hashlib.sha256(payload_line).hexdigest(),
    }
    manifest_line = _canonical(manifest)
    signature = _signature(secret, manifest_line, payload_line)
    return manifest_line + b"\n" + payload_line + b"\n" + signature.encode() + b"\n"


def sync_export(*, directory: Path | None = None, since: datetime | None = None) -> Path:
    """Write a signed bundle of the signals (created since ``since``, or all), every pair model
    and the config into ``directory`` (default ``SYNC_OUTBOX_DIR``); returns its path.

    The file appears under its final name only once complete (written aside, then renamed), so
    an rsync or an import never picks up half a bundle.
    """
    _secret()
    target = Path(directory or settings.SYNC_OUTBOX_DIR)
    target.mkdir(parents=True, exist_ok=True)
    created_at = datetime.now(UTC)
    bundle_id = str(uuid.uuid4())
    with transaction.atomic():
        # One snapshot of the three tables (REPEATABLE READ is not needed for a consistent
        # enough export: the rows are upserts, and the next bundle carries anything missed).
        payload = _payload(since)
    data = bundle_bytes(
        payload, source_node=settings.SYNC_NODE_NAME, created_at=created_at, bundle_id=bundle_id
    )
    name = f"{FORMAT}-v{FORMAT_VERSION}-{created_at:%Y%m%dT%H%M%S%fZ}-{bundle_id[:8]}{SUFFIX}"
    handle, temporary = tempfile.mkstemp(dir=target, prefix=".", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info(
        "event=sync_exported path=%s bundle_id=%s signals=%d pair_models=%d config=%d",
        target / name,
        bundle_id,
        len(payload["signals"]),
        len(payload["pair_models"]),
        len(payload["config"]),
    )
    return target / name


# ---------------------------------------------------------------------------------------------
# Verification: everything is checked before anything is written.

_SECTIONS = ("signals", "pair_models", "config")


def _reject(path: Path, reason: str) -> BundleRejectedError:
    return BundleRejectedError(f"sync bundle {path.name} rejected: {reason}; nothing was imported")


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = parse_datetime(value)
    except ValueError:
        return False
    return moment is not None and moment.tzinfo is not None


def _is_optional_time(value: Any) -> bool:
    return value is None or _is_time(value)


def _is_decimal_text(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


Check = tuple[Callable[[Any], bool], str]
_TEXT: Check = (_is_text, "text")
_NUMBER: Check = (_is_number, "a finite number")
_INT: Check = (_is_int, "an integer")
_TIME: Check = (_is_time, "an ISO 8601 time with a UTC offset")
_OBJECT: Check = (lambda value: isinstance(value, dict), "an object")
_LIST: Check = (lambda value: isinstance(value, list), "a list")
_BOOL: Check = (lambda value: isinstance(value, bool), "true or false")

_SIGNAL_FIELDS: dict[str, Check] = {
    "id": (lambda value: isinstance(value, str) and _is_uuid(value), "a UUID"),
    "time": _TIME,
    "pair": _TEXT,
    "timeframe": _TEXT,
    "direction": (lambda value: value in {"BUY", "SELL"}, "BUY or SELL"),
    "confidence": _NUMBER,
    "price": (_is_decimal_text, "a decimal number as text, or null"),
    "qfh_metrics": _OBJECT,
    "pair_model": (lambda value: value is None or _is_sha256(value), "a model key or null"),
    "status": (lambda value: value in TradingSignal.Status.values, "a signal status"),
    "status_reason": _TEXT,
}
_MODEL_CHECKS: dict[str, Check] = {
    "key": (lambda value: _is_sha256(value), "a SHA-256 hex digest"),
    "pair": _TEXT,
    "timeframe": _TEXT,
    "rule_type": _TEXT,
    "params": _OBJECT,
    "horizon": _INT,
    "data_start": _TIME,
    "data_end": _TIME,
    "candles": _INT,
    "inputs_hash": _TEXT,
    "seed": _INT,
    "search": _OBJECT,
    "folds": _LIST,
    "out_of_sample": _OBJECT,
    "oos_trades": _INT,
    "oos_hit_rate": _NUMBER,
    "oos_hit_low": _NUMBER,
    "oos_hit_high": _NUMBER,
    "oos_expectancy_pips": _NUMBER,
    "oos_pnl_pips": _NUMBER,
    "oos_max_drawdown_pips": _NUMBER,
    "oos_sharpe": _NUMBER,
    "gates": _OBJECT,
    "failed_gates": _LIST,
    "passed_gates": _BOOL,
    "promoted": _BOOL,
    "promoted_at": (_is_optional_time, "an ISO 8601 time or null"),
}
_CONFIG_FIELDS: dict[str, Check] = {
    "key": _TEXT,
    "value": (lambda value: True, "a JSON value"),
    "changed_at": _TIME,
    "origin_node": (
        lambda value: isinstance(value, str) and 1 <= len(value) <= 255,
        "a node name of 1 to 255 characters",
    ),
}
_RECORD_CHECKS = {"signals": _SIGNAL_FIELDS, "pair_models": _MODEL_CHECKS, "config": _CONFIG_FIELDS}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_sha256(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(character in "0123456789abcdef" for character in value)
    )


def _check_records(path: Path, payload: dict[str, Any]) -> None:
    for section, checks in _RECORD_CHECKS.items():
        for index, record in enumerate(payload[section]):
            where = f"{section}[{index}]"
            if not isinstance(record, dict):
                raise _reject(path, f"{where} is {type(record).__name__}; expected an object")
            missing = sorted(set(checks) - set(record))
            if missing:
                raise _reject(path, f"{where} lacks {missing}")
            for name, (check, expected) in checks.items():
                if not check(record[name]):
                    raise _reject(path, f"{where}.{name}={record[name]!r}; expected {expected}")
    known_pairs = set(Pair.objects.values_list("symbol", flat=True))
    model_keys = set()
    for index, model in enumerate(payload["pair_models"]):
        if model["pair"] not in known_pairs:
            raise _reject(path, f"pair_models[{index}].pair={model['pair']!r} is unknown here")
        if pair_model_key(model) != model["key"]:
            raise _reject(path, f"pair_models[{index}].key does not match the model's fields")
        model_keys.add(model["key"])
    for index, signal in enumerate(payload["signals"]):
        if signal["pair"] not in known_pairs:
            raise _reject(path, f"signals[{index}].pair={signal['pair']!r} is unknown here")
        if signal["pair_model"] is not None and signal["pair_model"] not in model_keys:
            raise _reject(path, f"signals[{index}].pair_model is not a model of this bundle")
    for index, row in enumerate(payload["config"]):
        try:
            validate_config_value(row["key"], row["value"])
        except ConfigValueError as error:
            raise _reject(path, f"config[{index}]: {error}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise _reject(path, f"it cannot be read ({error.strerror})") from None


def verify_bundle(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and verify a bundle; returns (manifest, payload) or raises BundleRejectedError."""
    return _verify(path, _read(path))


def _verify(path: Path, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    secret = _secret()
    lines = data.split(b"\n")
    if len(lines) != 4 or lines[3] != b"":
        raise _reject(
            path,
            f"it has {len(lines) - (lines[-1] == b'')} line(s); expected 3 (manifest, payload, "
            "signature): the file is truncated or not a bundle",
        )
    manifest_line, payload_line, signature = lines[0], lines[1], lines[2]
    expected = _signature(secret, manifest_line, payload_line).encode()
    if not hmac.compare_digest(signature, expected):
        raise _reject(
            path,
            "its signature does not match: the bundle was altered, or signed with another "
            "SEPTRADER_SYNC_SECRET",
        )
    try:
        manifest = json.loads(manifest_line)
    except ValueError:
        raise _reject(path, "its manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _reject(path, f"its format is not {FORMAT!r}")
    if manifest.get("version") != FORMAT_VERSION:
        raise _reject(
            path,
            f"format version={manifest.get('version')!r}; this node reads version {FORMAT_VERSION}",
        )
    for name, check in (
        ("bundle_id", lambda value: isinstance(value, str) and _is_uuid(value)),
        ("created_at", _is_time),
        ("source_node", _is_text),
        ("counts", lambda value: isinstance(value, dict)),
        ("payload_sha256", _is_sha256),
    ):
        if not check(manifest.get(name)):
            raise _reject(path, f"manifest.{name}={manifest.get(name)!r} is missing or invalid")
    if hashlib.sha256(payload_line).hexdigest() != manifest["payload_sha256"]:
        raise _reject(path, "the payload's SHA-256 differs from the manifest's")
    try:
        payload = json.loads(payload_line)
    except ValueError:
        raise _reject(path, "its payload is not JSON") from None
    if not isinstance(payload, dict) or sorted(payload) != sorted(_SECTIONS):
        raise _reject(path, f"its payload must hold exactly {list(_SECTIONS)}")
    for section in _SECTIONS:
        if not isinstance(payload[section], list):
            raise _reject(path, f"payload.{section} is not a list")
        if manifest["counts"].get(section) != len(payload[section]):
            raise _reject(
                path,
                f"manifest counts {manifest['counts'].get(section)!r} {section}; the payload "
                f"holds {len(payload[section])}",
            )
    _check_records(path, payload)
    return manifest, payload


# ---------------------------------------------------------------------------------------------
# Import.


def _time(value: str | None) -> datetime | None:
    return None if value is None else _moment(value)


def _moment(value: str) -> datetime:
    moment = parse_datetime(value)
    if moment is None:  # verify_bundle checked every time; this guards a future caller.
        raise ValueError(f"{value!r} is not an ISO 8601 time")
    return moment


def _apply_models(records: list[dict[str, Any]], counts: dict[str, int]) -> dict[str, PairModel]:
    by_key: dict[str, PairModel] = {}
    for record in records:
        candidates = PairModel.objects.filter(
            pair_id=record["pair"], inputs_hash=record["inputs_hash"], seed=record["seed"]
        )
        existing = next(
            (model for model in candidates if _model_record(model)["key"] == record["key"]),
            None,
        )
        if existing is None:
            values = {name: record[name] for name in _MODEL_FIELDS if name != "promoted"}
            existing = PairModel.objects.create(
                pair_id=record["pair"],
                data_start=_moment(record["data_start"]),
                data_end=_moment(record["data_end"]),
                promoted=False,
                **values,
            )
            counts["pair_models_created"] += 1
        by_key[record["key"]] = existing
        if record["promoted"] and not existing.promoted:
            promoted_at = _time(record["promoted_at"]) or datetime.now(UTC)
            current = PairModel.objects.filter(pair_id=record["pair"], promoted=True).first()
            if current is not None and (current.promoted_at or promoted_at) > promoted_at:
                counts["pair_models_promotion_kept"] += 1
                continue
            PairModel.objects.filter(pair_id=record["pair"], promoted=True).update(promoted=False)
            PairModel.objects.filter(pk=existing.pk).update(promoted=True, promoted_at=promoted_at)
            counts["pair_models_promoted"] += 1
    return by_key


def _apply_signals(
    records: list[dict[str, Any]], models: dict[str, PairModel], counts: dict[str, int]
) -> None:
    for record in records:
        time = _moment(record["time"])
        if TradingSignal.objects.filter(pk=record["id"]).exists():
            counts["signals_unchanged"] += 1
            continue
        # A candle that already has a signal here (this node's own analysis) keeps it.
        if TradingSignal.objects.filter(
            pair_id=record["pair"], timeframe=record["timeframe"], time=time
        ).exists():
            counts["signals_skipped_other_signal_for_candle"] += 1
            continue
        TradingSignal.objects.create(
            id=uuid.UUID(record["id"]),
            time=time,
            pair_id=record["pair"],
            timeframe=record["timeframe"],
            direction=record["direction"],
            confidence=record["confidence"],
            price=None if record["price"] is None else Decimal(record["price"]),
            qfh_metrics=record["qfh_metrics"],
            pair_model=models.get(record["pair_model"]) if record["pair_model"] else None,
            status=record["status"],
            status_reason=record["status_reason"],
        )
        counts["signals_created"] += 1


@dataclass(frozen=True)
class _Source:
    """The bundle a change came from, as the audit log names it."""

    file: str
    bundle_id: str
    source_node: str
    created_at: str

    def details(self) -> dict[str, str]:
        return {
            "bundle_file": self.file,
            "bundle_id": self.bundle_id,
            "bundle_source_node": self.source_node,
            "bundle_created_at": self.created_at,
        }


def _apply_config(
    records: list[dict[str, Any]],
    counts: dict[str, int],
    *,
    source: _Source,
    actor: str,
    address: str | None,
    config_allowed: bool,
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """Merge the bundle's settings by time of change; returns (changed, conflicts, refused)."""
    changed: list[str] = []
    conflicts: list[dict[str, Any]] = []
    refused: list[str] = []
    for record in records:
        merge = config_merge(
            key=record["key"],
            value=record["value"],
            changed_at=_moment(record["changed_at"]),
            origin_node=record["origin_node"],
            updated_by=actor,
            may_change=config_allowed,
        )
        if merge.outcome in (ConfigMergeOutcome.CREATED, ConfigMergeOutcome.UPDATED):
            counts["config_updated"] += 1
            changed.append(merge.key)
            audit_record(
                actor=actor,
                action="config.sync",
                target=merge.key,
                details={
                    "from": merge.previous,
                    "to": merge.incoming,
                    "changed_at": record["changed_at"],
                    "origin_node": record["origin_node"],
                    **source.details(),
                },
                address=address,
            )
        elif merge.outcome == ConfigMergeOutcome.KEPT_LATER_HERE:
            counts["config_kept_newer_here"] += 1
            conflicts.append(
                {
                    "key": merge.key,
                    "here": {
                        "value": merge.previous,
                        "changed_at": _iso(merge.previous_changed_at),
                        "origin_node": merge.previous_origin_node,
                    },
                    "bundle": {
                        "value": merge.incoming,
                        "changed_at": record["changed_at"],
                        "origin_node": record["origin_node"],
                    },
                }
            )
        elif merge.outcome == ConfigMergeOutcome.REFUSED:
            counts["config_refused_needs_admin"] += 1
            refused.append(merge.key)
        else:
            counts["config_unchanged"] += 1
    return changed, conflicts, refused


_COUNTS = (
    "signals_created",
    "signals_unchanged",
    "signals_skipped_other_signal_for_candle",
    "pair_models_created",
    "pair_models_promoted",
    "pair_models_promotion_kept",
    "config_updated",
    "config_unchanged",
    "config_kept_newer_here",
    "config_refused_needs_admin",
)


def sync_import(
    *, path: Path, actor: str, address: str | None = None, config_allowed: bool
) -> ImportResult:
    """Verify the bundle at ``path`` and apply it whole, in one transaction (or not at all).

    ``actor`` (a username, or ``system:<component>``) is written to the audit log with every
    change. ``config_allowed`` says whether the caller may change settings (the admin role):
    without it the settings the bundle would change are refused and reported, and an import of
    the same bundle with it applies them later. A bundle imported before is otherwise left alone.
    """
    data = _read(path)
    manifest, payload = _verify(path, data)
    bundle_id = manifest["bundle_id"]
    source = _Source(path.name, bundle_id, manifest["source_node"], manifest["created_at"])
    counts = dict.fromkeys(_COUNTS, 0)
    try:
        with transaction.atomic():
            record = SyncImport.objects.select_for_update().filter(bundle_id=bundle_id).first()
            if record is not None and not (record.config_refused and config_allowed):
                logger.info("event=sync_already_imported path=%s bundle_id=%s", path, bundle_id)
                return ImportResult(
                    path,
                    bundle_id,
                    True,
                    {},
                    source.source_node,
                    source.created_at,
                    config_refused=list(record.config_refused),
                )
            if record is None:
                models = _apply_models(payload["pair_models"], counts)
                _apply_signals(payload["signals"], models, counts)
            # else: an operator imported the rest of it before; only the settings are left.
            changed, conflicts, refused = _apply_config(
                payload["config"],
                counts,
                source=source,
                actor=actor,
                address=address,
                config_allowed=config_allowed,
            )
            _record_import(
                record,
                data=data,
                source=source,
                counts=counts,
                config=(changed, conflicts, refused),
                actor=actor,
                address=address,
            )
    except (DatabaseError, ValueError, TypeError) as error:
        # The transaction is rolled back: the bundle is applied whole or not at all.
        raise _reject(path, f"applying it failed ({type(error).__name__}: {error})") from error
    logger.info(
        "event=sync_imported path=%s bundle_id=%s source=%s created_at=%s %s",
        path,
        bundle_id,
        source.source_node,
        source.created_at,
        " ".join(f"{name}={value}" for name, value in counts.items()),
    )
    return ImportResult(
        path,
        bundle_id,
        False,
        counts,
        source.source_node,
        source.created_at,
        changed,
        conflicts,
        refused,
    )


def _record_import(
    record: SyncImport | None,
    *,
    data: bytes,
    source: _Source,
    counts: dict[str, int],
    config: tuple[list[str], list[dict[str, Any]], list[str]],
    actor: str,
    address: str | None,
) -> None:
    """Record the import (``record``: the earlier import of the same bundle, if any) and audit it;
    in the import's transaction. ``config`` is what ``_apply_config`` returned."""
    changed, conflicts, refused = config
    if record is None:
        SyncImport.objects.create(
            bundle_id=source.bundle_id,
            sha256=hashlib.sha256(data).hexdigest(),
            file_name=source.file,
            source_node=source.source_node,
            created_at=_moment(source.created_at),
            counts=counts,
            config_refused=refused,
        )
    else:
        SyncImport.objects.filter(pk=record.pk).update(config_refused=refused)
    audit_record(
        actor=actor,
        action="sync.import",
        target=source.file,
        details={
            **source.details(),
            "counts": counts,
            "config_changed": changed,
            "config_conflicts": conflicts,
            "config_refused": refused,
        },
        address=address,
    )
    if changed:
        transaction.on_commit(config_generation_bump)


def inbox_files(inbox: Path) -> list[Path]:
    """The candidate bundles of ``inbox``: its visible files named ``*.bundle``, by name.

    Files whose names start with a dot are skipped: rsync and ``sync export`` write there before
    they rename a complete file into place.
    """
    if not inbox.is_dir():
        return []
    return sorted(
        entry
        for entry in inbox.iterdir()
        if entry.is_file() and not entry.name.startswith(".") and entry.name.endswith(SUFFIX)
    )


def _record_rejection(
    result: PullResult, path: Path, error: BundleRejectedError, actor: str, address: str | None
) -> None:
    reason = str(error)
    result.rejected.append({"file": path.name, "reason": reason})
    logger.warning("event=sync_bundle_rejected path=%s reason=%r", path, reason)
    audit_record(
        actor=actor,
        action="sync.rejected",
        target=path.name,
        details={"file": str(path), "reason": reason},
        address=address,
    )


def sync_pull(
    *,
    inbox: Path | None = None,
    actor: str,
    address: str | None = None,
    config_allowed: bool,
) -> PullResult:
    """Import every bundle of the inbox (default ``SYNC_INBOX_DIR``) not imported yet, oldest
    first by the creation time in its signed manifest (file names do not matter).

    A file that fails verification or cannot be applied is skipped and audited as
    ``sync.rejected`` (the monitor raises ``sync.bundle_rejected``); it stays where it is, so a
    copy still being written is imported by a later pull, and it never blocks the other bundles.
    The pull itself is audited as ``sync.pull``.
    """
    _secret()
    folder = Path(inbox or settings.SYNC_INBOX_DIR)
    files = inbox_files(folder)
    if not files:
        raise SyncError(f"no sync bundle (*{SUFFIX}) in the inbox {folder}")
    result = PullResult(inbox=folder)
    digests: dict[Path, str] = {}
    for path in files:
        try:
            digests[path] = hashlib.sha256(_read(path)).hexdigest()
        except BundleRejectedError as error:
            _record_rejection(result, path, error, actor, address)
    # A file imported before is not verified again unless it still holds settings for an admin.
    imported = dict(
        SyncImport.objects.filter(sha256__in=digests.values()).values_list(
            "sha256", "config_refused"
        )
    )
    due: list[tuple[datetime, str, Path]] = []
    for path, digest in digests.items():
        if digest in imported and not (imported[digest] and config_allowed):
            result.already_imported.append(path.name)
            continue
        try:
            manifest, _ = verify_bundle(path)
        except BundleRejectedError as error:
            _record_rejection(result, path, error, actor, address)
            continue
        due.append((_moment(manifest["created_at"]), manifest["bundle_id"], path))
    for _, _, path in sorted(due):
        try:
            outcome = sync_import(
                path=path, actor=actor, address=address, config_allowed=config_allowed
            )
        except BundleRejectedError as error:
            _record_rejection(result, path, error, actor, address)
            continue
        if outcome.already_imported:
            result.already_imported.append(path.name)
        else:
            result.imported.append(outcome)
    waiting = SyncImport.objects.filter(sha256__in=digests.values()).values_list(
        "config_refused", flat=True
    )
    result.config_waiting_for_admin = sorted({key for keys in waiting for key in keys})
    audit_record(
        actor=actor,
        action="sync.pull",
        target=str(folder),
        details={
            "imported": [outcome.path.name for outcome in result.imported],
            "already_imported": len(result.already_imported),
            "rejected": [item["file"] for item in result.rejected],
            "config_waiting_for_admin": result.config_waiting_for_admin,
        },
        address=address,
    )
    return result
