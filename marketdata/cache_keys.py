"""The cache keys the streamer writes (marketdata/streaming.py) and the selectors read."""

from __future__ import annotations

# The streamer's published state (StreamState as a dict).
STATE_KEY = "stream:state"
# The newest price of a pair: bid, ask, time, tradeable, received.
PRICE_KEY = "price:{pair}"


def latest_price_key(pair: str) -> str:
    return PRICE_KEY.format(pair=pair)
