from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    default = True
    name = "console"
    verbose_name = "Operator console"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin with the console's site (dashboard front page) as ``admin.site``.

    Named in INSTALLED_APPS in place of ``django.contrib.admin``; not this module's default.
    """

    default = False

    default_site = "console.admin_site.ConsoleAdminSite"
