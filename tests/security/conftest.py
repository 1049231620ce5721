"""The API's fixtures (users of each role and their clients) serve the security tests too."""

from tests.api.conftest import as_role, empty_cache, users

__all__ = ["as_role", "empty_cache", "users"]
