"""The array-module switch: the engine is written once against `xp` (NumPy or CuPy).

`QFH_BACKEND=auto|numpy|cupy` picks the module; an explicit ``backend=`` argument wins over the
environment. ``auto`` takes CuPy only when it imports *and* sees a CUDA device, so a machine with
CuPy installed but no GPU quietly stays on NumPy.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Any

import numpy as np

BACKEND_ENV = "QFH_BACKEND"
BACKENDS = ("auto", "numpy", "cupy")


class BackendError(RuntimeError):
    """The requested array backend cannot be used on this machine."""


@functools.cache
def cupy_usable() -> bool:
    """True when CuPy imports and at least one CUDA device answers."""
    try:
        import cupy  # type: ignore[import-not-found]

        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:  # CuPy missing, no driver, or no device: all mean "not usable".
        return False


def get_array_module(backend: str | ModuleType | None = None) -> ModuleType:
    """Return the array module for ``backend`` (a name, a module, or None for the environment)."""
    if isinstance(backend, ModuleType):
        return backend
    name = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if name not in BACKENDS:
        raise BackendError(f"{BACKEND_ENV}/backend must be one of {BACKENDS}, got {name!r}")
    if name == "numpy":
        return np
    if name == "cupy":
        if not cupy_usable():
            raise BackendError("backend 'cupy' was requested but CuPy sees no usable CUDA device")
        import cupy

        return cupy  # type: ignore[no-any-return]
    if cupy_usable():
        import cupy

        return cupy  # type: ignore[no-any-return]
    return np


def array_module_of(array: Any) -> ModuleType:
    """The module that owns ``array``: CuPy for device arrays, NumPy for everything else."""
    module = type(array).__module__
    if module.startswith("cupy"):
        import cupy

        return cupy  # type: ignore[no-any-return]
    return np


def module_for(values: Any, backend: str | ModuleType | None = None) -> ModuleType:
    """The module to compute with: ``backend`` if given; CuPy for values already on the device
    (they are never copied back behind the caller's back); else the ``QFH_BACKEND`` choice, so
    host input moves to the GPU once, explicitly, when the environment asks for it.
    """
    if backend is not None:
        return get_array_module(backend)
    owner = array_module_of(values)
    if owner is not np:
        return owner
    return get_array_module(None)


def to_numpy(array: Any) -> np.ndarray:
    """Copy a NumPy or CuPy array to host memory (a no-op for NumPy arrays)."""
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return np.asarray(array.get())
    return np.asarray(array)


def synchronize(xp: ModuleType) -> None:
    """Wait for queued device work, so that timings of CuPy runs mean something."""
    if xp is not np:
        xp.cuda.Stream.null.synchronize()
