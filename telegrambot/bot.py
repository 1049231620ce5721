"""The Telegram bot: python-telegram-bot's Application, polling Telegram for commands and button
presses and handing each to ``telegrambot.commands`` in Django's thread.

Who may talk to it: a Telegram user linked to a project user (``TelegramAccount``), writing in a
private chat with the bot or in the alerts chat (``alerts.telegram_chat_id``). Anyone else gets
no answer at all, not even a refusal (a refusal would tell a stranger the bot is alive), and is
logged. Each linked user may send ``TELEGRAM_COMMANDS_PER_MINUTE`` commands and presses a minute.
``/start`` and ``/kill`` ask for a press of an inline button, by the same user, within
``CONFIRM_SECONDS``, before anything happens.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from septrader.selectors import config_get
from telegrambot.commands import COMMANDS, Reply, run_command, run_confirmed
from telegrambot.ratelimit import RateLimiter
from telegrambot.selectors import Actor, telegram_actor

logger = logging.getLogger(__name__)

# How long the button under /start or /kill stays valid.
CONFIRM_SECONDS = 60.0
# A command older than this when it reaches the bot (sent while the bot was down, delivered on
# its restart) is not run: an operator's "/kill" from an hour ago is not what they want now.
MAX_COMMAND_AGE_SECONDS = 120.0
FAILED = "That failed on the server; the error is in its log."

P = ParamSpec("P")
R = TypeVar("R")


def in_django(function: Callable[P, R]) -> Callable[P, Any]:
    """``function`` run in Django's one sync thread, on a live database connection."""

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=True)


def chat_admitted(*, chat_id: int, chat_type: str, telegram_id: int) -> bool:
    """A private chat with the user themselves, or the configured alerts chat."""
    if chat_type == ChatType.PRIVATE:
        return chat_id == telegram_id
    alerts_chat = str(config_get("alerts.telegram_chat_id") or "")
    return bool(alerts_chat) and alerts_chat == str(chat_id)


def admitted_actor(
    *, telegram_id: int, telegram_username: str, chat_id: int, chat_type: str
) -> Actor | None:
    if not chat_admitted(chat_id=chat_id, chat_type=chat_type, telegram_id=telegram_id):
        return None
    return telegram_actor(telegram_id=telegram_id, telegram_username=telegram_username)


def guarded_command(actor: Actor, name: str, args: list[str]) -> Reply:
    try:
        return run_command(actor, name, args)
    except Exception:
        logger.exception(
            "event=telegram_command_failed telegram_id=%s command=%s", actor.telegram_id, name
        )
        return Reply(FAILED)


def guarded_confirmed(actor: Actor, action: str) -> str:
    try:
        return run_confirmed(actor, action)
    except Exception:
        logger.exception(
            "event=telegram_action_failed telegram_id=%s action=%s", actor.telegram_id, action
        )
        return FAILED


@dataclass(frozen=True)
class Pending:
    action: str
    telegram_id: int
    expires: float


class ControlBot:
    """The handlers, the rate limiter and the confirmations waiting for their button."""

    def __init__(self, *, commands_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.limiter = RateLimiter(commands_per_minute, 60.0, clock)
        self.clock = clock
        self.pending: dict[str, Pending] = {}

    async def admit(self, update: Update) -> Actor | None:
        """The actor behind an update, or None (and a log line) when it is not answered."""
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return None
        actor = await in_django(admitted_actor)(
            telegram_id=user.id,
            telegram_username=user.username or "",
            chat_id=chat.id,
            chat_type=chat.type,
        )
        if actor is None:
            # Logged up to the rate limit a minute per stranger too, so a flood cannot fill
            # the disk with log lines.
            if not self.limiter.check(user.id).allowed:
                return None
            message = update.effective_message
            logger.warning(
                "event=telegram_ignored telegram_id=%s username=%r chat_id=%s chat_type=%s text=%r",
                user.id,
                user.username or "",
                chat.id,
                chat.type,
                ((message.text or "") if message is not None else "")[:80],
            )
            return None
        verdict = self.limiter.check(user.id)
        if not verdict.allowed:
            logger.warning(
                "event=telegram_rate_limited telegram_id=%s user=%s", user.id, actor.username
            )
            if verdict.tell and update.effective_message is not None:
                await update.effective_message.reply_text(
                    f"Too many commands: {self.limiter.limit} a minute. "
                    f"Wait {verdict.retry_after:.0f} s."
                )
            return None
        return actor

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or not message.text:
            return
        actor = await self.admit(update)
        if actor is None:
            return
        words = message.text.split()
        name, _, addressee = words[0][1:].partition("@")
        if addressee and addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot in the alerts chat
        age = (datetime.now(UTC) - message.date).total_seconds()
        if age > MAX_COMMAND_AGE_SECONDS:
            await message.reply_text(
                f"{words[0]} was sent {age / 60:.0f} min ago, while the bot was away; "
                "not run. Send it again if you still want it."
            )
            return
        reply: Reply = await in_django(guarded_command)(actor, name.lower(), words[1:])
        markup = None
        if reply.confirm is not None:
            now = self.clock()
            for stale in [key for key, value in self.pending.items() if value.expires < now]:
                del self.pending[stale]
            nonce = secrets.token_urlsafe(9)
            self.pending[nonce] = Pending(
                reply.confirm.action, actor.telegram_id, self.clock() + CONFIRM_SECONDS
            )
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(reply.confirm.button, callback_data=f"yes:{nonce}"),
                        InlineKeyboardButton("Cancel", callback_data=f"no:{nonce}"),
                    ]
                ]
            )
        await message.reply_text(reply.text, reply_markup=markup)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Anything that is not a command: logged if from a stranger, else a pointer to /help."""
        actor = await self.admit(update)
        if actor is not None and update.message is not None:
            await update.message.reply_text("Commands start with /; /help lists them.")

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        actor = await self.admit(update)
        if actor is None:
            return
        answer, _, nonce = (query.data or "").partition(":")
        pending = self.pending.get(nonce)
        if pending is None or pending.expires < self.clock():
            self.pending.pop(nonce, None)
            await query.answer("This question has expired; send the command again.")
            await query.edit_message_text("Expired: nothing done.")
            return
        if pending.telegram_id != actor.telegram_id:
            await query.answer("Only the one who asked can answer this.", show_alert=True)
            return
        del self.pending[nonce]
        if answer != "yes":
            await query.answer("Cancelled")
            await query.edit_message_text(f"/{pending.action} cancelled: nothing done.")
            return
        await query.answer(f"/{pending.action}: working...")
        text: str = await in_django(guarded_confirmed)(actor, pending.action)
        await query.edit_message_text(text)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("event=telegram_error error=%r", context.error, exc_info=context.error)

    async def post_init(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """The command menu Telegram shows under the message box."""
        await application.bot.set_my_commands(
            [BotCommand(command.name, command.summary) for command in COMMANDS.values()]
        )


def build_application(
    *,
    token: str,
    api_url: str,
    commands_per_minute: int,
    clock: Callable[[], float] = time.monotonic,
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The bot, talking to the Bot API at ``api_url`` (Telegram's, or a local one in tests)."""
    bot = ControlBot(commands_per_minute=commands_per_minute, clock=clock)
    root = api_url.rstrip("/")
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .post_init(bot.post_init)
        .build()
    )
    only_new = filters.UpdateType.MESSAGE
    application.add_handler(MessageHandler(only_new & filters.COMMAND, bot.on_command))
    application.add_handler(MessageHandler(only_new & ~filters.COMMAND, bot.on_other))
    application.add_handler(CallbackQueryHandler(bot.on_button))
    application.add_error_handler(bot.on_error)
    application.bot_data["control"] = bot
    return application


# The updates the bot asks Telegram for: nothing else reaches it.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
