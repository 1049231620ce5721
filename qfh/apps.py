from django.apps import AppConfig


class QfhConfig(AppConfig):
    name = "qfh"
    verbose_name = "QFH analysis"

    def ready(self) -> None:
        # The streamer hands each closed minute to the analysis (septrader/hooks.py).
        from marketdata import hooks as marketdata_hooks
        from qfh.tasks import enqueue_analysis

        marketdata_hooks.minute_closed.register(enqueue_analysis)
