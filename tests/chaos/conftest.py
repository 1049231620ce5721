"""The chaos runs trade against the same simulated broker as the trading tests."""

from tests.trading.conftest import broker

__all__ = ["broker"]
