"""The array module: one choice where work enters (QFH_BACKEND or a flag), then the module of the
inputs everywhere below, and an error naming the arguments when host and device arrays meet."""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np
import pytest

from qfh import rules
from qfh.engine import (
    BackendError,
    MixedArraysError,
    analyze_sliding,
    analyze_windows,
    array_module,
    choose_array_module,
    pattern_modifier,
    to_numpy,
)
from qfh.engine import (
    testbed_m1_metrics as m1_metrics,
)


def test_numpy_is_chosen_by_name_without_looking_for_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a machine whose CuPy would fail if anyone asked it for a device
    monkeypatch.setitem(sys.modules, "cupy", None)

    # Then numpy is numpy, whatever the case of the name
    assert choose_array_module("numpy") is np
    assert choose_array_module("NumPy") is np


def test_auto_falls_back_to_numpy_and_logs_why_when_cupy_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a machine without CuPy
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr("qfh.engine.backend._last_fallback", None)

    # When auto is resolved
    with caplog.at_level("INFO", logger="qfh.engine.backend"):
        chosen = choose_array_module("auto")

    # Then it is NumPy, and the log says why
    assert chosen is np
    assert "event=qfh_backend_fallback" in caplog.text
    assert "CuPy is not installed" in caplog.text


def test_auto_warns_when_cupy_is_installed_but_no_device_answers(
    strict_cupy: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a GPU PC whose CuPy counts no device (a driver or card that stopped answering)
    monkeypatch.setenv("STRICT_DEVICE_COUNT", "0")
    monkeypatch.setattr("qfh.engine.backend._last_fallback", None)

    # When auto is resolved twice (two analysis runs)
    with caplog.at_level("INFO", logger="qfh.engine.backend"):
        first = choose_array_module("auto")
        second = choose_array_module("auto")

    # Then both run on NumPy, and one warning says why
    assert first is second is np
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "cudaErrorNoDevice" in warnings[0].getMessage()


def test_auto_takes_the_device_when_one_answers(strict_cupy: ModuleType) -> None:
    assert choose_array_module("auto") is strict_cupy
    assert choose_array_module("cupy") is strict_cupy


def test_cupy_without_a_device_is_refused_naming_the_setting(
    strict_cupy: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given CuPy installed but no device answering (the double reports 0, as a PC without a GPU)
    monkeypatch.setenv("STRICT_DEVICE_COUNT", "0")

    # When a GPU is asked for
    with pytest.raises(BackendError) as refused:
        choose_array_module("cupy")

    # Then the error names the setting and says what the driver said
    assert "QFH_BACKEND=cupy" in str(refused.value)
    assert "cudaErrorNoDevice" in str(refused.value)
    # And auto still runs, on NumPy
    assert choose_array_module("auto") is np


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(BackendError, match=r"QFH_BACKEND='tpu'.*'auto', 'numpy', 'cupy'"):
        choose_array_module("tpu")


def test_every_function_computes_in_the_module_of_its_inputs(strict_cupy: ModuleType) -> None:
    bits = np.random.default_rng(1).integers(0, 2, size=(2, 300), dtype=np.uint8)

    on_host = analyze_sliding(bits, 11)
    on_device = analyze_sliding(strict_cupy.asarray(bits), 11)

    assert isinstance(on_host.coherence, np.ndarray)
    assert isinstance(on_device.coherence, strict_cupy.ndarray)
    assert np.array_equal(to_numpy(on_device.coherence), on_host.coherence)
    assert array_module(bits=[0, 1], threshold=0.5) is np


def test_host_and_device_inputs_in_one_call_are_refused_naming_the_arguments(
    strict_cupy: ModuleType,
) -> None:
    device_bits = strict_cupy.zeros((4, 20), dtype=strict_cupy.uint8)
    host_lengths = np.full(4, 20)

    with pytest.raises(MixedArraysError, match=r"lengths is a numpy array but bits is a"):
        analyze_windows(device_bits, host_lengths)
    result = analyze_windows(device_bits)
    with pytest.raises(MixedArraysError, match="volatility_pips"):
        m1_metrics(result, np.zeros(4))
    with pytest.raises(MixedArraysError, match="stability"):
        pattern_modifier(strict_cupy.zeros(4), np.zeros(4))
    with pytest.raises(MixedArraysError, match="weight_coherence"):
        rules.testbed_signals(
            coherence=result.coherence,
            stability=result.coherence,
            entropy=result.entropy,
            multiplier=1.0,
            volatility=1.0,
            weight_coherence=np.full((3, 1), 0.1),
        )


def test_bits_other_than_0_and_1_are_refused() -> None:
    with pytest.raises(ValueError, match="only 0 and 1"):
        analyze_sliding(np.array([0, 1, 2, 1], dtype=np.uint8), 2)
