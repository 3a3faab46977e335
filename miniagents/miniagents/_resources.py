"""Resources shared by the agents of one ``MiniAgents`` context, closed when it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from miniagents.promising.lowlevel import logger

__all__ = ["Resources"]

T = TypeVar("T")


class Resources:
    """Resources made at their first request (e.g. an SDK client) and closed together."""

    __slots__ = ("_made",)

    def __init__(self) -> None:
        self._made: dict[object, tuple[object, Callable[[], Awaitable[object]]]] = {}

    def get(self, key: object, make: Callable[[], T], close: Callable[[T], Awaitable[object]]) -> T:
        """The resource for ``key``, made by ``make()`` the first time; ``close`` closes it."""
        found = self._made.get(key)
        if found is not None:
            return cast(T, found[0])
        made = make()
        self._made[key] = (made, lambda: close(made))
        return made

    async def aclose(self) -> None:
        """Close every resource (a failure is logged; the others are still closed)."""
        made, self._made = self._made, {}
        for _resource, close in made.values():
            try:
                await close()
            except Exception:
                logger.exception("Closing a resource of a MiniAgents context failed.")
