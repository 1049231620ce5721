"""The cluster tests trade against the trading tests' simulated broker."""

from tests.trading.conftest import broker  # noqa: F401 (a fixture, shared)
