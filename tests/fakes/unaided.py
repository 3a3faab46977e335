"""Run a program on a virtual clock and fail if the deadlock watch had to step in.

A program that hangs on the library's streams ends at once on a virtual clock, as a
``DeadlockError`` (the deadlock watch); the watch would also relieve a wait held by pressure
alone after one idle virtual second. A program that must end by itself (a fan-out, a deep
chain of agents) is run with :func:`run_unaided`, which checks that no virtual time passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from miniagents.testing.virtual_time import run_with_virtual_time

__all__ = ["run_unaided"]

T = TypeVar("T")


def run_unaided(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a virtual clock; fail if virtual time passed (the watch stepped in)."""

    async def timed() -> T:
        start = asyncio.get_running_loop().time()
        result = await coroutine
        assert asyncio.get_running_loop().time() == start, "the deadlock watch had to step in"
        return result

    return run_with_virtual_time(timed())
