"""``manage.py telegram_bot``: answer operators' commands from Telegram until stopped.

Long-lived I/O, so a supervised process rather than a Celery task (DESIGN.md section 1), like the
price stream: docker compose's ``telegram`` service, systemd's septrader-telegram.service, or the
demo's supervisor when TELEGRAM_BOT_TOKEN is set. SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telegrambot.bot import ALLOWED_UPDATES, build_application

logger = logging.getLogger(__name__)

# EX_CONFIG (sysexits.h): the unit file does not restart the bot for it (RestartPreventExitStatus).
EXIT_NOT_CONFIGURED = 78


class Command(BaseCommand):
    help = "Answer the commands of linked Telegram users (README, 'Telegram control')."

    def handle(self, *args: Any, **options: Any) -> None:
        token = settings.TELEGRAM_BOT_TOKEN
        if not token:
            raise CommandError(
                "TELEGRAM_BOT_TOKEN is not set (or TELEGRAM_BOT_TOKEN_FILE); expected the token "
                "@BotFather gave the bot.",
                returncode=EXIT_NOT_CONFIGURED,
            )
        application = build_application(
            token=token,
            api_url=settings.TELEGRAM_API_URL,
            commands_per_minute=settings.TELEGRAM_COMMANDS_PER_MINUTE,
        )
        logger.info(
            "event=telegram_bot_started commands_per_minute=%s",
            settings.TELEGRAM_COMMANDS_PER_MINUTE,
        )
        # Updates that waited while the bot was away are fetched and then refused by age
        # (bot.MAX_COMMAND_AGE_SECONDS), so the operator learns their command was not run.
        application.run_polling(allowed_updates=ALLOWED_UPDATES, close_loop=False)
