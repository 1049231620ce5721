"""Writes of the Telegram control: linking a Telegram user id to a project user, audited."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from septrader.services import audit_record
from telegrambot.models import TelegramAccount


class TelegramAccountError(Exception):
    """A link that cannot be made as asked; the message says why."""


@transaction.atomic
def telegram_account_link(
    *, telegram_id: int, username: str, actor: str, note: str = "", address: str | None = None
) -> TelegramAccount:
    """Let the Telegram user ``telegram_id`` act as the project user ``username`` (with that
    user's role); a Telegram id already linked moves to the new user."""
    if telegram_id <= 0:
        raise TelegramAccountError(
            f"telegram_id={telegram_id} is not valid; expected a Telegram user id (a positive "
            "number: send /start to @userinfobot to read yours)."
        )
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise TelegramAccountError(f"username={username!r} is not a user of this system.")
    account, created = TelegramAccount.objects.update_or_create(
        telegram_id=telegram_id, defaults={"user": user, "note": note}
    )
    audit_record(
        actor=actor,
        action="telegram.link",
        target=str(telegram_id),
        details={"user": username, "created": created, "note": note},
        address=address,
    )
    return account


@transaction.atomic
def telegram_account_unlink(*, telegram_id: int, actor: str, address: str | None = None) -> bool:
    """Stop answering the Telegram user ``telegram_id``; False if it was not linked."""
    deleted, _ = TelegramAccount.objects.filter(telegram_id=telegram_id).delete()
    if deleted:
        audit_record(
            actor=actor, action="telegram.unlink", target=str(telegram_id), address=address
        )
    return bool(deleted)
