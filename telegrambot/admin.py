"""Console page for the Telegram accounts allowed to control the system; every link and unlink
goes through the services, so it is audited like the command line's."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from septrader.admin_tools import operator
from telegrambot.models import TelegramAccount
from telegrambot.services import telegram_account_link, telegram_account_unlink


@admin.register(TelegramAccount)
class TelegramAccountAdmin(admin.ModelAdmin):
    list_display = ("telegram_id", "user", "note", "created_at")
    search_fields = ("telegram_id", "user__username", "note")
    autocomplete_fields = ("user",)
    readonly_fields = ("created_at",)
    actions = ("unlink_accounts",)

    def save_model(
        self, request: HttpRequest, obj: TelegramAccount, form: forms.ModelForm, change: bool
    ) -> None:
        actor, address = operator(request)
        if change and "telegram_id" in form.changed_data:
            telegram_account_unlink(
                telegram_id=form.initial["telegram_id"], actor=actor, address=address
            )
        saved = telegram_account_link(
            telegram_id=obj.telegram_id,
            username=obj.user.get_username(),
            note=obj.note,
            actor=actor,
            address=address,
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: TelegramAccount) -> None:
        actor, address = operator(request)
        telegram_account_unlink(telegram_id=obj.telegram_id, actor=actor, address=address)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        actor, address = operator(request)
        for telegram_id in list(queryset.values_list("telegram_id", flat=True)):
            telegram_account_unlink(telegram_id=telegram_id, actor=actor, address=address)

    @admin.action(description="Unlink: the bot stops answering them")
    def unlink_accounts(self, request: HttpRequest, queryset: Any) -> None:
        self.delete_queryset(request, queryset)
        self.message_user(request, "Unlinked.")
