"""A per-agent concurrency limit: at most N interactions run at once, the others wait in order.

A :class:`ConcurrencyLimit` is shared by an agent and the forks and bindings made from it
(unless they set their own limit), and holds one :class:`_Slots` per event loop (asyncio
futures belong to one loop, and an agent may be used by several ``asyncio.run`` calls).

Waiters are served first come, first served; a slot that frees up is handed to the next
waiter directly, so no newcomer can take it in between and the limit is never exceeded. A
waiter that is cancelled leaves the queue, or, if a slot was handed to it in the same step,
hands the slot on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import Any

from miniagents.arguments import check_count
from miniagents.miniagents.errors import ConcurrencyLimitError
from miniagents.promising.lowlevel import park, unpark

__all__ = ["ConcurrencyLimit"]


class _Slots:
    """The slots of one limit on one event loop."""

    __slots__ = ("busy", "holders", "limit", "loop", "waiters")

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        self.limit = limit
        self.loop = loop
        self.busy = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        # the tasks that hold a slot (for the deadlock watch: they end a wait for one)
        self.holders: set[asyncio.Task[Any]] = set()

    async def acquire(self) -> None:
        if self.busy < self.limit and not self.waiters:
            self.busy += 1
            self._hold()
            return
        waiter = self.loop.create_future()
        self.waiters.append(waiter)
        task = park(self._waiting_for, waiter, on=self)
        try:
            await waiter  # the slot is handed over by release(): busy stays the same
        except BaseException:  # cancelled, or a DeadlockError
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed a slot in the same step: pass it on
            elif waiter in self.waiters:
                self.waiters.remove(waiter)
            raise
        finally:
            unpark(task)
        self._hold()

    def _hold(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.holders.add(task)

    def producers(self) -> tuple[object, ...]:
        """Who can end a wait for a slot (for the deadlock watch): the tasks holding one.

        (``None`` among them for a slot held outside a task, which the watch cannot follow.)
        """
        holders = tuple(self.holders)
        return holders if len(holders) >= self.busy else (*holders, None)

    def _waiting_for(self) -> str:
        return f"a slot of a concurrency limit of {self.limit} (all {self.busy} are taken)"

    def release(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.holders.discard(task)
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1


class ConcurrencyLimit:
    """At most ``limit`` interactions of the agents sharing it run at once.

    Use it as ``async with limit:`` around one interaction (or :meth:`acquire`, then
    :meth:`release` in a ``finally``).
    """

    __slots__ = ("_slots", "limit")

    def __init__(self, limit: int) -> None:
        """Check ``limit``.

        Raises:
            ConcurrencyLimitError: if ``limit`` is not a positive int.
        """
        fix = "Pass e.g. max_concurrency=4, or None for no limit."
        self.limit = check_count(limit, "max_concurrency", fix=fix, error=ConcurrencyLimitError)
        self._slots: _Slots | None = None

    def _current(self) -> _Slots:
        loop = asyncio.get_running_loop()
        slots = self._slots
        if slots is None or slots.loop is not loop:
            slots = self._slots = _Slots(self.limit, loop)
        return slots

    @property
    def running(self) -> int:
        """How many interactions hold a slot now (on the running loop)."""
        slots = self._slots
        return 0 if slots is None else slots.busy

    async def acquire(self) -> None:
        """Wait for a slot, first come, first served; give it back with :meth:`release`.

        ``async with limit:`` does both. (An agent's run takes its slot so: a bound
        ``__aexit__`` would be one more object held while the interaction runs.)
        """
        await self._current().acquire()

    def release(self) -> None:
        """Give back the slot :meth:`acquire` took (on the same event loop)."""
        self._current().release()

    async def __aenter__(self) -> None:
        await self._current().acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._current().release()
