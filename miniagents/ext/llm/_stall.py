"""``StallWatch``: stop a task that waits too long for the next event of a stream.

Cheap per event: :meth:`StallWatch.alive` only moves a deadline; one timer checks it when
it falls due and, if no event came meanwhile, cancels the task. Leaving the ``with`` block
(or :meth:`StallWatch.end`), that cancellation (and only that one: not a cancellation by
someone else) becomes the error given.

:func:`stall_watched` watches a stream in whichever task reads it (in a durable run, the
step that records an LLM call's events, so that a stall is the call's recorded outcome
like any other error of the call). A live call's turn reads its events in the agent's
task and keeps the watch in its own loop (``start``, ``alive`` per event, ``end``), with no
layer around the events::

    reader task:  anext ... event | (reader's own work) | anext ........ X  the error, raised
    timer:                  deadline moved              deadline passed: cancel the reader
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import weakref
from collections.abc import AsyncIterator, Callable
from math import inf
from types import TracebackType
from typing import TypeVar, overload

from miniagents.ext.llm._gate import waits_in_line
from miniagents.promising.errors import MiniAgentsError
from miniagents.promising.lowlevel import keeps_monotonic_time

__all__ = ["StallWatch", "stall_watched"]

T = TypeVar("T")


class StallWatch:
    """Within its ``with`` block, cancel the current task after ``timeout`` seconds of silence.

    A reader that takes the events itself calls :meth:`start`, :meth:`alive` per event
    and :meth:`end` instead of the block.

    Args:
        timeout: The longest wait between two :meth:`alive` calls (``None``: no limit).
        error: Makes the error that replaces the cancellation when the wait was too long.

    Attributes:
        timeout: The longest wait between two events; ``None``: the watch watches nothing.
        deadline: When the next event is due, on the loop's clock (inside the block).
        waiting: Whether the task waits for the stream (else its reader holds it: no stall).
    """

    __slots__ = (
        "_error",
        "_expired",
        "_loop",
        "_task",
        "_watches",
        "clock",
        "deadline",
        "timeout",
        "waiting",
    )

    def __init__(self, timeout: float | None, error: Callable[[], MiniAgentsError]) -> None:
        self.timeout = timeout
        self._error = error
        self._expired = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock: Callable[[], float] | None = None
        """Once started on asyncio's own loop, its clock: ``time.monotonic``, read directly
        (``None``: a loop with a clock of its own is asked, with ``loop.time()``)."""
        self._task: asyncio.Task[object] | None = None
        self._watches: _Watches | None = None  # the loop's, while it watches
        self.deadline = 0.0
        self.waiting = True

    def __enter__(self) -> StallWatch:
        self.start()
        return self

    def start(self) -> None:
        """Start watching the current task (what entering the ``with`` block does)."""
        if self.timeout is not None:
            loop = self._loop = asyncio.get_running_loop()
            if keeps_monotonic_time(loop):
                # read directly, a call fewer per event (a loop with a clock of its own is
                # asked; no bound method of it is kept, one object fewer per call)
                self.clock = time.monotonic
            self._task = asyncio.current_task()
            self.deadline = loop.time() + self.timeout
            watches = self._watches = _watches_of(loop)
            watches.add(self, loop)

    def alive(self) -> None:
        """An event came: the next one has ``timeout`` seconds from now."""
        timeout = self.timeout
        if timeout is not None:
            clock = self.clock
            if clock is not None:
                self.deadline = clock() + timeout
            elif self._loop is not None:
                self.deadline = self._loop.time() + timeout

    def _due(self, now: float) -> bool:
        """Whether the wait has lasted too long at ``now`` (the loop's timer asks)."""
        if not self.waiting or (self._task is not None and waits_in_line(self._task)):
            self.alive()  # the reader holds the stream, or it waits for its turn to parse
            # what has come (``_gate``): not the model's silence, so it has more time
        return now >= self.deadline

    def _expire(self) -> None:
        """Cancel the watched task: its wait lasted too long."""
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        error = self.end(exc)
        if error is not exc and error is not None:
            raise error from error.__cause__  # (not the cancellation: the stall's own, if any)

    @overload
    def end(self, error: BaseException) -> BaseException: ...

    @overload
    def end(self, error: None) -> None: ...

    def end(self, error: BaseException | None) -> BaseException | None:
        """Stop watching (what leaving the ``with`` block does); what to raise for ``error``.

        Args:
            error: What the watched code raised, if anything.

        Returns:
            ``error``, or, for the cancellation this watch made (and no other one), the
            stall's own error, to be raised instead, from its own ``__cause__`` (not from
            the cancellation).
        """
        watches = self._watches
        if watches is not None:
            self._watches = None
            watches.discard(self)
        if self._expired and isinstance(error, asyncio.CancelledError) and self._only_ours():
            return self._error()
        return error

    def _only_ours(self) -> bool:
        """Take back this watch's cancellation; whether no other one is pending."""
        if self._task is not None:
            return self._task.uncancel() == 0
        return True


class _Watches:
    """The running stall watches of one loop, and the one timer that checks them all.

    The timer is set at the earliest deadline of the watches (a watch that starts with an
    earlier one moves it); when it fires, it cancels the tasks of the watches that are
    due, in the order they started, and is set again at the earliest deadline left. So a
    watched call holds no timer of its own (a timer handle, its bound method and its
    context, for the collector to walk), and its stall is found at the same moment as with
    one. The timer goes when the last watch ends: an idle loop has no timer of it left.
    Kept by its loop in a ``WeakKeyDictionary``, it holds no reference to the loop but its
    timer's handle, and that only while a watch runs.
    """

    __slots__ = ("__weakref__", "empty", "handle", "watches", "when")

    def __init__(self) -> None:
        self.watches: dict[StallWatch, None] = {}  # in the order they started
        self.handle: asyncio.TimerHandle | None = None
        self.when = inf  # when the timer fires (inf: no timer)
        self.empty = contextvars.Context()  # the timer's (its loop's thread alone enters it)

    def add(self, watch: StallWatch, loop: asyncio.AbstractEventLoop) -> None:
        self.watches[watch] = None
        if watch.deadline < self.when:
            self._arm(loop, watch.deadline)

    def discard(self, watch: StallWatch) -> None:
        watches = self.watches
        watches.pop(watch, None)
        if not watches and self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.when = inf

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.when = when
        # (in a context of its own: a cancelled handle stays in the loop's queue until it is
        # due, and the context of the call that armed it, with its spans' watches, with it)
        self.handle = loop.call_at(when, self._check, context=self.empty)

    def _check(self) -> None:
        self.handle = None
        self.when = inf
        loop = asyncio.get_running_loop()  # (the timer's: it runs this)
        now = loop.time()
        watches = self.watches
        due = [watch for watch in watches if watch._due(now)]
        for watch in due:
            del watches[watch]
            watch._expire()
        if watches:
            self._arm(loop, min(watch.deadline for watch in watches))


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watches] = weakref.WeakKeyDictionary()


def _watches_of(loop: asyncio.AbstractEventLoop) -> _Watches:
    watches = _loops.get(loop)
    if watches is None:
        watches = _loops[loop] = _Watches()
    return watches


def stall_watched(
    events: AsyncIterator[T], timeout: float | None, error: Callable[[], MiniAgentsError]
) -> AsyncIterator[T]:
    """``events``, failed with ``error()`` once the next one takes more than ``timeout`` seconds.

    The wait is watched in the task that reads the stream, only while it waits for the next
    event (the reader's own work between two events is not the stream's stall); the stream
    is closed when the result is.
    """
    if timeout is None:
        return events
    return _watched(events, StallWatch(timeout, error))


async def _watched(events: AsyncIterator[T], watch: StallWatch) -> AsyncIterator[T]:
    try:
        with watch:  # entered in the task that reads: the one the watch cancels
            while True:
                watch.waiting = True
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                finally:
                    watch.waiting = False
                watch.alive()
                yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
