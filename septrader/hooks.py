"""Calls up the layers without imports (README, "Architecture").

The apps depend downwards only: ``marketdata`` <- ``qfh`` <- ``trading`` <- ``monitoring``. When a
lower layer must start work that belongs to a higher one (the streamer hands a closed minute to the
analysis, the analysis hands a signal to execution), it names a ``Hook`` and calls it; the higher
app registers its function in its ``AppConfig.ready``. Exactly one function answers a hook, so a
call behaves like the direct call it replaces (same arguments, same return value, same
exceptions), and a hook nobody registered fails loudly instead of doing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class HookNotRegistered(RuntimeError):
    """A hook was called before its app registered a function (Django is not set up?)."""


class Hook(Generic[P, R]):
    """One named call from a lower layer to the app above that registered it."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc
        self._function: Callable[P, R] | None = None

    def register(self, function: Callable[P, R]) -> Callable[P, R]:
        """Answer this hook with ``function`` (the app's ``ready``; registering again replaces)."""
        self._function = function
        return function

    @property
    def registered(self) -> Callable[P, R] | None:
        return self._function

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._function is None:
            raise HookNotRegistered(
                f"hook {self.name!r} has no function: its app registers one in AppConfig.ready"
            )
        return self._function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Hook({self.name!r})"
