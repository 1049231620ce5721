"""Local receivers for the alert channels: a loopback HTTP server stands in for the webhook and
for Telegram's API, and Django's locmem outbox (pytest-django's default) for e-mail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import override_settings

from monitoring.services import Evaluation, alerts_evaluate
from septrader.services import config_set


class Receiver:
    """An HTTP server on 127.0.0.1 that stores every JSON body posted to it.

    ``statuses`` are answered in turn (then 200) so a test can make the first delivery fail.
    """

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self.answer = answer or {"ok": True}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    receiver.bodies.append(body)
                    receiver.paths.append(self.path)
                payload = json.dumps(receiver.answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self, condition: str) -> list[str]:
        """The events (raised/resolved) received for one alert condition, in order."""
        return [
            body["event"]
            for body in self.bodies
            if body.get("alert", {}).get("condition") == condition
        ]

    def texts(self) -> list[str]:
        return [str(body.get("text", "")) for body in self.bodies]


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver()
    with override_settings(ALERT_WEBHOOK_URL=f"{receiver.url}/hooks/alerts"):
        yield receiver
    receiver.close()


@pytest.fixture
def telegram() -> Iterator[Receiver]:
    receiver = Receiver(answer={"ok": True, "result": {"message_id": 1}})
    with override_settings(TELEGRAM_API_URL=receiver.url, TELEGRAM_BOT_TOKEN="123:test-token"):
        yield receiver
    receiver.close()


@pytest.fixture
def channels_on(db: Any) -> None:
    """Generous limits, so the test's own condition is never the one rate-limited away."""
    config_set(key="alerts.rate_limit_per_hour", value=1000)
    config_set(key="alerts.email_to", value="ops@example.test")
    config_set(key="alerts.telegram_chat_id", value="-100200300")


def evaluate_until(
    predicate: Callable[[Evaluation], bool], seconds: float, what: str
) -> Evaluation:
    """Evaluate the alerts every half second until ``predicate`` holds."""
    deadline = time.monotonic() + seconds
    while True:
        evaluation = alerts_evaluate()
        if predicate(evaluation):
            return evaluation
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; firing: {evaluation.firing}, "
                f"unknown: {evaluation.unknown}"
            )
        time.sleep(0.5)
