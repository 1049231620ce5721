"""Notification channels: e-mail (Django's mail), a generic JSON webhook, Telegram bot messages.

Which severities reach which channel is SystemConfig (``alerts.<channel>_min_severity``); where
they go is the environment for secrets (ALERT_WEBHOOK_URL, TELEGRAM_BOT_TOKEN) and SystemConfig
for the rest (``alerts.email_to``, ``alerts.telegram_chat_id``). Sending raises
``DeliveryError`` with a reason the notification keeps.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail

from monitoring.health import config_value
from monitoring.models import SEVERITY_RANK, Notification


class DeliveryError(Exception):
    pass


def _email_recipients() -> list[str]:
    raw = str(config_value("alerts.email_to"))
    return [address.strip() for address in raw.split(",") if address.strip()]


def channel_configured(channel: str) -> bool:
    if channel == Notification.Channel.EMAIL:
        return bool(_email_recipients())
    if channel == Notification.Channel.WEBHOOK:
        return bool(settings.ALERT_WEBHOOK_URL)
    if channel == Notification.Channel.TELEGRAM:
        return bool(settings.TELEGRAM_BOT_TOKEN and config_value("alerts.telegram_chat_id"))
    return False


def channels_for(severity: str | None) -> list[str]:
    """The configured channels that take this severity (None: any severity, as for summaries)."""
    chosen = []
    for channel in Notification.Channel.values:
        least = str(config_value(f"alerts.{channel}_min_severity"))
        if least == "off" or not channel_configured(channel):
            continue
        if severity is None or SEVERITY_RANK[severity] >= SEVERITY_RANK[least]:
            chosen.append(channel)
    return chosen


def send(notification: Notification) -> None:
    try:
        if notification.channel == Notification.Channel.EMAIL:
            _send_email(notification)
        elif notification.channel == Notification.Channel.WEBHOOK:
            _send_webhook(notification)
        elif notification.channel == Notification.Channel.TELEGRAM:
            _send_telegram(notification)
        else:
            raise DeliveryError(f"channel={notification.channel!r} is unknown")
    except DeliveryError as error:
        raise DeliveryError(_redact(str(error))) from None
    # SMTP failures are OSErrors (smtplib.SMTPException included).
    except (requests.RequestException, OSError) as error:
        raise DeliveryError(_redact(f"{error.__class__.__name__}: {error}")) from None


def _redact(text: str) -> str:
    """Telegram's URL holds the bot token, and requests' errors quote the URL."""
    token = settings.TELEGRAM_BOT_TOKEN
    return text.replace(token, "***") if token else text


def _send_email(notification: Notification) -> None:
    recipients = _email_recipients()
    if not recipients:
        raise DeliveryError("alerts.email_to is empty")
    send_mail(
        notification.subject,
        notification.text,
        settings.DEFAULT_FROM_EMAIL,
        recipients,
        fail_silently=False,
    )


def _check(response: requests.Response, what: str) -> None:
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{what} answered HTTP {response.status_code}: {response.text[:200]}")


def _send_webhook(notification: Notification) -> None:
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        raise DeliveryError("ALERT_WEBHOOK_URL is not set")
    # "text" is what Slack shows and "content" what Discord shows; the rest is for machines.
    body: dict[str, Any] = {
        "text": notification.text,
        "content": notification.text[:2000],
        **notification.payload,
    }
    response = requests.post(url, json=body, timeout=settings.ALERT_DELIVERY_TIMEOUT)
    _check(response, "the webhook")


def _send_telegram(notification: Notification) -> None:
    token = settings.TELEGRAM_BOT_TOKEN
    chat = str(config_value("alerts.telegram_chat_id"))
    if not token or not chat:
        raise DeliveryError("TELEGRAM_BOT_TOKEN or alerts.telegram_chat_id is not set")
    url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{token}/sendMessage"
    response = requests.post(
        url,
        json={"chat_id": chat, "text": notification.text[:4096], "disable_web_page_preview": True},
        timeout=settings.ALERT_DELIVERY_TIMEOUT,
    )
    # The URL holds the token: never let it reach the stored error.
    try:
        _check(response, "Telegram")
        answer = response.json()
    except ValueError as error:
        raise DeliveryError("Telegram answered with something other than JSON") from error
    if not answer.get("ok"):
        raise DeliveryError(f"Telegram refused the message: {answer.get('description', '?')}")
