"""The console's Telegram accounts page links and unlinks through the services, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from septrader.models import AuditLog
from telegrambot.models import TelegramAccount


@pytest.mark.django_db
def test_telegram_accounts_linked_changed_and_unlinked_in_the_console_are_audited() -> None:
    # Given an admin in the console and a user to link
    admin = User.objects.create_superuser("ops", email="ops@example.com", password="pw")
    alice = User.objects.create_user("alice")
    client = Client()
    client.force_login(admin)
    assert client.get("/admin/telegrambot/telegramaccount/").status_code == 200
    # When they link Alice's phone, move the link to a new Telegram id, then delete it
    added = client.post(
        "/admin/telegrambot/telegramaccount/add/",
        {"telegram_id": "555", "user": str(alice.pk), "note": "Alice's phone"},
    )
    assert added.status_code == 302
    account = TelegramAccount.objects.get()
    changed = client.post(
        f"/admin/telegrambot/telegramaccount/{account.pk}/change/",
        {"telegram_id": "556", "user": str(alice.pk), "note": "new phone"},
    )
    assert changed.status_code == 302
    assert list(TelegramAccount.objects.values_list("telegram_id", "note")) == [(556, "new phone")]
    deleted = client.post(
        f"/admin/telegrambot/telegramaccount/{TelegramAccount.objects.get().pk}/delete/",
        {"post": "yes"},
    )
    assert deleted.status_code == 302
    # Then nothing is left, and each step is in the audit log with the admin as actor
    assert not TelegramAccount.objects.exists()
    entries = AuditLog.objects.filter(action__startswith="telegram.").order_by("id")
    assert [(entry.action, entry.actor, entry.target) for entry in entries] == [
        ("telegram.link", "ops", "555"),
        ("telegram.unlink", "ops", "555"),
        ("telegram.link", "ops", "556"),
        ("telegram.unlink", "ops", "556"),
    ]
