"""``InTurn``: an LLM reply's events taken in turn, so that a burst is parsed call by call.

It is what ``MiniAgents(llm_parse_in_turn=True)`` puts around each reply's
events on an event loop whose ready queue cannot be reordered (uvloop). On asyncio's own
loop a burst is parsed in turn without it, by the order of the loop's ready queue
(:func:`~miniagents.promising.lowlevel.run_first`, see ``_turn._HANDOFF_EVERY``), which
costs no wrapper around each event.

When many calls' replies arrive in one pass of the event loop, every call's task wakes with
a network read to parse. A task hands its first token to its reader and lets the reader run
(``asyncio.sleep(0)``, see ``_turn._HANDOFF_EVERY``); but asyncio's ready queue is first in,
first out, so before that reader runs, every other woken task parses its own read up to its
first token and parks there too, each holding its half-parsed read (the SDK's copies of its
bytes). With 1,000 calls that is two to three times the raw SDK's memory, and the price of
first tokens that come sooner than the raw SDK's.

In turn, there is one gate per event loop. A task that resumes inside the SDK after a wait
(a network read, a timer) takes the gate before the SDK goes on; it keeps it while it parses
and hands over tokens, and passes it on at its next wait, or when its stream ends. A task
that finds the gate taken waits in line, its read not parsed yet. So a burst is parsed one
call at a time, as the raw SDK's own ``async for`` loops do, and each reader still sees its
first token right after the SDK parsed it::

    task A:   wakes | takes it, parses, token 1 to reader | sleep(0) | the rest | waits: passes it
    task B:   wakes | in line ...................................................| takes it, parses
    reader A:                                                 | token 1 |          | the rest

The gate is held only between two waits of the same stream, and across the one loop pass of
a handoff (the turn's body between two events never waits otherwise), so no one waits in
line for longer than the parses of the calls before it, and a wait for anything else never
holds it. A call's stall watch (``_stall``) does not count its time in line as the model's
silence (:func:`waits_in_line`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import AsyncIterator, Generator
from typing import Any, Generic, TypeVar

__all__ = ["InTurn", "waits_in_line"]

T = TypeVar("T")

_RUNNING = 0
"""A step of the stream runs (or is about to): the task holds the gate, or needs none yet."""
_AWAY = 1
"""The stream waits for something (the network): the task holds no gate."""
_IN_LINE = 2
"""The stream's wait ended and the task waits for the gate."""


class _Gate:
    """Who parses now on one event loop, and who waits in line (and in which tasks)."""

    __slots__ = ("holder", "line", "tasks")

    def __init__(self) -> None:
        self.holder: InTurn[Any] | None = None
        self.line: deque[tuple[InTurn[Any], asyncio.Future[None]]] = deque()
        self.tasks: set[asyncio.Task[Any] | None] = set()
        """The tasks in line (for :func:`waits_in_line`)."""

    def pass_on(self) -> None:
        """The holder is done: give the gate to the first one in line still waiting."""
        self.holder = None
        line = self.line
        while line:
            stream, waiting = line.popleft()
            if not waiting.done():  # else cancelled: its task left
                self.holder = stream
                self.tasks.discard(stream._driver)
                waiting.set_result(None)
                return


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gate] = weakref.WeakKeyDictionary()


def waits_in_line(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` waits in line for its loop's gate: its stream's own wait has ended.

    A stall watch asks it, so that the time a call spends in line (behind other calls'
    parsing) is not taken for a model that has gone silent.
    """
    gate = _gates.get(task.get_loop())
    return gate is not None and task in gate.tasks


class InTurn(Generic[T]):
    """An async iterator's events, each step resumed after a wait only in its turn.

    ``async for event in InTurn(events)`` gives the events of ``events``, except that a step
    of ``events`` that resumes after a wait first takes its loop's gate (the module's
    docstring). It is its own awaitable for each step: the task drives the step through
    :meth:`send` and :meth:`throw`, which is how it sees each wait. Call :meth:`leave` when
    done with the stream (``finally``): it passes the gate on if this stream holds it.
    Closing ``events`` stays the caller's job.

    Args:
        events: The stream.
    """

    __slots__ = ("_driver", "_gate", "_next", "_state", "_step", "_waiting")

    def __init__(self, events: AsyncIterator[T]) -> None:
        self._next = events.__anext__
        loop = asyncio.get_running_loop()
        gate = _gates.get(loop)
        if gate is None:
            gate = _gates[loop] = _Gate()
        self._gate = gate
        self._step: Generator[Any, None, T] | None = None
        self._state = _RUNNING
        self._waiting: asyncio.Future[None] | None = None
        self._driver: asyncio.Task[Any] | None = None
        """The task driving the steps, kept once it waits in line (the gate's ``tasks``)."""

    def __aiter__(self) -> InTurn[T]:
        return self

    def __anext__(self) -> InTurn[T]:
        """The next step, to await (the next event, or ``StopAsyncIteration`` at the end)."""
        self._step = self._next().__await__()
        self._state = _RUNNING
        return self

    def __await__(self) -> Generator[Any, None, T]:
        return self  # type: ignore[return-value]  # an iterator with send, throw and close

    def __next__(self) -> Any:
        """Go on with the step (the task calls it): in turn after a wait, else at once."""
        if self._state:
            gate = self._gate
            if self._state == _AWAY:  # the stream's wait ended: parse in turn
                holder = gate.holder
                if holder is None:
                    gate.holder = self
                elif holder is not self:
                    waiting: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    gate.line.append((self, waiting))
                    self._driver = task = asyncio.current_task()
                    gate.tasks.add(task)
                    self._state = _IN_LINE
                    self._waiting = waiting
                    waiting._asyncio_future_blocking = True  # as `await waiting` yields it
                    return waiting
            self._state = _RUNNING  # _IN_LINE: the gate was handed over
        assert self._step is not None
        waited = self._step.send(None)  # an event: StopIteration(event), passed up
        return self._away(waited)

    def send(self, value: None) -> Any:
        """Go on with the step, as :meth:`__next__` (a task sends only ``None``)."""
        return self.__next__()

    def throw(self, error: Any, value: Any = None, traceback: Any = None) -> Any:
        """Throw into the step (the task cancelled while it waited, in the stream or in line)."""
        step = self._step
        assert step is not None
        self._leave_line()
        if value is None and traceback is None:
            return self._away(step.throw(error))
        return self._away(step.throw(error, value, traceback))

    def close(self) -> None:
        """Close the step (its task's coroutine is closed)."""
        self._leave_line()
        self.leave()
        if self._step is not None:
            self._step.close()

    def _leave_line(self) -> None:
        """Stop waiting for the gate, if in line and not handed it yet (pass_on skips it)."""
        if self._state == _IN_LINE and self._gate.holder is not self:
            assert self._waiting is not None
            self._waiting.cancel()  # (the task's cancellation has cancelled it already)
            self._gate.tasks.discard(self._driver)
            self._state = _AWAY

    def _away(self, waited: object) -> object:
        """The step waits for ``waited``: pass the gate on meanwhile."""
        if self._gate.holder is self:
            self._gate.pass_on()
        self._state = _AWAY
        return waited

    def leave(self) -> None:
        """Done with the stream: pass the gate on if this stream holds it."""
        if self._gate.holder is self:
            self._gate.pass_on()
