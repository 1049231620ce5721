from django.apps import AppConfig


class QfhConfig(AppConfig):
    name = "qfh"
    verbose_name = "QFH analysis"
