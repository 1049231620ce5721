"""The API fixtures (users of each role, the simulator behind the trading services) for the
stateful API fuzz, imported from the API tests rather than copied."""

from tests.api.conftest import broker, empty_cache, simulator, users

__all__ = ["broker", "empty_cache", "simulator", "users"]
