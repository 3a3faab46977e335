"""Run a coroutine on uvloop, the event loop many servers use in production.

uvloop hides what asyncio's own loop shows (its ready callbacks and timers), and it has no
virtual clock: a test runs its coroutine on a fresh uvloop loop in a thread and fails if it
has not ended within :data:`~tests.fakes.fixtures.THREAD_WAIT` seconds (a hang fails the
test instead of blocking the suite).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import uvloop

from tests.fakes.fixtures import THREAD_WAIT

__all__ = ["on_uvloop"]

T = TypeVar("T")


def on_uvloop(main: Callable[[], Coroutine[Any, Any, T]], wait: float = THREAD_WAIT) -> T:
    """Run ``main()`` on a new uvloop loop in a thread; its result, or its error raised here.

    Raises:
        AssertionError: if it is still running after ``wait`` seconds (``THREAD_WAIT`` by
            default).
    """
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(uvloop.run(main()))
        except BaseException as error:  # handed over to the caller's thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(wait)
    assert not thread.is_alive(), f"hung: still running after {wait} s on uvloop"
    if errors:
        raise errors[0]
    return results[0]
