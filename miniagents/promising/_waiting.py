"""A consumer's wait on a stream: for its next piece or its end, and the wake-up.

A consumer that has read every piece recorded so far waits for a change: a future of the
stream's loop, which the record resolves when a piece or the end arrives (:func:`wake`).
Each wait parks its task in the deadlock watch (:mod:`miniagents.promising._deadlock`),
saying what it waits on (the stream, whose producer can end the wait), and counts as a
consumer of the stream until its task runs again (:mod:`miniagents.promising._giving_up`):
a wait cancelled gives up. A stream belongs to the loop it started in: a wait in another
loop fails with :class:`StreamLoopError`::

    producer:   --a---------b--|
    consumer:   --a--(wait)-b--(wait)|

The waits for the end (:func:`await_done`, a bystander's :func:`await_end`, the producer's
own :func:`await_needed`) and for the whole (:func:`acollect`) are loops of such waits.

These are functions over a core (a :class:`Waited`, what they read of it): the core keeps
them as its methods (``core.await_change()``, ...), for the layers above; inside this
package they are called as functions.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol, TypeVar

from miniagents.promising._deadlock import _Watch, park_in, unpark_in, watch_of
from miniagents.promising._giving_up import Consumed, check_abandoned
from miniagents.promising._run_first import leaders
from miniagents.promising.errors import StreamLoopError

__all__ = [
    "Waited",
    "acollect",
    "await_change",
    "await_done",
    "await_end",
    "await_needed",
    "end_wait",
    "handoffs",
    "wait_change",
    "waiting_for",
    "wake",
]

T = TypeVar("T")

_A_PIECE = "a piece of a stream"
"""What a consumer of a stream without a flow (a message's tokens) waits for, when reported."""


class Waited(Consumed, Protocol[T]):
    """What a wait reads of a core (a :class:`~miniagents.promising._replay.ReplayCore`).

    A protocol, so that the core (which keeps these functions as its methods) and this
    module do not import each other.
    """

    started: bool
    _watch: _Watch | None  # the deadlock watch of the loop its consumers wait in
    # the futures of the waits for a change: one, or a list of them (most streams have
    # one consumer: no list then), None when nobody waits
    _waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None
    _reader_waits: bool  # an ``async for`` reader is among the waiters (see handoffs)

    def start(self) -> None:
        """Start following the source (once)."""
        ...

    def raise_if_failed(self) -> None:
        """Re-raise the stream's error, if it failed."""
        ...

    def record(self) -> list[T]:
        """Every piece kept."""
        ...

    def _waiting_for(self) -> str:
        """What a wait for its next piece waits for (see :func:`waiting_for`)."""
        ...


class _Handoffs:
    """How many times a waiting ``async for`` reader has been woken by a new piece or the end.

    One for the process (see :func:`handoffs`).
    """

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_handoffs = _Handoffs()


def handoffs() -> int:
    """How many times, so far, a piece or an end woke an ``async for`` reader that waited for it.

    A producer that runs in a task of its own and whose source hands it many pieces without
    suspending (an SDK stream parsing the events of one network read) compares this count
    before and after adding a piece: if it changed, a reader is ready to run, and the
    producer lets it (``await asyncio.sleep(0)``) before the next piece, so that the reader
    sees the piece now rather than after the whole burst. The count covers every core of
    the process (a piece forwarded into other streams may wake their readers too); a change
    caused elsewhere only makes a producer yield once more than needed.
    """
    return _handoffs.count


def wake(core: Waited[Any]) -> None:
    """Resolve the waits for a change of ``core`` (a piece or the end has arrived)."""
    if core._reader_waits:
        core._reader_waits = False
        _handoffs.count += 1
    waiters = core._waiters
    if waiters is None:
        return
    first = None
    if leaders:  # the waking task may lead (RunFirst.lead): its wake-ups run next
        with contextlib.suppress(RuntimeError):  # (no loop on this thread: no task leads)
            task = asyncio.current_task()
            first = None if task is None else leaders.get(task)
    mark = 0 if first is None else len(first.ready)
    if isinstance(waiters, list):
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        # a list is kept for the next waits (setting a result runs no callback here, so
        # none was added meanwhile); an ended stream has no next wait
        if core.done:
            core._waiters = None
        else:
            waiters.clear()
    else:  # one waiter (setting its result runs no callback here: none is added)
        core._waiters = None
        if not waiters.done():
            waiters.set_result(None)
    if first is not None and len(first.ready) != mark:
        first.to_front(mark)


async def await_change(core: Waited[Any], reader: bool = False) -> None:
    """Wait until a piece arrives or the stream ends (the caller has started the core).

    ``reader``: the caller is an ``async for`` reader that takes the next piece as soon
    as it comes (it counts in :func:`handoffs` when woken); an ``await`` of the whole
    is not one. A hot reader may wait without this coroutine, as it does: see
    :func:`wait_change`.
    """
    waiter, task = wait_change(core, reader)
    try:
        await waiter
    except BaseException as error:
        end_wait(core, task, error)
        raise
    end_wait(core, task, None)


def wait_change(
    core: Waited[Any], reader: bool = False
) -> tuple[asyncio.Future[None], asyncio.Task[Any] | None]:
    """Start a wait for the next piece or the end: the future to ``await``, and the task.

    The caller awaits the future, then calls :func:`end_wait` with the task and the error
    the ``await`` raised (``None`` if it raised none), as :func:`await_change` does.
    """
    loop = core.loop
    if loop is None:
        loop = asyncio.get_running_loop()
    elif core._watch is None:  # its first wait: in the loop it started in? (later
        _check_loop(core, loop)  # waits elsewhere fail below, or at the await: end_wait)
    waiter = loop.create_future()
    waiters = core._waiters
    if waiters is None:  # the one consumer waiting (most streams' case: no list)
        core._waiters = waiter
    elif isinstance(waiters, list):
        waiters.append(waiter)
    else:
        core._waiters = [waiters, waiter]
    if reader:
        core._reader_waits = True
    watch = core._watch  # looked up once per stream and loop, not once per wait
    if watch is None or watch.loop_ref() is not loop:
        watch = core._watch = watch_of(loop)
    flow = core.flow  # (a message's tokens: the sentence itself, no bound method)
    try:
        task = park_in(watch, _A_PIECE if flow is None else core._waiting_for, waiter, core)
    except RuntimeError:  # its loop is closed (its check could not be armed): another's?
        _check_loop(core, loop)
        raise
    # Counted until this consumer runs again: a consumer woken by a piece is not waiting
    # any more, but it has not given up either (another one's giving up, between the
    # wake-up and its turn, must not cancel the stream under it).
    core._waiting += 1
    return waiter, task


def _check_loop(core: Waited[Any], loop: asyncio.AbstractEventLoop) -> None:
    """Refuse a wait in another event loop than ``loop``, the one the stream started in.

    Raises:
        StreamLoopError: naming the fix.
    """
    if asyncio.get_running_loop() is loop:
        return
    what = "this stream" if core.flow is None else core.flow.what
    raise StreamLoopError(
        f"{what[:1].upper()}{what[1:]} started in another "
        f"event loop ({'closed by now' if loop.is_closed() else 'still running'}) than the "
        "one that reads it. A stream belongs to the loop it started in, and each "
        "asyncio.run() makes a new loop: make the stream (and call its agents) in the "
        "loop that reads it, e.g. inside the same asyncio.run(main())."
    )


def end_wait(
    core: Waited[Any], task: asyncio.Task[Any] | None, error: BaseException | None
) -> None:
    """End a wait that :func:`wait_change` started; ``error`` is what its ``await`` raised.

    A cancelled wait gives up: if it was the stream's last consumer, the stream is
    abandoned (see :func:`~miniagents.promising._giving_up.check_abandoned`).

    Raises:
        StreamLoopError: if the wait failed because it ran in another event loop than
            the stream's.
    """
    core._waiting -= 1
    if task is not None and core._watch is not None:
        unpark_in(core._watch, task)
    if isinstance(error, asyncio.CancelledError):
        check_abandoned(core)
    elif error is not None and isinstance(error, RuntimeError) and core.loop is not None:
        _check_loop(core, core.loop)  # a future of the stream's loop, awaited in another


def waiting_for(core: Waited[Any]) -> str:
    """What a wait for the next piece of ``core`` waits for, as the deadlock watch says it."""
    flow = core.flow
    return f"a piece of {flow.what if flow is not None else 'a stream'}"


async def await_done(core: Waited[Any]) -> None:
    """Wait for the end of the stream (starting it if needed), raising nothing."""
    while not core.done:
        if core.started:
            await await_change(core)
        else:
            core.start()  # a synchronous source may finish right here


async def await_end(core: Waited[Any]) -> None:
    """Wait for the end of a started stream as a bystander, raising nothing.

    A bystander (a context waiting at its exit for the streams it started) is no
    consumer: when every consumer has given up, the stream is given up on though the
    bystander waits (see :func:`~miniagents.promising._giving_up.check_abandoned`).
    """
    core._bystanders += 1
    try:
        while not core.done:
            await await_change(core)
    finally:
        core._bystanders -= 1


async def await_needed(core: Waited[Any]) -> None:
    """Wait for the end of the stream as the producer of its first holder, which needs it.

    The first holder is the first stream of ``wanted_by`` (an agent's replies, for a
    message the agent replied with and needs to go on: a tool's result, which the agent
    waits for). The wait keeps this stream going only while that holder is consumed:
    when every other consumer of this stream has given up and nobody consumes the
    holder, the holder is abandoned (see
    :func:`~miniagents.promising._giving_up.check_abandoned`), which cancels the waiting
    producer and, with its wait, this stream. Without a holder it is :func:`await_done`.
    """
    if core.done:
        return  # (a finished core may be a shared, read-only one)
    core._needing += 1
    try:
        await await_done(core)
    finally:
        core._needing -= 1


async def acollect(core: Waited[T], gate: Waited[Any] | None = None) -> list[T]:
    """Wait for the end of the stream; return every piece or raise its error.

    ``gate``: the caller is an agent awaiting its whole input through its view (gated by its
    replies): the hold of its input from the interaction's start ends, this wait needing
    every piece itself (see ``Flow.let_go_reader``).

    Raises:
        ReplayWindowError: if the stream has released pieces (past its replay window).
    """
    flow = core.flow
    if flow is None:
        await await_done(core)
        core.raise_if_failed()
        return core.record()
    if flow.settle(core):
        raise flow.released_error(core)
    flow.pins += 1  # an await of the whole needs every piece, and reads them all at once
    if gate is not None and flow.queued:
        flow.let_go_reader(core, gate)
    if flow.blocked:
        flow.recheck(core)
    try:
        await await_done(core)
    finally:
        flow.pins -= 1
    core.raise_if_failed()
    flow.delivered = core.base + len(core.pieces)
    return list(core.pieces)
