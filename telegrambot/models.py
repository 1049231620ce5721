"""Which Telegram accounts may control the system, and as which project user.

A Telegram account acts with the role of the project user it is linked to (viewer, operator,
admin: ``septrader.api.permissions``), so the bot and the API can never disagree about who may do
what, and deactivating the user or taking their role away also silences their phone.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TelegramAccount(models.Model):
    """A Telegram user id linked to a project user; any other Telegram user is ignored."""

    id = models.BigAutoField(primary_key=True)
    # Telegram's numeric user id (stable; the @username can change or be taken by someone else).
    telegram_id = models.BigIntegerField(unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="telegram_accounts"
    )
    # Free text for the operator: whose phone this is.
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "telegram_accounts"
        ordering = ["telegram_id"]

    def __str__(self) -> str:
        return f"telegram {self.telegram_id} -> {self.user}"
