from django.apps import AppConfig


class ParityConfig(AppConfig):
    name = "parity"
    verbose_name = "Parity (live against replay)"

    def ready(self) -> None:
        # The Celery task (sent by beat by name) and the daily summary's parity line, which
        # monitoring reaches through its hook (septrader/hooks.py).
        from monitoring import hooks as monitoring_hooks
        from parity import tasks  # noqa: F401  (registers the Celery task)
        from parity.services import parity_day_summary

        monitoring_hooks.daily_summary_parity.register(parity_day_summary)
