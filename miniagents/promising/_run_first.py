"""``RunFirst``: what a producer's piece woke runs next, and the producer right after it.

A producer that runs in a task of its own and whose source gives it many pieces without
suspending (an SDK parsing the events of one network read) hands each piece to a reader in
another task. The reader's wake-up goes to the back of the loop's ready queue, behind every
task woken before it: with 1,000 concurrent calls, behind the other calls' network reads.
So either the producer waits there too (``await asyncio.sleep(0)``) and every call parks
half-way through its read, holding it (memory), or it goes on and its reader sees the first
piece only after the other calls' reads (latency).

``RunFirst`` puts the wake-ups a piece caused at the front of the queue, and, when the
producer yields to let them run, its own resumption right after them. The reader sees the
piece at once, and the producer goes on with its read before any other task runs: the
calls' reads are parsed one after another, in the order they came, as the raw SDK's own
loops parse them::

    ready queue, producer A yields:   [B wakes, C wakes, reader A]            (FIFO)
    with RunFirst:                    [reader A, A resumes, B wakes, C wakes]

A wait for anything else (a network read) still goes to the back, so a producer jumps the
queue only between two waits of its own source.

A producer that *leads* (:meth:`RunFirst.lead`) needs no work per piece: a stream it feeds
moves the readers it wakes to the front itself, when it wakes them (a piece that wakes no
one, most of a burst, costs nothing more).

It needs the ready queue of asyncio's own event loop (its ``_ready`` deque, which asyncio has
kept since Python 3.4; a test checks that it still is one). :func:`run_first` gives ``None``
on any other loop (uvloop), where a producer yields as before (``asyncio.sleep(0)``). A
callback that another thread schedules at the same moment (``call_soon_threadsafe``) can at
worst be moved along or leave the order first in, first out: nothing is lost or run twice,
since handles are only moved within the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

__all__ = ["RunFirst", "leaders", "run_first"]

leaders: dict[asyncio.Task[Any], RunFirst] = {}
"""The producers that lead (:meth:`RunFirst.lead`), by their task: what the streams read when
they wake a reader."""


class RunFirst:
    """The front of one loop's ready queue, as one producer uses it.

    Make one per stream with :func:`run_first`, and :meth:`lead` while the stream is fed
    from the current task (or, per piece: read :attr:`ready`'s length before handing the
    piece over; if it grew, call :meth:`to_front` with the length read). To let what was
    moved run, ``await`` :meth:`await_handover` (the hand-over).

    Attributes:
        loop: The event loop.
        ready: The loop's ready queue (read its length per piece: a plain ``len``).
    """

    __slots__ = ("_front", "_last", "loop", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop, ready: deque[Any]) -> None:
        self.loop = loop
        self.ready = ready
        self._front = 0  # how many of the first handles are ours (moved since the last yield)
        self._last: object = None  # the last of them, to tell that they are still there

    def lead(self) -> None:
        """Until :meth:`release`, what the current task wakes on a stream runs next.

        A stream that wakes a reader waiting for a piece (or its end) moves the reader's
        wake-up to the front when the waking task leads: the producer hands its pieces
        over as usual, with no check per piece.

        Call :meth:`release` in a ``finally``: a task that leads is kept (in ``leaders``)
        until it releases, even after it has ended.
        """
        task = asyncio.current_task(self.loop)
        if task is not None:
            leaders[task] = self

    def release(self) -> None:
        """End :meth:`lead`: the current task's wake-ups go to the back again."""
        task = asyncio.current_task(self.loop)
        if task is not None and leaders.get(task) is self:
            del leaders[task]

    def _ours(self) -> int:
        """How many of the queue's first handles this producer moved there and are still there.

        The loop may have run them since (the producer's source waited): then none.
        """
        front = self._front
        if front and (front > len(self.ready) or self.ready[front - 1] is not self._last):
            front = self._front = 0
        return front

    def to_front(self, mark: int) -> None:
        """Move the handles scheduled since the queue was ``mark`` long to its front.

        They go after the ones this producer moved before (still waiting), in the order they
        were scheduled.
        """
        ready = self.ready
        front = self._ours()
        moved = len(ready) - mark
        for _ in range(moved):  # the newest first, each inserted at the same place
            ready.insert(front, ready.pop())
        self._front = front + moved
        self._last = ready[front + moved - 1]

    async def await_handover(self) -> None:
        """Suspend until the handles moved to the front have run; resume right after them."""
        loop, ready = self.loop, self.ready
        front = self._ours()
        waiter = loop.create_future()
        loop.call_soon(_resume_first, waiter, ready)
        ready.insert(front, ready.pop())  # after the moved ones, before everything else
        self._front = 0
        self._last = None
        await waiter


def _resume_first(waiter: asyncio.Future[None], ready: deque[Any]) -> None:
    """Wake the producer that waits on ``waiter``, ahead of everything else in the queue."""
    if waiter.done():  # cancelled meanwhile: its task is woken by the cancellation
        return
    before = len(ready)
    waiter.set_result(None)
    if len(ready) == before + 1:  # the task's wake-up (its only callback)
        ready.appendleft(ready.pop())


def run_first(loop: asyncio.AbstractEventLoop | None = None) -> RunFirst | None:
    """A :class:`RunFirst` for ``loop`` (the running one), or ``None`` if it has no usable queue.

    Only asyncio's own event loops (``BaseEventLoop``) keep their ready callbacks in a deque
    that can be reordered; on any other loop this is ``None``.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None) if isinstance(loop, asyncio.BaseEventLoop) else None
    return RunFirst(loop, ready) if type(ready) is deque else None
