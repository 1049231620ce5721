"""Air-gapped sync (DESIGN.md section 1): signed, versioned bundles of signals, pair models and
config, exported on one node and imported on another.

A bundle is one text file of exactly three lines:

1. the manifest, canonical JSON: format name and version, bundle id, creation time, source node,
   record counts and the SHA-256 of line 2;
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
* config on its key, only where the bundle's version is newer than this node's.

Each imported bundle is recorded (``SyncImport``), so importing it again changes nothing.
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
import socket
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
from trading.models import TradingSignal

logger = logging.getLogger(__name__)

FORMAT = "septrader-sync"
FORMAT_VERSION = 1
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
    "oos_trades",
    "oos_hit_rate",
    "oos_hit_low",
    "oos_hit_high",
    "oos_expectancy_pips",
    "oos_pnl_pips",
    "oos_max_drawdown_pips",
    "oos_sharpe",
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
        {"key": row.key, "value": row.value, "version": row.version}
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
        payload, source_node=socket.gethostname(), created_at=created_at, bundle_id=bundle_id
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
    "version": (lambda value: _is_int(value) and value >= 1, "an integer >= 1"),
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


def verify_bundle(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read and verify a bundle; returns (manifest, payload) or raises BundleRejectedError."""
    secret = _secret()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _reject(path, f"it cannot be read ({error.strerror})") from None
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


def _apply_config(records: list[dict[str, Any]], counts: dict[str, int]) -> None:
    for record in records:
        row = SystemConfig.objects.select_for_update().filter(key=record["key"]).first()
        value = validate_config_value(record["key"], record["value"])
        if row is None:
            SystemConfig.objects.create(
                key=record["key"], value=value, version=record["version"], updated_by="sync"
            )
            counts["config_updated"] += 1
        elif row.version < record["version"]:
            SystemConfig.objects.filter(key=record["key"]).update(
                value=value, version=record["version"], updated_by="sync"
            )
            counts["config_updated"] += 1
        else:
            counts["config_kept_newer_here"] += 1


def sync_import(*, path: Path) -> ImportResult:
    """Verify the bundle at ``path`` and apply it whole, in one transaction (or not at all)."""
    manifest, payload = verify_bundle(path)
    bundle_id = manifest["bundle_id"]
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    counts = dict.fromkeys(
        (
            "signals_created",
            "signals_unchanged",
            "signals_skipped_other_signal_for_candle",
            "pair_models_created",
            "pair_models_promoted",
            "pair_models_promotion_kept",
            "config_updated",
            "config_kept_newer_here",
        ),
        0,
    )
    try:
        with transaction.atomic():
            if SyncImport.objects.select_for_update().filter(bundle_id=bundle_id).exists():
                logger.info("event=sync_already_imported path=%s bundle_id=%s", path, bundle_id)
                return ImportResult(path, bundle_id, True, {})
            models = _apply_models(payload["pair_models"], counts)
            _apply_signals(payload["signals"], models, counts)
            _apply_config(payload["config"], counts)
            SyncImport.objects.create(
                bundle_id=bundle_id,
                sha256=sha256,
                file_name=path.name,
                source_node=manifest["source_node"],
                created_at=_moment(manifest["created_at"]),
                counts=counts,
            )
    except (DatabaseError, ValueError, TypeError) as error:
        # The transaction is rolled back: the bundle is applied whole or not at all.
        raise _reject(path, f"applying it failed ({type(error).__name__}: {error})") from error
    logger.info(
        "event=sync_imported path=%s bundle_id=%s source=%s %s",
        path,
        bundle_id,
        manifest["source_node"],
        " ".join(f"{name}={value}" for name, value in counts.items()),
    )
    return ImportResult(path, bundle_id, False, counts)


def newest_bundle(inbox: Path) -> Path | None:
    """The newest bundle in ``inbox`` (names carry the UTC creation time), or None."""
    if not inbox.is_dir():
        return None
    bundles = sorted(
        entry
        for entry in inbox.iterdir()
        if entry.is_file() and entry.name.startswith(FORMAT) and entry.name.endswith(SUFFIX)
    )
    return bundles[-1] if bundles else None


def sync_import_newest(*, inbox: Path | None = None) -> ImportResult:
    """Import the newest bundle of the inbox (default ``SYNC_INBOX_DIR``)."""
    _secret()
    folder = Path(inbox or settings.SYNC_INBOX_DIR)
    path = newest_bundle(folder)
    if path is None:
        raise SyncError(f"no sync bundle ({FORMAT}-*{SUFFIX}) in the inbox {folder}")
    return sync_import(path=path)
