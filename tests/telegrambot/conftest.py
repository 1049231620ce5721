"""The bot, running in a thread with the real python-telegram-bot client, against a local fake of
Telegram's Bot API; linked users of each role; the API tests' simulator for broker actions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.db import connections
from django.test import override_settings
from telegram.ext import Application

from oandasim.client import SimulatorProcess
from telegrambot.bot import ALLOWED_UPDATES, build_application
from telegrambot.services import telegram_account_link
from tests.api.conftest import (  # noqa: F401 (fixtures)
    SIM_ACCOUNT,
    SIM_TOKEN,
    broker,
    empty_cache,
    make_user,
    open_trade,
    simulator,
)
from tests.telegrambot.fake_telegram import FakeTelegram

TOKEN = "123456:TEST-token"
COMMANDS_PER_MINUTE = 12
VIEWER_ID = 1101
OPERATOR_ID = 1202
ADMIN_ID = 1303
ROLELESS_ID = 1404
STRANGER_ID = 1999
ALERTS_CHAT = -1005001


class Clock:
    """The bot's monotonic clock, which a test may move on (rate-limit windows, expiries)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


class RunningBot:
    def __init__(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self.application = application
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        async with self.application:
            # What run_polling does after initialising: the bot's command menu.
            assert self.application.post_init is not None
            await self.application.post_init(self.application)
            await self.application.start()
            assert self.application.updater is not None
            await self.application.updater.start_polling(
                poll_interval=0.0, timeout=1, allowed_updates=ALLOWED_UPDATES
            )
            self.ready.set()
            await self.stopping.wait()
            await self.application.updater.stop()
            await self.application.stop()
        # The database connection of Django's sync thread, so the test database can be dropped.
        await sync_to_async(connections.close_all, thread_sensitive=True)()

    def __enter__(self) -> RunningBot:
        self.thread.start()
        assert self.ready.wait(30), "the bot did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None and self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(30)


@dataclass
class Harness:
    telegram: FakeTelegram
    clock: Clock
    # The command menu the bot gave Telegram at start.
    menu: list[dict[str, str]]


@pytest.fixture(scope="module")
def harness(simulator: SimulatorProcess) -> Iterator[Harness]:  # noqa: F811
    """The fake Bot API and the bot polling it; the broker is the module's simulator."""
    clock = Clock()
    with (
        override_settings(
            OANDA_API_URL=simulator.base_url,
            OANDA_TOKEN=SIM_TOKEN,
            OANDA_ACCOUNT_ID=SIM_ACCOUNT,
        ),
        FakeTelegram(TOKEN) as telegram,
    ):
        application = build_application(
            token=TOKEN,
            api_url=telegram.url,
            commands_per_minute=COMMANDS_PER_MINUTE,
            clock=clock,
        )
        with RunningBot(application):
            [menu] = telegram.calls_of("setMyCommands")
            yield Harness(telegram, clock, menu.params["commands"])


@pytest.fixture
def telegram(harness: Harness) -> Iterator[FakeTelegram]:
    """The fake Bot API, its record of calls empty, every user's rate-limit window fresh."""
    harness.clock.offset += 61
    harness.telegram.forget()
    yield harness.telegram
    harness.telegram.forget()


@pytest.fixture
def accounts(transactional_db: Any) -> dict[str, User]:
    """Project users of each role (and one without), each linked to a Telegram id."""
    users = {}
    for telegram_id, role in (
        (VIEWER_ID, "viewer"),
        (OPERATOR_ID, "operator"),
        (ADMIN_ID, "admin"),
        (ROLELESS_ID, None),
    ):
        user = make_user(role, f"{role or 'roleless'}-phone")
        telegram_account_link(telegram_id=telegram_id, username=user.username, actor="test")
        users[role or "none"] = user
    return users
