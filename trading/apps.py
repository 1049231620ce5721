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
        _forget_schedules_on_edits()


def _forget_schedules_on_edits() -> None:
    """A process's copy of the market schedules (``trading.market``) is dropped whenever this
    process writes a schedule, one of its sessions or breaks, a pair's override or a pair."""
    from django.db.models.signals import post_delete, post_save

    from marketdata.models import Pair
    from trading.market import schedules_forget
    from trading.models import MarketSchedule, PairSchedule, ScheduleBreak, ScheduleSession

    for model in (MarketSchedule, ScheduleSession, ScheduleBreak, PairSchedule, Pair):
        for signal in (post_save, post_delete):
            signal.connect(schedules_forget, sender=model, dispatch_uid=f"schedules:{model}")
