"""``import cupy`` gives the strict device double (``tests/qfh/strict_device.py``) in a process
started with ``tests/qfh/cupy_shim`` on ``PYTHONPATH``: a Celery worker, ``python -m qfh``, a bench
script. The module replaces itself in ``sys.modules``, so ``cupy`` is the double itself and its
arrays belong to it."""

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[4])
if _REPO not in sys.path:
    sys.path.append(_REPO)

from tests.qfh import strict_device  # noqa: E402

sys.modules[__name__] = strict_device
