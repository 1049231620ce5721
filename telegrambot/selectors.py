"""Reads of the Telegram control: who is talking to the bot, and with which role."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from septrader.api.permissions import ROLES, role_of
from telegrambot.models import TelegramAccount


@dataclass(frozen=True)
class Actor:
    """A linked Telegram user: their Telegram id and name, and the project user they act as."""

    telegram_id: int
    telegram_username: str
    username: str
    # The project user's role (viewer, operator, admin), or None when they hold none.
    role: str | None

    @property
    def audit_name(self) -> str:
        """The AuditLog actor: ``telegram:<telegram id>/<project username>``."""
        return f"telegram:{self.telegram_id}/{self.username}"

    def may(self, role: str) -> bool:
        return self.role is not None and ROLES.index(self.role) >= ROLES.index(role)


def telegram_actor(*, telegram_id: int, telegram_username: str = "") -> Actor | None:
    """The actor behind a Telegram user id; None for an unlinked id or an inactive user."""
    account = TelegramAccount.objects.select_related("user").filter(telegram_id=telegram_id).first()
    if account is None or not account.user.is_active:
        return None
    return Actor(
        telegram_id=telegram_id,
        telegram_username=telegram_username,
        username=account.user.get_username(),
        role=role_of(account.user),
    )


def telegram_accounts_listed() -> QuerySet[TelegramAccount]:
    return TelegramAccount.objects.select_related("user").order_by("telegram_id")
