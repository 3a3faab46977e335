"""Virtual clocks for the running asyncio loop: timing tests that do not depend on speed.

:func:`virtual_time`: while no callback is ready and no I/O is pending, the loop jumps its
clock to its next timer instead of sleeping until it. So ``asyncio.sleep(60)`` returns at
once, timers fire in the order of their virtual times, and a test of timing (a delay, a
timeout) gives the same result on a fast machine and on a loaded one::

    async def test_something(virtual_clock: VirtualClock) -> None:
        await asyncio.sleep(60)
        assert virtual_clock.elapsed == 60

Only for code without real I/O: data from a socket arrives at a virtual time nobody can
tell (the fake LLM server runs on real time). For that, :func:`manual_time` stops the clock:
I/O goes on, and timers fire only when the test moves the clock on (``clock.advance(...)``),
after it has seen what it waited for (e.g. a request reaching the fake server). Nothing that
waits on the loop's clock (``asyncio.sleep``, ``wait_for``) ends meanwhile: wait for the
fake server from a thread (``asyncio.to_thread(server.wait_disconnected, 0)``).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["VirtualClock", "manual_time", "virtual_time"]


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

    def advance(self, seconds: float) -> None:
        """Move the clock on (the timers now due fire at the loop's next step)."""
        self.now += seconds


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


@contextmanager
def manual_time() -> Iterator[VirtualClock]:
    """Stop the current loop's clock inside the ``with`` block: it moves only by ``advance``."""
    loop = asyncio.get_running_loop()
    clock = VirtualClock(loop.time())
    loop.time = clock.time  # type: ignore[method-assign]
    try:
        yield clock
    finally:
        del loop.time
