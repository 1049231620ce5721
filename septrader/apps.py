from django.apps import AppConfig


class SepTraderConfig(AppConfig):
    name = "septrader"
    verbose_name = "SEP Trader"
