"""``StallWatch``: stop a task that waits too long for the next event of a stream.

Cheap per event: :meth:`StallWatch.alive` only moves a deadline; one timer checks it when
it falls due and, if no event came meanwhile, cancels the task. Leaving the ``with`` block,
that cancellation (and only that one: not a cancellation by someone else) becomes the
error given.

:func:`stall_watched` watches a stream in whichever task reads it (an LLM call's events
are read by the agent's task, or, in a durable run, by the step that records them, so
that a stall is the call's recorded outcome like any other error of the call)::

    reader task:  anext ... event | (reader's own work) | anext ........ X  the error, raised
    timer:                  deadline moved              deadline passed: cancel the reader
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TypeVar

from miniagents.ext.llm._gate import waits_in_line
from miniagents.promising.errors import MiniAgentsError

__all__ = ["StallWatch", "stall_watched"]

T = TypeVar("T")


class StallWatch:
    """Within its ``with`` block, cancel the current task after ``timeout`` seconds of silence.

    Args:
        timeout: The longest wait between two :meth:`alive` calls (``None``: no limit).
        error: Makes the error that replaces the cancellation when the wait was too long.
    """

    __slots__ = (
        "_deadline",
        "_error",
        "_expired",
        "_handle",
        "_loop",
        "_task",
        "_timeout",
        "waiting",
    )

    def __init__(self, timeout: float | None, error: Callable[[], MiniAgentsError]) -> None:
        self._timeout = timeout
        self._error = error
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self._deadline = 0.0
        self.waiting = True
        """Whether the task waits for the stream (else its reader holds it: no stall)."""

    def __enter__(self) -> StallWatch:
        if self._timeout is not None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self._deadline = self._loop.time() + self._timeout
            self._handle = self._loop.call_at(self._deadline, self._check)
        return self

    def alive(self) -> None:
        """An event came: the next one has ``timeout`` seconds from now."""
        if self._loop is not None and self._timeout is not None:
            self._deadline = self._loop.time() + self._timeout

    def _check(self) -> None:
        assert self._loop is not None
        if not self.waiting or (self._task is not None and waits_in_line(self._task)):
            self.alive()  # the reader holds the stream, or it waits for its turn to parse
            # what has come (``_gate``): not the model's silence, so it has more time
        if self._loop.time() < self._deadline:  # an event came since the timer was set
            self._handle = self._loop.call_at(self._deadline, self._check)
            return
        self._handle = None
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and isinstance(exc, asyncio.CancelledError) and self._only_ours():
            raise self._error() from None

    def _only_ours(self) -> bool:
        """Take back this watch's cancellation; whether no other one is pending."""
        if sys.version_info >= (3, 11) and self._task is not None:
            return self._task.uncancel() == 0
        return True  # Python 3.10 cannot tell: a stall it is


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
            assert watch._loop is not None  # entered with a timeout: the loop is known
            assert watch._timeout is not None
            clock, timeout = watch._loop.time, watch._timeout
            while True:
                watch.waiting = True
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                finally:
                    watch.waiting = False
                watch._deadline = clock() + timeout  # alive(), inline: this runs per event
                yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
