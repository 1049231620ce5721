"""The strict device double refuses what CuPy refuses, so that a host/device mix fails on CPU CI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.qfh import strict_device as device

HOST = np.arange(5.0)


def test_a_device_array_is_its_own_type_and_comes_back_only_through_get() -> None:
    device.reset_counts()
    on_device = device.asarray(HOST)
    doubled = on_device * 2

    assert isinstance(on_device, device.ndarray) and not isinstance(on_device, np.ndarray)
    assert np.array_equal(on_device.get(), HOST)
    assert np.array_equal(device.asnumpy(doubled), HOST * 2)
    assert device.counts == {"to_device": 1, "to_host": 2, "scalar_reads": 0}


@pytest.mark.parametrize(
    ("what", "mix"),
    [
        ("numpy.asarray of a device array", lambda d: np.asarray(d)),
        ("numpy.array of a device array", lambda d: np.array(d)),
        ("device + host", lambda d: d + HOST),
        ("host + device", lambda d: HOST + d),
        ("host < device", lambda d: HOST.__lt__(d)),
        ("a NumPy ufunc on both", lambda d: np.maximum(d, HOST)),
        ("a device function with a host argument", lambda d: device.where(d > 1, HOST, 0.0)),
        ("a NumPy function on both", lambda d: np.concatenate([d, HOST])),
        ("a host array assigned into a device array", lambda d: d.__setitem__(slice(None), HOST)),
        ("a host array as an index", lambda d: d[np.array([0, 1])]),
        ("a list in arithmetic", lambda d: d.__add__([1.0, 2.0, 3.0, 4.0, 5.0])),
        ("in-place with a host array", lambda d: d.__iadd__(HOST)),
    ],
)
def test_host_and_device_arrays_never_mix(what: str, mix: Callable[[Any], Any]) -> None:
    with pytest.raises(TypeError, match=r"Unsupported type|Implicit conversion to a NumPy"):
        mix(device.asarray(HOST))


def test_numpy_and_python_scalars_numpy_ufuncs_and_functions_work_on_the_device() -> None:
    on_device = device.asarray(HOST)

    results = [
        np.float32(2) * on_device,
        2.0 - on_device,
        np.exp(on_device),
        np.concatenate([on_device, on_device]),
        device.maximum.accumulate(on_device),
        on_device[on_device > 2],
        device.unique(on_device, return_inverse=True)[1],
    ]

    assert all(isinstance(result, device.ndarray) for result in results)
    assert int(on_device[3]) == 3 and float(on_device.sum()) == 10.0


def test_in_place_operators_change_the_array_itself() -> None:
    direction = device.zeros(3, dtype=np.int8)
    alias = direction
    direction -= device.asarray([True, False, True])
    assert alias is direction and direction.get().tolist() == [-1, 0, -1]


def test_the_device_count_and_free_memory_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STRICT_DEVICE_FREE_BYTES", str(1 << 20))
    assert device.cuda.Device().mem_info[0] == 1 << 20
    assert device.cuda.runtime.getDeviceCount() == 1
    monkeypatch.setenv("STRICT_DEVICE_COUNT", "0")
    with pytest.raises(device.CUDARuntimeError, match="cudaErrorNoDevice"):
        device.cuda.runtime.getDeviceCount()
