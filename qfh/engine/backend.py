"""The array module: NumPy on the host, CuPy on a CUDA device, chosen once where work enters.

The engine is written once against ``xp``. Two kinds of function live here:

* ``choose_array_module(name)`` is the only chooser. Entry points call it once per run (a Celery
  task, a management command, ``python -m qfh``, a bench script) with the ``QFH_BACKEND`` setting
  or their ``--backend`` flag, move their host inputs to that module once, and pass the module
  down. ``auto`` takes CuPy when a CUDA device answers and otherwise NumPy, logging why;
  ``cupy`` without a device is a ``BackendError`` naming the setting.
* ``array_module(name=value, ...)`` is what every engine, variant and rule function uses: the
  module its inputs already belong to. It chooses nothing and reads no environment; inputs from
  two modules raise ``MixedArraysError`` naming the arguments, because on a GPU that mix is either
  an error (CuPy refuses NumPy arrays in its operations) or a hidden copy.

Host and device meet in two places only: the entry point's ``xp.asarray`` on the way in, and
``to_numpy`` where results are stored.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "numpy", "cupy")
SETTING = "QFH_BACKEND"
# On a device, a block's temporaries may use this share of the free device memory. The rest holds
# what the caller keeps across blocks (the whole output, the inputs, CuPy's cached tables) and
# leaves room for the memory pool's rounding. A judgement, not a measurement: on the H200 a block
# of 2^23 windows (a few GB at 64 bits) already ran 46 times faster than the 65,536-window CPU
# block, and the share keeps such blocks on any card with a few GB free.
DEVICE_MEMORY_SHARE = 0.25
# A device block never shrinks below this many items, however little memory is free: smaller
# blocks would spend their time launching kernels.
DEVICE_MIN_BLOCK_ITEMS = 1 << 12

# Values that belong to no array module: they mix with either (CuPy takes Python and NumPy scalars).
_NEUTRAL = (bool, int, float, complex, np.generic, list, tuple, type(None))
# The reason auto last fell back to NumPy, so that a worker logs it once, not every minute.
_last_fallback: str | None = None


class BackendError(RuntimeError):
    """The requested array module cannot be used on this machine (the message names the setting)."""


class MixedArraysError(TypeError):
    """Inputs of one call live in two array modules (host and device)."""


NOT_INSTALLED = "CuPy is not installed"


def device_module() -> tuple[ModuleType | None, str]:
    """CuPy when it imports and a CUDA device answers; otherwise None and the reason."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as error:
        return None, f"{NOT_INSTALLED} ({error})"
    try:
        devices = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as error:  # No driver, a driver older than the wheel's CUDA, no device.
        return None, f"no CUDA device answers ({type(error).__name__}: {error})"
    if devices < 1:
        return None, "no CUDA device answers (CuPy counts 0 devices)"
    return cupy, ""


def choose_array_module(name: str, *, setting: str = SETTING) -> ModuleType:
    """The array module for ``name`` (``auto``, ``numpy`` or ``cupy``), named by ``setting``.

    Call it once where work enters. ``auto`` falls back to NumPy with a logged reason when no
    device answers; ``cupy`` then raises ``BackendError`` naming ``setting``.
    """
    global _last_fallback
    choice = name.strip().lower()
    if choice not in BACKENDS:
        raise BackendError(f"{setting}={name!r} is not valid; expected one of {BACKENDS}")
    if choice == "numpy":
        return np
    module, reason = device_module()
    if module is not None:
        return module
    if choice == "cupy":
        raise BackendError(
            f"{setting}=cupy, but {reason}; install the CuPy wheel of this machine's CUDA major "
            f"(README, 'GPU PC') or set {setting}=auto to run on NumPy"
        )
    if reason != _last_fallback:
        # Without CuPy (the droplet) NumPy is what was meant; CuPy without a device is a GPU PC
        # whose driver or card stopped answering, which an operator should hear about.
        level = logging.INFO if reason.startswith(NOT_INSTALLED) else logging.WARNING
        logger.log(
            level, "event=qfh_backend_fallback setting=%s module=numpy reason=%r", setting, reason
        )
        _last_fallback = reason
    return np


def module_name(xp: ModuleType) -> str:
    """How a module is printed in logs and benchmarks: numpy, cupy, or the double's own name."""
    return str(xp.__name__)


# Array types seen so far, and the module each belongs to.
_modules_of_types: dict[type, ModuleType] = {}


def _module_of_type(kind: type) -> ModuleType:
    # The outermost module that exports the array type as ``ndarray``: ``cupy`` for cupy.ndarray
    # (whose __module__ is 'cupy'), the test double's module for its arrays.
    if kind in _modules_of_types:
        return _modules_of_types[kind]
    parts = kind.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = sys.modules.get(".".join(parts[:end]))
        if module is not None and getattr(module, "ndarray", None) is kind:
            _modules_of_types[kind] = module
            return module
    raise TypeError(f"{kind.__module__}.{kind.__name__} is not an array of a known array module")


def _owner(value: Any) -> ModuleType | None:
    """The array module ``value`` belongs to; None for scalars, lists and None."""
    if isinstance(value, np.ndarray):
        return np
    if isinstance(value, _NEUTRAL):
        return None
    return _module_of_type(type(value))


def array_module(**named: Any) -> ModuleType:
    """The module of the named inputs (NumPy when none is an array of another module).

    Every engine and rule function starts here, so that it computes where its inputs already
    are and never copies them; inputs from two modules raise ``MixedArraysError`` naming both.
    """
    found: tuple[str, ModuleType] | None = None
    for name, value in named.items():
        owner = _owner(value)
        if owner is None:
            continue
        if found is None:
            found = (name, owner)
        elif owner is not found[1]:
            raise MixedArraysError(
                f"{name} is a {module_name(owner)} array but {found[0]} is a "
                f"{module_name(found[1])} array; move the inputs to one array module where the "
                "work enters (xp.asarray), not inside the analysis"
            )
    return found[1] if found else np


def to_numpy(array: Any) -> NDArray[Any]:
    """Copy a device array to host memory (a no-op for NumPy arrays): where results are stored."""
    if isinstance(array, np.ndarray):
        return array
    if isinstance(array, _NEUTRAL):
        return np.asarray(array)
    return np.asarray(array.get())


def synchronize(xp: ModuleType) -> None:
    """Wait for queued device work, so that timings of device runs mean something."""
    if xp is not np:
        xp.cuda.Stream.null.synchronize()


def free_device_bytes(xp: ModuleType) -> int:
    """Free memory of the current device in bytes: what the driver reports free, plus what
    CuPy's memory pool holds cached and would hand out again without asking the driver."""
    free, _total = xp.cuda.Device().mem_info
    return int(free) + int(xp.get_default_memory_pool().free_bytes())


def block_items(xp: ModuleType, *, host_items: int, bytes_per_item: float) -> int:
    """How many items (windows, cells) one block of work holds.

    On the CPU blocks stay cache-sized (``host_items``, measured per engine). On a device they
    follow the free device memory: ``DEVICE_MEMORY_SHARE`` of it divided by the measured peak
    bytes that one item's temporaries take.
    """
    if xp is np:
        return host_items
    budget = free_device_bytes(xp) * DEVICE_MEMORY_SHARE
    return max(DEVICE_MIN_BLOCK_ITEMS, int(budget // bytes_per_item))
