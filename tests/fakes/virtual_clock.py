"""A virtual clock for the running asyncio loop: waiting takes no real time.

While no callback is ready and no I/O is pending, the loop jumps its clock to its next
timer instead of sleeping until it. So ``asyncio.sleep(60)`` returns at once, timers fire in
the order of their virtual times, and a test of timing (a delay, a timeout) gives the same
result on a fast machine and on a loaded one::

    async def test_something(virtual_clock: VirtualClock) -> None:
        await asyncio.sleep(60)
        assert virtual_clock.elapsed == 60

Only for code without real I/O: data from a socket arrives at a virtual time nobody can
tell (the fake LLM server runs on real time).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["VirtualClock", "virtual_time"]


class VirtualClock:
    """The virtual time of a loop (see :func:`virtual_time`)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start

    def time(self) -> float:
        """The loop's time: what ``loop.time()`` returns while the clock is installed."""
        return self.now

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was installed."""
        return self.now - self.start


class _JumpingSelector:
    """The loop's selector, which jumps the clock instead of waiting for a timer."""

    def __init__(self, selector: selectors.BaseSelector, clock: VirtualClock) -> None:
        self._selector = selector
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._selector.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None:  # no timer at all: only I/O (e.g. a thread) can wake the loop
            return self._selector.select(None)
        self._clock.now += timeout
        return []

    def __getattr__(self, name: str) -> object:
        return getattr(self._selector, name)


@contextmanager
def virtual_time() -> Iterator[VirtualClock]:
    """Run the current loop on a virtual clock inside the ``with`` block."""
    loop = asyncio.get_running_loop()
    selector = getattr(loop, "_selector", None)
    if selector is None:
        raise RuntimeError(f"virtual_time() needs a selector event loop, not {loop!r}")
    clock = VirtualClock(loop.time())
    loop.time = clock.time  # type: ignore[method-assign]
    setattr(loop, "_selector", _JumpingSelector(selector, clock))  # noqa: B010
    try:
        yield clock
    finally:
        setattr(loop, "_selector", selector)  # noqa: B010
        del loop.time
