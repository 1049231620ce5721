"""Reading candle files: the seed's JSON list and OANDA's candles response (pure: no ORM)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from marketdata.candle_input import oanda_candle_fields


class CandleFileError(ValueError):
    pass


def read_candle_file(
    path: Path, *, price: str = "mid"
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return the file's candles as flat mappings, and what the file says about itself.

    Two layouts are read: the seed's list of ``{time, open, high, low, close, volume}`` objects,
    and OANDA's ``{"instrument", "granularity", "candles": [{"time", "mid": {"o", ...}}]}``, from
    which ``price`` (mid, bid or ask) is taken. Numbers are read as Decimal, never through float.
    """
    try:
        with path.open() as handle:
            # Floats are turned into Decimal by their shortest round-trip text (1.17762, not
            # 1.1776199999999999), which is what the seed's writer meant; OANDA sends strings.
            document = json.load(handle)
    except OSError as error:
        raise CandleFileError(f"{path}: cannot be read ({error.strerror})") from None
    except json.JSONDecodeError as error:
        raise CandleFileError(f"{path}: is not JSON ({error})") from None
    if isinstance(document, list):
        return document, {}
    if isinstance(document, dict) and isinstance(document.get("candles"), list):
        if price not in {"mid", "bid", "ask"}:
            raise CandleFileError(f"price={price!r} is not valid; expected mid, bid or ask")
        meta = {key: document[key] for key in ("instrument", "granularity") if key in document}
        return [oanda_candle_fields(candle, price) for candle in document["candles"]], meta
    raise CandleFileError(
        f"{path}: expected a JSON list of candles or an OANDA candles response with a "
        "'candles' list"
    )


def batches(items: list[dict[str, Any]], size: int) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]
