from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        # Django's place for wiring that needs the models: the tasks (sent by name) and the
        # hooks through which the streamer and the analysis reach trading (septrader/hooks.py).
        from marketdata import hooks as marketdata_hooks
        from qfh import hooks as qfh_hooks
        from trading import tasks  # noqa: F401  (registers the Celery tasks)
        from trading.ledger import transactions_apply
        from trading.selectors import broker_transaction_resume_id
        from trading.signals import signal_store

        marketdata_hooks.transactions_resume_id.register(broker_transaction_resume_id)
        marketdata_hooks.transactions_apply.register(transactions_apply)
        qfh_hooks.signal_made.register(signal_store)
