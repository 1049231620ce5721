"""A local stand-in for Telegram's Bot API (https://core.telegram.org/bots/api), enough for
python-telegram-bot's polling bot: getMe, getUpdates (long polling), sendMessage,
answerCallbackQuery, editMessageText; any other method is recorded and answered ``true``.

Telegram's servers cannot be reached from the test machines. The test plays the users: it queues
messages and button presses as updates, and reads what the bot called.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_ID = 7000000001
BOT_USERNAME = "septrader_test_bot"
# getUpdates answers at least this often, so the bot stops quickly at the end of the tests.
MAX_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]


def _value(text: str) -> Any:
    """PTB sends each parameter JSON-encoded, except strings, which it sends as they are."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class FakeTelegram:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._changed = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    params = json.loads(body or "{}")
                else:
                    params = {key: _value(value) for key, value in parse_qsl(body)}
                prefix = f"/bot{fake.token}/"
                if not self.path.startswith(prefix):
                    self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                    return
                result = fake.handle(self.path[len(prefix) :], params)
                self._answer(200, {"ok": True, "result": result})

            do_GET = do_POST

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The bot may have stopped while its long poll was waiting.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeTelegram:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ----- the Bot API ---------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> Any:
        if method != "getUpdates":
            with self._changed:
                self.calls.append(Call(method, params))
                self._changed.notify_all()
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "SEP Trader",
                "username": BOT_USERNAME,
            }
        if method == "getUpdates":
            return self._get_updates(
                int(params.get("offset") or 0), float(params.get("timeout") or 0)
            )
        if method == "sendMessage":
            return self._message(params["chat_id"], params["text"], params.get("reply_markup"))
        if method == "editMessageText":
            return self._message(params["chat_id"], params["text"], params.get("reply_markup"))
        return True

    def _get_updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + min(timeout, MAX_POLL_SECONDS)
        with self._changed:
            self._updates = [update for update in self._updates if update["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return list(self._updates)

    def _message(self, chat_id: Any, text: str, markup: Any = None) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": int(chat_id), "type": "private" if int(chat_id) > 0 else "supergroup"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "SEP Trader"},
            "text": text,
        }
        if markup:
            message["reply_markup"] = markup
        return message

    # ----- the test's side: users write and press -------------------------------------------------

    def _queue(self, update: dict[str, Any]) -> int:
        with self._changed:
            update["update_id"] = next(self._update_ids)
            self._updates.append(update)
            self._changed.notify_all()
        return int(update["update_id"])

    def write(
        self,
        user_id: int,
        text: str,
        *,
        username: str = "",
        chat_id: int | None = None,
        chat_type: str = "private",
        age: float = 0.0,
    ) -> int:
        """A user sends ``text``, in their private chat with the bot unless ``chat_id`` is given."""
        chat_id = user_id if chat_id is None else chat_id
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time() - age),
            "chat": {"id": chat_id, "type": chat_type},
            "from": {"id": user_id, "is_bot": False, "first_name": "Op", "username": username},
            "text": text,
        }
        if chat_type != "private":
            message["chat"]["title"] = "SEP Trader alerts"
        if text.startswith("/"):
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        return self._queue({"message": message})

    def press(self, user_id: int, message: dict[str, Any], data: str) -> int:
        """A user presses the inline button carrying ``data`` under the bot's ``message``."""
        return self._queue(
            {
                "callback_query": {
                    "id": str(next(self._callback_ids)),
                    "from": {"id": user_id, "is_bot": False, "first_name": "Op"},
                    "chat_instance": "1",
                    "message": message,
                    "data": data,
                }
            }
        )

    def wait_for(self, method: str, chat_id: int | None = None, timeout: float = 15.0) -> Call:
        """The first call of ``method`` (to ``chat_id``) not returned by an earlier wait."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, call in enumerate(self.calls):
                    if call.method == method and (
                        chat_id is None or int(call.params.get("chat_id", 0)) == chat_id
                    ):
                        del self.calls[index]
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the bot did not call {method} (chat {chat_id})")
                self._changed.wait(left)

    def calls_of(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def forget(self) -> None:
        with self._changed:
            self.calls.clear()
