"""Pieces every app's API shares: errors, roles, pagination, throttles, addresses."""
