from __future__ import annotations

from django.db import models


class SystemConfig(models.Model):
    """One runtime setting (``system_config``): a key, its JSON value, and a version counter.

    Values are validated against ``septrader.config.CONFIG_KEYS`` by ``config_set`` before they
    are written; a process sees a new value by comparing versions, without a restart.
    """

    key = models.CharField(max_length=100, primary_key=True)
    value = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "system_config"
        ordering = ["key"]
        verbose_name = "system setting"

    def __str__(self) -> str:
        return self.key
