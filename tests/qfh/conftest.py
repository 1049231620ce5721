"""Fixtures of the QFH engine tests: the golden file and a usable CuPy, when there is one."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"
GOLDEN_FILE = DATA / "qfh_reference_day1.csv"
REPO = Path(__file__).resolve().parents[2]
CANDLES_FILE = REPO / "marketdata" / "fixtures" / "eur_usd_m1_48h.json"


@pytest.fixture(autouse=True)
def numpy_backend_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host arrays stay on NumPy in these tests, even on a GPU machine; GPU tests name CuPy."""
    monkeypatch.setenv("QFH_BACKEND", "numpy")


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

    def start(*, queues: str, role: str, name: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            celery_worker_command(queues, name=name),
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "septrader.settings",
                "DATABASE_URL": worker_database_url(),
                "SEPTRADER_ROLE": role,
                "QFH_BACKEND": "numpy",
            },
        )
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
