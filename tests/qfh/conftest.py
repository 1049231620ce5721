"""Fixtures of the QFH tests: the golden file, the strict device double, and a usable CuPy when
there is one.

No fixture picks an array module for every test: a test that runs the analysis names its module
(``xp=np``, the ``strict_cupy`` double, or real CuPy), and entry points (tasks, commands, the CLI)
follow ``QFH_BACKEND`` as in production.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.qfh import strict_device

DATA = Path(__file__).resolve().parent / "data"
GOLDEN_FILE = DATA / "qfh_reference_day1.csv"
REPO = Path(__file__).resolve().parents[2]
CANDLES_FILE = REPO / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"
# On PYTHONPATH, this folder makes ``import cupy`` give the strict device double.
CUPY_SHIM = Path(__file__).resolve().parent / "cupy_shim"


def device_env(**extra: str) -> dict[str, str]:
    """The environment of a process (worker, CLI, bench) whose ``import cupy`` is the strict
    double, with ``QFH_BACKEND=auto``: auto resolves to the double there, as to CuPy on a GPU."""
    path = os.pathsep.join(p for p in (str(CUPY_SHIM), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "QFH_BACKEND": "auto", **extra}


def _configured_django_settings() -> Any:
    # The engine's GPU tests also run on a bare GPU machine, without Django.
    try:
        from django.conf import settings
    except ImportError:
        return None
    return settings if settings.configured else None


@pytest.fixture
def strict_cupy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The strict device double as ``cupy`` in this process, with ``QFH_BACKEND=auto`` (the
    environment and, when Django is configured, the setting): entry points resolve to it."""
    monkeypatch.setitem(sys.modules, "cupy", strict_device)
    monkeypatch.setenv("QFH_BACKEND", "auto")
    monkeypatch.delenv("STRICT_DEVICE_COUNT", raising=False)
    monkeypatch.delenv("STRICT_DEVICE_FREE_BYTES", raising=False)
    django_settings = _configured_django_settings()
    if django_settings is not None:
        monkeypatch.setattr(django_settings, "QFH_BACKEND", "auto")
    strict_device.reset_counts()
    yield strict_device


@pytest.fixture(scope="session")
def golden_rows() -> list[dict[str, str]]:
    """The 1,929 rows of the original C++ engine's output (QFH_SPEC.md section 0.1)."""
    with GOLDEN_FILE.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def eur_usd_closes() -> np.ndarray:
    """Closes of the bundled real EUR/USD M1 candles (48 h)."""
    if not CANDLES_FILE.exists():
        pytest.skip(f"{CANDLES_FILE} is missing")
    with CANDLES_FILE.open() as handle:
        return np.array([candle["close"] for candle in json.load(handle)], dtype=np.float64)


@pytest.fixture(scope="session")
def cupy() -> ModuleType:
    """CuPy with a CUDA device, or a skip."""
    module = pytest.importorskip("cupy")
    if module is strict_device:
        pytest.skip("cupy is the strict device double here")
    try:
        devices = module.cuda.runtime.getDeviceCount()
    except Exception as error:  # No driver or no device: the test cannot run here.
        pytest.skip(f"CuPy sees no CUDA device: {error}")
    if devices < 1:
        pytest.skip("CuPy sees no CUDA device")
    return module


@pytest.fixture
def start_worker(
    transactional_db: Any, django_db_serialized_rollback: Any
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start real Celery workers on chosen queues and roles, against the test database and the
    test broker (the pattern of ``tests/conftest.py::celery_worker``); all stop at the end.

    Like that fixture, tests using it run with committed rows (``transactional_db``).
    """

    from tests.conftest import REPO, celery_worker_command, require, worker_database_url

    broker = os.environ.get("CELERY_BROKER_URL", "")
    require(broker.startswith("redis://"), "CELERY_BROKER_URL must point at Redis")
    require(bool(os.environ.get("CELERY_RESULT_BACKEND")), "CELERY_RESULT_BACKEND must be set")
    started: list[subprocess.Popen[bytes]] = []

    def start(
        *,
        queues: str,
        role: str,
        name: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """A worker; ``env`` replaces the environment (``device_env()`` for the double) and
        ``log`` receives its output (at INFO)."""
        extra = ("--loglevel", "INFO") if log else ()
        output = log.open("wb") if log else None
        try:
            process = subprocess.Popen(
                celery_worker_command(queues, name=name, extra=extra),
                cwd=REPO,
                env={
                    **(env or {**os.environ, "QFH_BACKEND": "numpy"}),
                    "DJANGO_SETTINGS_MODULE": "septrader.settings",
                    "DATABASE_URL": worker_database_url(),
                    "SEPTRADER_ROLE": role,
                },
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
            )
        finally:
            if output:
                output.close()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            process.wait(timeout=30)
