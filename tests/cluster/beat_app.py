"""The project's Celery app with a one-entry schedule, for the single-beat test.

Every second beat sends ``septrader.ping_task`` to the ``cluster-probe`` queue, which no worker
consumes, so the test counts the messages left there: one per second from the one leading beat.
"""

from septrader.celery import app

PROBE_QUEUE = "cluster-probe"

app.conf.beat_schedule = {
    "probe": {
        "task": "septrader.ping_task",
        "schedule": 1.0,
        "args": [PROBE_QUEUE],
        "options": {"queue": PROBE_QUEUE},
    }
}
