"""``manage.py telegram_user``: link Telegram users to project users, unlink them, list them.

manage.py telegram_user link 123456789 alice --note "Alice's phone"
manage.py telegram_user unlink 123456789
manage.py telegram_user list
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from septrader.api.permissions import role_of
from telegrambot.selectors import telegram_accounts_listed
from telegrambot.services import (
    TelegramAccountError,
    telegram_account_link,
    telegram_account_unlink,
)

ACTOR = "system:manage.py telegram_user"


class Command(BaseCommand):
    help = "Link a Telegram user id to a project user (whose role it then has), or unlink it."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        link = actions.add_parser("link", help="let a Telegram user act as a project user")
        link.add_argument("telegram_id", type=int)
        link.add_argument("username")
        link.add_argument("--note", default="")
        unlink = actions.add_parser("unlink", help="stop answering a Telegram user")
        unlink.add_argument("telegram_id", type=int)
        actions.add_parser("list", help="the linked Telegram users and their roles")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "link":
            try:
                account = telegram_account_link(
                    telegram_id=options["telegram_id"],
                    username=options["username"],
                    note=options["note"],
                    actor=ACTOR,
                )
            except TelegramAccountError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"telegram {account.telegram_id} acts as {account.user.get_username()} "
                f"({role_of(account.user) or 'no role: set one with manage.py set_role'})"
            )
        elif action == "unlink":
            if not telegram_account_unlink(telegram_id=options["telegram_id"], actor=ACTOR):
                raise CommandError(f"telegram_id={options['telegram_id']} is not linked.")
            self.stdout.write(f"telegram {options['telegram_id']} unlinked")
        else:
            for account in telegram_accounts_listed():
                self.stdout.write(
                    f"{account.telegram_id}\t{account.user.get_username()}\t"
                    f"{role_of(account.user) or '-'}\t{account.note}"
                )
