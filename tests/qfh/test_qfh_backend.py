"""The array-module switch: QFH_BACKEND, explicit overrides and a missing GPU."""

from __future__ import annotations

import numpy as np
import pytest

from qfh.engine import BackendError, analyze_sliding, get_array_module
from qfh.engine.backend import cupy_usable


def test_numpy_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFH_BACKEND", "numpy")
    assert get_array_module() is np


def test_an_explicit_backend_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an environment asking for something else
    monkeypatch.setenv("QFH_BACKEND", "cupy")

    # When the caller names NumPy
    # Then NumPy wins, and the engine runs on it
    assert get_array_module("numpy") is np
    result = analyze_sliding(np.zeros(30, dtype=np.uint8), 11, backend="numpy")
    assert isinstance(result.coherence, np.ndarray)


def test_auto_falls_back_to_numpy_without_a_usable_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFH_BACKEND", "auto")
    if cupy_usable():
        pytest.skip("this machine has a usable GPU, so auto picks CuPy")
    assert get_array_module() is np


def test_asking_for_cupy_without_a_gpu_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    if cupy_usable():
        pytest.skip("this machine has a usable GPU")
    with pytest.raises(BackendError, match="cupy"):
        get_array_module("cupy")


def test_an_unknown_backend_name_is_rejected_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("QFH_BACKEND", "tpu")
    with pytest.raises(BackendError, match="tpu"):
        get_array_module()


def test_bits_other_than_0_and_1_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        analyze_sliding(np.array([0, 1, 2, 1], dtype=np.uint8), 2)
