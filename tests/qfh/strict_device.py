"""A strict stand-in for CuPy: the device path runs, and is checked, on machines without a GPU.

It looks like CuPy to the project: its own ``ndarray`` type, ``asarray``/``array`` (the way in,
counted), ``ndarray.get()``/``asnumpy`` (the way out, counted), NumPy's functions and ufuncs under
the same names, ``cuda.runtime.getDeviceCount``/``memGetInfo``, ``cuda.Device().mem_info``,
``cuda.Stream.null.synchronize`` and ``get_default_memory_pool()``. Underneath it is NumPy, so its
numbers are NumPy's.

It refuses what CuPy refuses (checked against CuPy's ``cupy/_core/core.pyx``, whose ``__array__``,
``__array_ufunc__``, ``__array_function__`` and ``__setitem__`` behave this way):

* a NumPy array in any of its operations, functions or ufuncs: ``TypeError("Unsupported type
  <class 'numpy.ndarray'>")``, CuPy's kernel-argument error (NumPy and Python scalars are fine);
* implicit conversion to NumPy: ``numpy.asarray(device_array)`` raises CuPy's ``TypeError``
  "Implicit conversion to a NumPy array is not allowed. ..."; ``.get()`` is the explicit way;
* assigning a NumPy array into a device array (CuPy: "Refuse assignment from CPU arrays").

It is stricter than CuPy in one place on purpose: a NumPy array used as an index into a device
array is refused, where CuPy quietly copies it to the device; that is a host/device mix too.

``STRICT_DEVICE_COUNT`` (default 1) sets what ``cuda.runtime.getDeviceCount()`` reports; 0 makes
it raise like CuPy on a machine without a device. ``STRICT_DEVICE_FREE_BYTES`` (default 1 GiB)
sets the free device memory it reports. ``tests/qfh/cupy_shim`` on ``PYTHONPATH`` makes
``import cupy`` give this module in a fresh process (a worker, the CLI, a bench script).

Importable without Django: ``bench/gpu_check.py --strict-double`` runs the GPU check on it.
"""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

__version__ = f"strict device double over NumPy {np.__version__}"
DEVICE_NAME = "strict device double (NumPy on the host)"
DEFAULT_FREE_BYTES = 1 << 30

IMPLICIT_CONVERSION = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)

# Host/device traffic, so that tests can see that a run used the device and crossed over where
# it should: arrays copied in, arrays copied out, and scalars read back (int(), float(), bool()).
counts = {"to_device": 0, "to_host": 0, "scalar_reads": 0}


def reset_counts() -> None:
    for name in counts:
        counts[name] = 0


def _unsupported(value: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


def _device(value: Any) -> Any:
    """An argument of a device operation: device arrays unwrapped, NumPy arrays refused."""
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, np.ndarray):
        raise _unsupported(value)
    if isinstance(value, list | tuple):
        return type(value)(_device(item) for item in value)
    return value


def _operand(value: Any) -> Any:
    """An operand of an operator or ufunc: a device array or a scalar (CuPy's elementwise
    kernels take nothing else; a list or a NumPy array is host data)."""
    if isinstance(value, ndarray):
        return value._data
    if isinstance(value, np.ndarray | list | tuple):
        raise _unsupported(value)
    return value


def _wrap(value: Any) -> Any:
    """A result: NumPy arrays and scalars become device arrays (CuPy returns 0-d arrays where
    NumPy returns scalars)."""
    if isinstance(value, np.ndarray):
        return ndarray._wrap(value)
    if isinstance(value, np.generic):
        return ndarray._wrap(np.asarray(value))
    if isinstance(value, tuple):
        items = [_wrap(item) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


def _call(function: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
    return _wrap(function(*_device(args), **{name: _device(v) for name, v in kwargs.items()}))


def _index(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_index(item) for item in key)
    if isinstance(key, ndarray):
        return key._data
    if isinstance(key, np.ndarray):
        raise _unsupported(key)
    return key


class ndarray:
    """A device array: NumPy data that refuses to meet host arrays."""

    __slots__ = ("_data",)
    __hash__ = None  # type: ignore[assignment]
    _data: np.ndarray

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("make device arrays with asarray, zeros, arange... of the array module")

    @classmethod
    def _wrap(cls, data: np.ndarray) -> ndarray:
        array = object.__new__(cls)
        array._data = data
        return array

    # The way out, explicitly.
    def get(
        self, stream: Any = None, order: Any = "C", out: Any = None, blocking: bool = True
    ) -> Any:
        counts["to_host"] += 1
        return self._data.copy(order=order)

    # What CuPy refuses.
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT_CONVERSION)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            kwargs["out"] = tuple(_operand(item) for item in kwargs["out"])
        operands = [_operand(item) for item in inputs]
        return _wrap(getattr(ufunc, method)(*operands, **kwargs))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func.__module__ != "numpy" or not hasattr(np, func.__name__):
            return NotImplemented
        return getattr(sys.modules[__name__], func.__name__)(*args, **kwargs)

    # Attributes and methods: NumPy's, on device arrays.
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self._data, name)
        if callable(value):
            if name in ("item", "tolist"):
                counts["scalar_reads"] += 1
                return value
            return lambda *args, **kwargs: _call(value, args, kwargs)
        return _wrap(value)

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._data[_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, np.ndarray):
            raise TypeError(f"Refusing to assign a host array ({_unsupported(value)})")
        self._data[_index(key)] = _device(value)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        counts["scalar_reads"] += 1
        return bool(self._data)

    def __int__(self) -> int:
        counts["scalar_reads"] += 1
        return int(self._data)

    def __float__(self) -> float:
        counts["scalar_reads"] += 1
        return float(self._data)

    def __complex__(self) -> complex:
        counts["scalar_reads"] += 1
        return complex(self._data)

    def __repr__(self) -> str:
        return f"device({self._data!r})"

    def __str__(self) -> str:
        return str(self._data)

    def __format__(self, spec: str) -> str:
        return format(self._data, spec)

    def __neg__(self) -> ndarray:
        return ndarray._wrap(-self._data)

    def __pos__(self) -> ndarray:
        return ndarray._wrap(+self._data)

    def __abs__(self) -> ndarray:
        return ndarray._wrap(abs(self._data))

    def __invert__(self) -> ndarray:
        return ndarray._wrap(~self._data)


def _binary(op: Callable[[Any, Any], Any]) -> Callable[[ndarray, Any], Any]:
    def forward(self: ndarray, other: Any) -> Any:
        return _wrap(op(self._data, _operand(other)))

    return forward


def _reflected(op: Callable[[Any, Any], Any]) -> Callable[[ndarray, Any], Any]:
    def reflected(self: ndarray, other: Any) -> Any:
        return _wrap(op(_operand(other), self._data))

    return reflected


def _in_place(op: Callable[[Any, Any], Any]) -> Callable[[ndarray, Any], Any]:
    def in_place(self: ndarray, other: Any) -> ndarray:
        self._data = op(self._data, _operand(other))
        return self

    return in_place


for _name in (
    "add",
    "sub",
    "mul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "and",
    "or",
    "xor",
    "lshift",
    "rshift",
    "matmul",
):
    _op = getattr(operator, _name + "_" if _name in ("and", "or") else _name)
    setattr(ndarray, f"__{_name}__", _binary(_op))
    setattr(ndarray, f"__r{_name}__", _reflected(_op))
    setattr(ndarray, f"__i{_name}__", _in_place(getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(ndarray, f"__{_name}__", _binary(getattr(operator, _name)))


class _Ufunc:
    """A NumPy ufunc on device arrays, with its methods (reduce, accumulate, at, outer...)."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "out" in kwargs:
            kwargs["out"] = _operand(kwargs["out"])
        return _wrap(self._ufunc(*(_operand(arg) for arg in args), **kwargs))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._ufunc, name)
        if callable(value):
            return lambda *args, **kwargs: _call(value, args, kwargs)
        return value


def _function(function: Callable[..., Any]) -> Callable[..., Any]:
    def device_function(*args: Any, **kwargs: Any) -> Any:
        return _call(function, args, kwargs)

    device_function.__name__ = function.__name__
    return device_function


def asarray(value: Any, dtype: Any = None, order: Any = None, **kwargs: Any) -> Any:
    """The way in: a host array, list or scalar copied to the device (a device array as is)."""
    if isinstance(value, ndarray):
        data = value._data if dtype is None else value._data.astype(dtype, copy=False)
        return value if data is value._data else ndarray._wrap(data)
    counts["to_device"] += 1
    return ndarray._wrap(np.array(_device_or_host(value), dtype=dtype, order=order, copy=True))


def _device_or_host(value: Any) -> Any:
    # Lists may hold device scalars (CuPy takes them); NumPy arrays are the host data moving in.
    if isinstance(value, list | tuple):
        return type(value)(_device_or_host(item) for item in value)
    return value._data if isinstance(value, ndarray) else value


def array(value: Any, dtype: Any = None, copy: bool = True, **kwargs: Any) -> Any:
    if isinstance(value, ndarray):
        return ndarray._wrap(np.array(value._data, dtype=dtype, copy=True))
    return asarray(value, dtype=dtype)


asanyarray = asarray


def asnumpy(value: Any, **kwargs: Any) -> np.ndarray:
    """The way out: a device array copied to the host (a NumPy array as is)."""
    if isinstance(value, ndarray):
        return value.get()
    return np.asarray(value)


def get_array_module(*args: Any) -> ModuleType:
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else np


class _MemoryPool:
    def free_bytes(self) -> int:
        return 0

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0

    def free_all_blocks(self) -> None:
        return None


_POOL = _MemoryPool()


def get_default_memory_pool() -> _MemoryPool:
    return _POOL


class CUDARuntimeError(RuntimeError):
    """What CuPy raises when the CUDA runtime fails (no device, no driver...)."""


def _device_count() -> int:
    devices = int(os.environ.get("STRICT_DEVICE_COUNT", "1"))
    if devices < 1:
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
    return devices


def _mem_info() -> tuple[int, int]:
    free = int(os.environ.get("STRICT_DEVICE_FREE_BYTES", str(DEFAULT_FREE_BYTES)))
    return free, 2 * free


class _Device:
    def __init__(self, device: int = 0) -> None:
        self.id = device

    @property
    def mem_info(self) -> tuple[int, int]:
        return _mem_info()

    def synchronize(self) -> None:
        return None


class _Stream:
    def synchronize(self) -> None:
        return None


cuda = SimpleNamespace(
    runtime=SimpleNamespace(
        CUDARuntimeError=CUDARuntimeError,
        getDeviceCount=_device_count,
        memGetInfo=_mem_info,
        getDeviceProperties=lambda device: {"name": DEVICE_NAME.encode(), "totalGlobalMem": 0},
        runtimeGetVersion=lambda: 0,
        driverGetVersion=lambda: 0,
    ),
    Device=_Device,
    Stream=SimpleNamespace(null=_Stream()),
)


def __getattr__(name: str) -> Any:
    """Everything else of NumPy's namespace, on device arrays (wrapped once, then cached)."""
    target = getattr(np, name)
    if isinstance(target, ModuleType):
        raise AttributeError(f"numpy.{name} is not mirrored by the strict device double")
    if isinstance(target, np.ufunc):
        wrapped: Any = _Ufunc(target)
    elif isinstance(target, type) or not callable(target):
        return target
    else:
        wrapped = _function(target)
    globals()[name] = wrapped
    return wrapped
