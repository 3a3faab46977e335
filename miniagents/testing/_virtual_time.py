"""An asyncio event loop whose clock is virtual and jumps ahead whenever the loop is idle.

Code under test sleeps, times out and waits exactly as it would on a real loop, in the same
order, but a test that "waits" ten minutes of virtual time finishes at once::

    real loop:     sleep(5) ....(5 s of wall time).... wake
    virtual loop:  sleep(5) wake                        (loop.time() advanced by 5)

The clock moves only when nothing is ready to run, no I/O is ready, and no work handed to
an executor (``asyncio.to_thread``, ``run_in_executor``) is pending: then it jumps to the
next scheduled timer. Callbacks therefore run in the order of their virtual deadlines,
which makes timing tests deterministic. Sockets served by another thread or process are
not waited for: a test that talks to a real server should not rely on virtual time.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = ["VirtualTimeLoop", "run_with_virtual_time"]

T = TypeVar("T")

_SelectResult = list[tuple[selectors.SelectorKey, int]]


class _IdleJumpSelector(selectors.BaseSelector):
    """A selector that advances the loop's virtual clock instead of sleeping on timers."""

    def __init__(self, loop_time: Callable[[float], None], busy: Callable[[], bool]) -> None:
        self._real = selectors.DefaultSelector()
        self._advance = loop_time
        self._busy = busy

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> _SelectResult:
        if timeout is not None and timeout <= 0:
            return self._real.select(0)
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None or self._busy():
            # nothing is scheduled, or a thread is working: wait for real events
            return self._real.select(None if self._busy() else timeout)
        self._advance(timeout)  # idle until the next timer: jump to it
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop with a virtual clock that jumps to the next timer when idle.

    Example:
        >>> async def main() -> float:
        ...     loop = asyncio.get_running_loop()
        ...     start = loop.time()
        ...     await asyncio.sleep(600)
        ...     return loop.time() - start
        >>> run_with_virtual_time(main())  # returns at once
        600.0
    """

    def __init__(self, start: float = 0.0) -> None:
        """Create the loop with its virtual clock at ``start`` seconds."""
        self._now = start
        self._executor_jobs = 0
        super().__init__(_IdleJumpSelector(self._advance, self._executor_busy))

    def time(self) -> float:
        """The virtual time, in seconds."""
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds

    def _executor_busy(self) -> bool:
        return self._executor_jobs > 0

    def run_in_executor(
        self, executor: Executor | None, func: Callable[..., T], *args: object
    ) -> asyncio.Future[T]:
        """Run ``func`` in an executor; virtual time stands still until it returns."""
        future = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)
        return future

    def _executor_job_done(self, _future: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1


def run_with_virtual_time(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run ``main`` to completion on a new :class:`VirtualTimeLoop`, like ``asyncio.run``.

    Args:
        main: The coroutine to run.
        start: The virtual time the clock starts at.

    Returns:
        What ``main`` returns.
    """
    loop = VirtualTimeLoop(start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
