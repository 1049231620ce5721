"""Telegram control end to end: the real python-telegram-bot client polling a local fake of the
Bot API, commands from linked users of each role, the services the API calls, the audit log."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from marketdata.models import Pair
from monitoring.models import Alert
from monitoring.services import alert_raise
from septrader.formatting import money, price, significant
from septrader.models import AuditLog
from septrader.services import config_set
from telegrambot.models import TelegramAccount
from telegrambot.ratelimit import RateLimiter
from tests.conftest import REPO
from tests.telegrambot.conftest import (
    ADMIN_ID,
    ALERTS_CHAT,
    COMMANDS_PER_MINUTE,
    OPERATOR_ID,
    ROLELESS_ID,
    STRANGER_ID,
    TOKEN,
    VIEWER_ID,
)
from tests.telegrambot.fake_telegram import Call, FakeTelegram
from trading.models import AccountSnapshot, Trade, TradingSignal, TradingState

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def ask(telegram: FakeTelegram, user_id: int, text: str, **where: Any) -> Call:
    """``user_id`` sends ``text``; the bot's answer."""
    telegram.write(user_id, text, **where)
    return telegram.wait_for("sendMessage", chat_id=where.get("chat_id", user_id))


def said(telegram: FakeTelegram, user_id: int, text: str, **where: Any) -> str:
    return str(ask(telegram, user_id, text, **where).params["text"])


def buttons(call: Call) -> list[dict[str, str]]:
    markup = call.params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [button for row in markup["inline_keyboard"] for button in row]


def press(telegram: FakeTelegram, user_id: int, question: Call, label: str) -> Call:
    """``user_id`` presses the button ``label`` under the bot's ``question``; the edited text."""
    button = next(button for button in buttons(question) if button["text"] == label)
    chat_id = int(question.params["chat_id"])
    message = {
        "message_id": 999,
        "date": int(datetime.now(UTC).timestamp()),
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "text": question.params["text"],
    }
    telegram.press(user_id, message, button["callback_data"])
    telegram.wait_for("answerCallbackQuery")
    return telegram.wait_for("editMessageText")


def audit(action: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def mode() -> str:
    return str(TradingState.objects.get(pk=1).mode)


# ----- reads --------------------------------------------------------------------------------------


def test_a_viewer_reads_status_pairs_trades_profit_and_daily_with_readable_numbers(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    # Given an account, an open and a closed EUR_USD trade, and a signal with a long confidence
    now = datetime.now(UTC)
    AccountSnapshot.objects.create(
        account_id="101-001-0000000-009",
        time=now,
        currency="USD",
        balance=Decimal("100012.3456"),
        nav=Decimal("100020.5"),
        unrealized_pl=Decimal("8.1544"),
        margin_used=Decimal("33.3333"),
        margin_available=Decimal("99987.1"),
    )
    trade = {"account_id": "101-001-0000000-009", "pair_id": "EUR_USD", "opened_at": now}
    Trade.objects.create(
        **trade,
        broker_trade_id="41",
        initial_units=Decimal(1000),
        current_units=Decimal(1000),
        open_price=Decimal("1.171234"),
        stop_loss_price=Decimal("1.169"),
        take_profit_price=Decimal("1.1755"),
        unrealized_pl=Decimal("8.1544"),
    )
    Trade.objects.create(
        **trade,
        broker_trade_id="40",
        initial_units=Decimal(-2000),
        current_units=Decimal(0),
        open_price=Decimal("1.1722"),
        state=Trade.State.CLOSED,
        close_price=Decimal("1.17"),
        closed_at=now,
        realized_pl=Decimal("12.3456"),
    )
    TradingSignal.objects.create(
        pair_id="EUR_USD", time=now, direction="BUY", confidence=0.6656631189195747
    )

    # When a viewer asks, then the answers are there, rounded as an operator reads them
    status = said(telegram, VIEWER_ID, "/status")
    assert "Trading: trading" in status
    assert "NAV 100,020.50 USD" in status
    assert "margin used 33.33 USD" in status
    assert "Open trades: 1 (unrealized +8.15 USD)" in status

    pairs = said(telegram, VIEWER_ID, "/pairs")
    assert "EUR_USD" in pairs
    assert "last BUY 0.6657 (new)" in pairs
    assert "0.6656631" not in pairs

    trades = said(telegram, VIEWER_ID, "/trades")
    open_trade = Trade.objects.get(broker_trade_id="41")
    assert f"#{open_trade.pk} EUR_USD BUY 1,000 @ 1.17123 SL 1.16900 TP 1.17550, +8.15 USD" in (
        trades
    )
    assert "#" + str(Trade.objects.get(broker_trade_id="40").pk) + " " not in trades

    profit = said(telegram, VIEWER_ID, "/profit 3")
    assert "(3 days)" in profit
    assert "Realized +12.35 USD on 1 closed trade (1 won, 0 lost, win rate 100.0%)" in profit
    assert "Unrealized +8.15 USD" in profit

    daily = said(telegram, VIEWER_ID, "/daily")
    assert "+12.35 USD  1 (1 won)" in daily

    assert "days='x'" in said(telegram, VIEWER_ID, "/profit x")
    assert "/status" in said(telegram, VIEWER_ID, "/help")
    assert "/kill" not in said(telegram, VIEWER_ID, "/help")


def test_a_viewer_is_refused_every_control_command_and_nothing_changes(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    # Given a viewer and a user without a role
    before = AuditLog.objects.count()
    # When they try to control, then each command is refused with the role it needs
    for command in (
        "/enable EUR_USD force",
        "/disable EUR_USD",
        "/close 1",
        "/flatten EUR_USD",
        "/stop",
        "/start",
        "/kill",
        "/ack 1",
        "/reload",
    ):
        answer = ask(telegram, VIEWER_ID, command)
        assert "needs the operator role; viewer-phone is viewer" in answer.params["text"]
        assert "reply_markup" not in answer.params
    assert "needs the viewer role" in said(telegram, ROLELESS_ID, "/status")
    # And nothing was done
    assert AuditLog.objects.count() == before
    assert not TradingState.objects.exists() or mode() == TradingState.Mode.TRADING


# ----- control ------------------------------------------------------------------------------------


def test_an_operator_enables_and_disables_a_pair_audited_as_their_telegram_account(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    # Given EUR_USD without a promoted model
    # When the operator enables it without force, then the service's refusal is the answer
    assert "no promoted pair model" in said(telegram, OPERATOR_ID, "/enable EUR_USD")
    # When with force (the pair written the way a phone keyboard does), then it trades
    assert said(telegram, OPERATOR_ID, "/enable eurusd force") == "EUR_USD enabled (trading)."
    assert Pair.objects.get(symbol="EUR_USD").enabled
    # When disabled with a reason
    answer = said(telegram, OPERATOR_ID, "/disable EUR_USD news at 14:30")
    assert answer.startswith("EUR_USD disabled")
    pair = Pair.objects.get(symbol="EUR_USD")
    assert (pair.enabled, pair.state_reason) == (False, "news at 14:30")
    # Then both are audited with the Telegram user and the project user they act as
    actor = f"telegram:{OPERATOR_ID}/operator-phone"
    assert [(row.actor, row.target) for row in audit("pair.enable")] == [(actor, "EUR_USD")]
    assert [(row.actor, row.details["reason"]) for row in audit("pair.disable")] == [
        (actor, "news at 14:30")
    ]
    assert "pair='EURX' does not match" in said(telegram, OPERATOR_ID, "/enable EURX")
    assert "Which pair?" in said(telegram, OPERATOR_ID, "/disable")


def test_an_operator_advances_a_paper_pair_only_through_its_gates(
    telegram: FakeTelegram, accounts: dict[str, User], parity: Any
) -> None:
    from tests.trading.test_paper import PAPER_STARTS, promoted_model

    # Given EUR_USD enabled on a promoted model: it starts on paper
    promoted_model()
    assert said(telegram, OPERATOR_ID, "/enable EUR_USD") == "EUR_USD enabled (paper)."
    Pair.objects.filter(symbol="EUR_USD").update(paper_started_at=PAPER_STARTS)
    # When the operator advances it without a paper record, the failed gate is the answer
    answer = said(telegram, OPERATOR_ID, "/advance EUR_USD")
    assert answer.startswith("/advance: EUR_USD cannot advance to live: results: 0 paper trades")
    assert Pair.objects.get(symbol="EUR_USD").state == Pair.State.PAPER
    [refused] = audit("pair.advance_refused")
    assert refused.actor == f"telegram:{OPERATOR_ID}/operator-phone"


def test_an_operator_closes_a_trade_and_flattens_a_pair_at_the_broker(
    telegram: FakeTelegram, accounts: dict[str, User], open_trade: Trade
) -> None:
    # Given an open 1000-unit EUR_USD trade at the simulator
    # When the operator closes 400 units of it, then the broker's trade shrinks
    answer = said(telegram, OPERATOR_ID, f"/close {open_trade.pk} 400")
    assert answer == f"Trade #{open_trade.pk} EUR_USD reduced to 600.00 units."
    # When they flatten the pair, then the rest is closed
    assert said(telegram, OPERATOR_ID, "/flatten EUR_USD") == "EUR_USD: 1 trade closed."
    open_trade.refresh_from_db()
    assert open_trade.state == Trade.State.CLOSED
    # And a closed trade cannot be closed again: the service's message is the answer
    assert "is already closed" in said(telegram, OPERATOR_ID, f"/close {open_trade.pk}")
    actor = f"telegram:{OPERATOR_ID}/operator-phone"
    assert [(row.actor, row.details["units"]) for row in audit("trade.close")] == [(actor, "400")]
    assert [(row.actor, row.target) for row in audit("trades.close_all")] == [(actor, "EUR_USD")]


def test_stop_reduces_at_once_and_start_resumes_only_once_the_operator_confirms(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    # When the operator stops, then the system is reducing-only
    assert said(telegram, OPERATOR_ID, "/stop lunch").startswith("Reducing only")
    assert mode() == TradingState.Mode.REDUCING
    # When they send /start (as Telegram does when a chat is opened), then only a question comes
    question = ask(telegram, OPERATOR_ID, "/start")
    assert "Resume trading" in question.params["text"]
    assert mode() == TradingState.Mode.REDUCING
    # When they press Cancel, then nothing changes
    cancelled = press(telegram, OPERATOR_ID, question, "Cancel")
    assert cancelled.params["text"] == "/start cancelled: nothing done."
    assert mode() == TradingState.Mode.REDUCING
    # When they ask again and confirm, then trading resumes
    question = ask(telegram, OPERATOR_ID, "/start")
    done = press(telegram, OPERATOR_ID, question, "Resume trading")
    assert done.params["text"] == "Trading is trading: new entries allowed."
    assert mode() == TradingState.Mode.TRADING
    actor = f"telegram:{OPERATOR_ID}/operator-phone"
    assert [(row.actor, row.target) for row in audit("trading.mode")] == [
        (actor, "reducing"),
        (actor, "trading"),
    ]


def test_the_kill_switch_needs_the_button_of_the_operator_who_asked_then_halts_and_closes(
    telegram: FakeTelegram, accounts: dict[str, User], open_trade: Trade
) -> None:
    # Given an open trade; when the operator sends /kill in the alerts chat, nothing happens yet
    config_set(key="alerts.telegram_chat_id", value=str(ALERTS_CHAT))
    question = ask(telegram, OPERATOR_ID, "/kill", chat_id=ALERTS_CHAT, chat_type="supergroup")
    assert [button["text"] for button in buttons(question)] == ["KILL", "Cancel"]
    assert not audit("trading.kill_switch")
    # When the admin presses the operator's button, then they are told it is not theirs
    button = buttons(question)[0]
    message = {"message_id": 5, "date": 0, "chat": {"id": ALERTS_CHAT, "type": "supergroup"}}
    telegram.press(ADMIN_ID, message, button["callback_data"])
    refused = telegram.wait_for("answerCallbackQuery")
    assert "Only the one who asked" in refused.params["text"]
    assert not audit("trading.kill_switch")
    # When the operator confirms, then trading halts and the trade is closed at the broker
    done = press(telegram, OPERATOR_ID, question, "KILL")
    assert done.params["text"].startswith("Kill switch engaged: trading halted")
    assert "1 trade closed" in done.params["text"]
    assert mode() == TradingState.Mode.HALTED
    open_trade.refresh_from_db()
    assert open_trade.state == Trade.State.CLOSED
    [row] = audit("trading.kill_switch")
    assert row.actor == f"telegram:{OPERATOR_ID}/operator-phone"
    # And the same button cannot fire twice
    again = press(telegram, OPERATOR_ID, question, "KILL")
    assert again.params["text"] == "Expired: nothing done."
    assert len(audit("trading.kill_switch")) == 1


def test_a_confirmation_expires_after_a_minute(
    telegram: FakeTelegram, accounts: dict[str, User], harness: Any
) -> None:
    question = ask(telegram, OPERATOR_ID, "/kill")
    harness.clock.offset += 61
    assert press(telegram, OPERATOR_ID, question, "KILL").params["text"] == "Expired: nothing done."
    assert not audit("trading.kill_switch")
    assert not TradingState.objects.filter(mode=TradingState.Mode.HALTED).exists()


def test_an_operator_lists_and_acknowledges_alerts_and_reloads_the_settings(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    alert = alert_raise(
        condition="prices.stale:EUR_USD", severity="warning", message="EUR_USD prices are stale"
    )
    listed = said(telegram, VIEWER_ID, "/alerts")
    assert f"#{alert.id} [warning] open: EUR_USD prices are stale" in listed
    answer = said(telegram, OPERATOR_ID, f"/ack {alert.id}")
    assert answer == f"Alert #{alert.id} acknowledged: EUR_USD prices are stale"
    alert.refresh_from_db()
    assert alert.acknowledged_by == f"telegram:{OPERATOR_ID}/operator-phone"
    assert "does not exist" in said(telegram, OPERATOR_ID, f"/ack {alert.id + 100}")
    assert said(telegram, ADMIN_ID, "/reload").startswith("Every process reads its settings")
    assert [row.actor for row in audit("alert.acknowledge")] == [
        f"telegram:{OPERATOR_ID}/operator-phone"
    ]
    assert [row.actor for row in audit("config.reload")] == [f"telegram:{ADMIN_ID}/admin-phone"]
    assert Alert.objects.get(pk=alert.id).state == Alert.State.ACKNOWLEDGED


# ----- who gets an answer -------------------------------------------------------------------------


def test_an_unknown_user_or_chat_gets_no_answer_and_is_logged(
    telegram: FakeTelegram, accounts: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    config_set(key="alerts.telegram_chat_id", value=str(ALERTS_CHAT))
    caplog.set_level(logging.WARNING, logger="telegrambot.bot")
    # When a stranger writes, and a linked operator writes in a group that is not the alerts chat
    telegram.write(STRANGER_ID, "/kill", username="mallory")
    telegram.write(STRANGER_ID, "hello", username="mallory")
    telegram.write(OPERATOR_ID, "/status", chat_id=-42, chat_type="group")
    # And then (updates are handled in order) the operator writes in the alerts chat
    answer = said(telegram, OPERATOR_ID, "/status", chat_id=ALERTS_CHAT, chat_type="supergroup")
    assert answer.startswith("Trading:")
    # Then nobody else got a message, and each ignored message was logged
    assert telegram.calls_of("sendMessage") == []
    ignored = [record.getMessage() for record in caplog.records if "telegram_ignored" in record.msg]
    assert len(ignored) == 3
    assert f"telegram_id={STRANGER_ID} username='mallory'" in ignored[0]
    assert "chat_id=-42" in ignored[2]
    assert not audit("trading.kill_switch")


def test_the_bot_gives_telegram_its_command_menu(harness: Any) -> None:
    names = [command["command"] for command in harness.menu]
    assert names[:2] == ["help", "status"]
    assert {"kill", "flatten", "ack", "reload", "profit", "daily"} <= set(names)


def test_the_bot_token_never_reaches_the_logs(
    telegram: FakeTelegram, accounts: dict[str, User], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert said(telegram, VIEWER_ID, "/status").startswith("Trading:")
    assert caplog.records
    assert TOKEN not in caplog.text


def test_an_unlinked_or_deactivated_user_is_a_stranger(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    accounts["viewer"].is_active = False
    accounts["viewer"].save()
    call_command("telegram_user", "unlink", str(OPERATOR_ID))
    telegram.write(VIEWER_ID, "/status")
    telegram.write(OPERATOR_ID, "/status")
    assert said(telegram, ADMIN_ID, "/status").startswith("Trading:")
    assert telegram.calls_of("sendMessage") == []
    assert [row.target for row in audit("telegram.unlink")] == [str(OPERATOR_ID)]


def test_each_user_may_send_a_limited_number_of_commands_a_minute(
    telegram: FakeTelegram, accounts: dict[str, User], harness: Any
) -> None:
    for _ in range(COMMANDS_PER_MINUTE):
        assert said(telegram, VIEWER_ID, "/help").startswith("You act as viewer-phone")
    # The next one is refused once, the one after that not even answered
    assert said(telegram, VIEWER_ID, "/help").startswith(
        f"Too many commands: {COMMANDS_PER_MINUTE}"
    )
    telegram.write(VIEWER_ID, "/help")
    # Another user is not held back
    assert said(telegram, OPERATOR_ID, "/help").startswith("You act as operator-phone")
    assert telegram.calls_of("sendMessage") == []
    # A minute later the viewer is answered again
    harness.clock.offset += 61
    assert said(telegram, VIEWER_ID, "/help").startswith("You act as viewer-phone")


def test_a_command_that_waited_while_the_bot_was_away_is_not_run(
    telegram: FakeTelegram, accounts: dict[str, User]
) -> None:
    answer = said(telegram, OPERATOR_ID, "/stop", age=600)
    assert "10 min ago, while the bot was away; not run" in answer
    assert not audit("trading.mode")
    assert "/nonsense is not a command" in said(telegram, OPERATOR_ID, "/nonsense")
    assert said(telegram, OPERATOR_ID, "hi").startswith("Commands start with /")


# ----- linking accounts ---------------------------------------------------------------------------


def test_the_telegram_user_command_links_lists_and_unlinks_audited(
    transactional_db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    user = User.objects.create_user(username="alice")
    call_command("telegram_user", "link", "777", "alice", "--note", "Alice's phone")
    assert TelegramAccount.objects.get(telegram_id=777).user == user
    call_command("telegram_user", "list")
    assert "777\talice\t-\tAlice's phone" in capsys.readouterr().out
    with pytest.raises(CommandError, match="username='bob' is not a user"):
        call_command("telegram_user", "link", "778", "bob")
    call_command("telegram_user", "unlink", "777")
    assert not TelegramAccount.objects.exists()
    assert [row.action for row in AuditLog.objects.order_by("id")] == [
        "telegram.link",
        "telegram.unlink",
    ]


def test_the_bot_command_answers_from_its_own_process_and_stops_cleanly_on_sigterm(
    accounts: dict[str, User],
) -> None:
    """The process the supervisor, compose and systemd start: run_polling and its signals."""
    token = "654321:PROCESS-token"
    parts = urlsplit(os.environ["DATABASE_URL"])
    with FakeTelegram(token) as telegram:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "septrader.settings",
            "DATABASE_URL": urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"])),
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_API_URL": telegram.url,
        }
        process = subprocess.Popen(
            [sys.executable, "manage.py", "telegram_bot"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            telegram.wait_for("setMyCommands", timeout=60)
            assert said(telegram, VIEWER_ID, "/status").startswith("Trading:")
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "event=telegram_bot_started" in out + err
    assert token not in out + err


def test_the_bot_command_refuses_to_start_without_a_token(
    transactional_db: Any, settings: Any
) -> None:
    settings.TELEGRAM_BOT_TOKEN = None
    with pytest.raises(CommandError, match="TELEGRAM_BOT_TOKEN is not set") as refused:
        call_command("telegram_bot")
    # EX_CONFIG, which the systemd unit does not restart (RestartPreventExitStatus=78)
    assert refused.value.returncode == 78


def test_numbers_are_written_as_an_operator_reads_them() -> None:
    assert significant(0.6656631189195747) == "0.6657"
    assert significant(12345.678) == "12346"
    assert significant(0.000123456) == "0.0001235"
    assert significant(0.5) == "0.5000"
    assert significant(None) == "-"
    assert price(Decimal("1.171234"), 5) == "1.17123"
    assert price("157.1", 3) == "157.100"
    assert money(Decimal("-1234.5678"), "USD") == "-1,234.57 USD"
    assert money(Decimal("12.3456"), "USD", signed=True) == "+12.35 USD"
    assert money(Decimal("-0.001"), "USD", signed=True) == "+0.00 USD"
    assert money(Decimal("-0.001"), "USD") == "0.00 USD"


def test_the_rate_limiter_counts_a_sliding_minute_per_user() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 60.0, lambda: now[0])
    assert limiter.check(1).allowed and limiter.check(1).allowed
    refused = limiter.check(1)
    assert (refused.allowed, refused.tell, refused.retry_after) == (False, True, 60.0)
    assert not limiter.check(1).tell
    assert limiter.check(2).allowed
    now[0] = 60.0
    assert limiter.check(1).allowed
