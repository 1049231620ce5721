"""The scheduled database backup (its name keeps the ``septrader.`` prefix it was scheduled
under, so messages and beat entries written before the move still find it)."""

from __future__ import annotations

from celery import shared_task

from backups.services import backup_create


@shared_task(name="septrader.backup_database_task")
def backup_database_task() -> str:
    """The scheduled backup (CELERY_BEAT_SCHEDULE); returns the archive's path.

    Not retried: a failure is logged and the next night's run tries again.
    """
    return str(backup_create().path)
