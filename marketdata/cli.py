"""Small helpers shared by the management commands."""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError

from marketdata.broker_time import CandleTimeError, parse_broker_time


def parse_moment(option: str, value: str | None) -> datetime | None:
    """Read a ``--from``/``--to`` value: a UTC date (2025-07-24) or time (2025-07-24T09:30[Z])."""
    if value is None:
        return None
    text = value.strip()
    if "T" not in text and " " not in text:
        text += "T00:00:00"
    if not text.endswith("Z") and "+" not in text[10:] and text.count("-") <= 2:
        text += "Z"
    if text.count(":") == 1:
        text = text.replace("Z", ":00Z")
    try:
        return parse_broker_time(text)
    except CandleTimeError as error:
        raise CommandError(
            f"--{option}={value!r} {error}; expected a UTC date like 2025-07-24 or a time like "
            "2025-07-24T09:30"
        ) from None
