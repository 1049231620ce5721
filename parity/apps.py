from django.apps import AppConfig


class ParityConfig(AppConfig):
    name = "parity"
    verbose_name = "Parity (live against replay)"

    def ready(self) -> None:
        # The Celery task (sent by beat by name), the daily summary's parity line and the paper
        # stage's parity gate, which monitoring and trading reach through hooks
        # (septrader/hooks.py).
        from monitoring import hooks as monitoring_hooks
        from parity import tasks  # noqa: F401  (registers the Celery task)
        from parity.selectors import unexplained_since
        from parity.services import parity_day_summary
        from trading import hooks as trading_hooks

        monitoring_hooks.daily_summary_parity.register(parity_day_summary)
        # The paper stage's gate before live: no unexplained mismatch since paper began.
        trading_hooks.parity_unexplained.register(unexplained_since)
