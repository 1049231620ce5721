"""The analysis's array module on the Django side: chosen once per run from the ``QFH_BACKEND``
setting (or a command's ``--backend``), and checked when the GPU PC's worker starts.

The engine never chooses (``qfh.engine.backend``); the tasks and commands call
``analysis_array_module()`` where their work enters and pass the module down.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from celery import signals
from django.conf import settings
from django.core.management.base import CommandError

from qfh.engine.backend import SETTING, BackendError, choose_array_module, module_name

logger = logging.getLogger(__name__)

ANALYSIS_QUEUE = "qfh"


def analysis_array_module(backend: str | None = None) -> ModuleType:
    """The module of this run: ``backend`` (a command's ``--backend``) or ``QFH_BACKEND``.

    Raises ``BackendError`` naming the flag or the setting when CuPy is asked for and no CUDA
    device answers; ``auto`` falls back to NumPy with a logged reason.
    """
    if backend:
        return choose_array_module(backend, setting="--backend")
    return choose_array_module(settings.QFH_BACKEND, setting=SETTING)


def command_array_module(backend: str | None) -> ModuleType:
    """``analysis_array_module`` for a management command, which stops at start with the
    error (naming ``--backend`` or ``QFH_BACKEND``) when the module cannot be used."""
    try:
        return analysis_array_module(backend)
    except BackendError as error:
        raise CommandError(str(error)) from None


def _check_at_worker_start(sender: Any = None, **kwargs: Any) -> None:
    """A worker consuming ``qfh`` stops at start when QFH_BACKEND asks for a GPU it cannot use
    (rather than failing every task); otherwise it logs the module it will analyse on."""
    if ANALYSIS_QUEUE not in sender.app.amqp.queues.consume_from:
        return
    try:
        xp = analysis_array_module()
    except BackendError as error:
        logger.critical("event=qfh_worker_refused error=%r", str(error))
        # SystemExit, because Celery logs and swallows an Exception raised by a signal handler.
        raise SystemExit(f"qfh worker not started: {error}") from None
    logger.info("event=qfh_worker_array_module setting=%s module=%s", SETTING, module_name(xp))


def connect_worker_check() -> None:
    signals.worker_init.connect(_check_at_worker_start, weak=False)
