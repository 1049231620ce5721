"""Times as the broker writes them (OANDA v20: RFC 3339 with nine fractional digits, or Unix
seconds), read as aware UTC datetimes: used by candle ingestion, the streamer, the ledger,
execution, reconciliation and the command line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

# OANDA sends RFC 3339 times with nine fractional digits ("2025-07-23T20:40:00.000000000Z"), which
# datetime.fromisoformat cannot read, or Unix seconds as a decimal string when asked for UNIX times.
# ASCII digits only: \d and int() also take the digits of other scripts (septrader/decimals.py).
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$",
    re.ASCII,
)
_UNIX = re.compile(r"^\d{9,11}(\.\d{1,9})?$", re.ASCII)


class CandleTimeError(ValueError):
    """A broker time that cannot be read; the message says what was expected."""


def parse_broker_time(value: Any) -> datetime:
    """Read a broker timestamp (RFC 3339 with up to 9 fractional digits, or Unix seconds) as UTC."""
    try:
        return _broker_time(value)
    except (ArithmeticError, ValueError, OSError) as error:
        if isinstance(error, CandleTimeError):
            raise
        # A number of seconds or an offset that takes the time past the years 1 to 9999, a NaN.
        raise CandleTimeError(f"is not a representable time ({error})") from None


def _broker_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise CandleTimeError("has no time zone; expected an aware datetime in UTC")
        return value.astimezone(UTC)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise CandleTimeError(
            "is not a timestamp; expected RFC 3339 text like 2025-07-23T20:40:00Z"
        )
    # OANDA's own form, "2025-07-23T20:40:00.000000000Z", read by the C parser (a backfill reads
    # hundreds of thousands); anything else goes through the general pattern below.
    if (
        len(value) == 30
        and value[4] == "-"
        and value[10] == "T"
        and value[13] == ":"
        and value[19] == "."
        and value[29] == "Z"
        and value[20:29].isdigit()
        and value.isascii()
    ):
        try:
            whole_seconds = datetime.fromisoformat(value[:19])
        except ValueError:
            pass
        else:
            return whole_seconds.replace(microsecond=int(value[20:26]), tzinfo=UTC)
    text = value.strip()
    if _UNIX.match(text):
        seconds = Decimal(text)
        whole = int(seconds)
        micro = int((seconds - whole) * 1_000_000)
        return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=micro)
    match = _RFC3339.match(text)
    if not match:
        raise CandleTimeError(
            "is not a timestamp; expected RFC 3339 text like 2025-07-23T20:40:00Z"
        )
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone is None:
        raise CandleTimeError("has no time zone; expected a trailing Z or an offset like +00:00")
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
        )
    except ValueError as error:
        raise CandleTimeError(f"is not a valid date ({error})") from None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        moment -= sign * offset
    return moment
