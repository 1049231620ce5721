"""Fixtures of the QFH engine tests: the golden file and a usable CuPy, when there is one."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

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
