"""``StallWatch``: stop a task that waits too long for the next event of a stream.

Cheap per event: :meth:`StallWatch.alive` only moves a deadline; one timer checks it when
it falls due and, if no event came meanwhile, cancels the task. Leaving the ``with`` block
(or :meth:`StallWatch.end`), that cancellation (and only that one: not a cancellation by
someone else) becomes the error given.

:func:`stall_watched` watches a stream in whichever task reads it (in a durable run, the
step that records an LLM call's events, so that a stall is the call's recorded outcome
like any other error of the call). A live call's turn reads its events in the agent's
task and keeps the watch in its own loop (``start``, the deadline moved per event,
``end``), with no layer around the events::

    reader task:  anext ... event | (reader's own work) | anext ........ X  the error, raised
    timer:                  deadline moved              deadline passed: cancel the reader
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TypeVar, overload

from miniagents.ext.llm._gate import waits_in_line
from miniagents.promising.errors import MiniAgentsError

__all__ = ["StallWatch", "stall_watched"]

T = TypeVar("T")


class StallWatch:
    """Within its ``with`` block, cancel the current task after ``timeout`` seconds of silence.

    A reader that takes the events itself moves :attr:`deadline` per event (what
    :meth:`alive` does, without the call): ``watch.deadline = loop.time() + timeout``.

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
        "_handle",
        "_loop",
        "_task",
        "deadline",
        "timeout",
        "waiting",
    )

    def __init__(self, timeout: float | None, error: Callable[[], MiniAgentsError]) -> None:
        self.timeout = timeout
        self._error = error
        self._expired = False
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[object] | None = None
        self.deadline = 0.0
        self.waiting = True

    def __enter__(self) -> StallWatch:
        self.start()
        return self

    def start(self) -> None:
        """Start watching the current task (what entering the ``with`` block does)."""
        if self.timeout is not None:
            loop = self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            self.deadline = loop.time() + self.timeout
            self._handle = loop.call_at(self.deadline, self._check)

    def alive(self) -> None:
        """An event came: the next one has ``timeout`` seconds from now."""
        if self._loop is not None and self.timeout is not None:
            self.deadline = self._loop.time() + self.timeout

    def _check(self) -> None:
        assert self._loop is not None
        if not self.waiting or (self._task is not None and waits_in_line(self._task)):
            self.alive()  # the reader holds the stream, or it waits for its turn to parse
            # what has come (``_gate``): not the model's silence, so it has more time
        if self._loop.time() < self.deadline:  # an event came since the timer was set
            self._handle = self._loop.call_at(self.deadline, self._check)
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
        error = self.end(exc)
        if error is not exc and error is not None:
            raise error from None

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
            stall's own error, to be raised instead ``from None``.
        """
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and isinstance(error, asyncio.CancelledError) and self._only_ours():
            return self._error()
        return error

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
            loop, timeout = asyncio.get_running_loop(), watch.timeout
            assert timeout is not None  # (stall_watched gives no watch without one)
            while True:
                watch.waiting = True
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                finally:
                    watch.waiting = False
                watch.deadline = loop.time() + timeout  # alive(), inline: this runs per event
                yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
