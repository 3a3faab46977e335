"""A consumer's wait on a stream: for its next piece or its end, and the wake-up.

A consumer that has read every piece recorded so far waits for a change: a future of the
stream's loop, which the record resolves when a piece or the end arrives
(:meth:`Waits.wake`). Each wait parks its task in the deadlock watch
(:mod:`miniagents.promising._deadlock`), saying what it waits on (the stream, whose producer
can end the wait), and counts as a consumer of the stream until its task runs again (see
:mod:`miniagents.promising._giving_up`): a wait cancelled gives up. A stream belongs to the
loop it started in: a wait in another loop fails with :class:`StreamLoopError`::

    producer:   --a---------b--|
    consumer:   --a--(wait)-b--(wait)|

A stream's :class:`Waits` (``core.waits``, made at its first wait) own all of it, the wait
for a change itself too (:meth:`Waits.change`, a core's ``await_change``). A core's waits for
its end and for its whole (``await_done``, ``acollect``), a bystander's (:func:`await_end`)
and its producer's own (:func:`await_needed`) are loops of such waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

from miniagents.promising._deadlock import _Watch, park_in, unpark_in, watch_of
from miniagents.promising._giving_up import Consumed, check_abandoned
from miniagents.promising._run_first import leaders
from miniagents.promising.errors import StreamLoopError

__all__ = ["Waited", "Waits", "await_end", "await_needed", "handoffs"]

_A_PIECE = "a piece of a stream"
"""What a consumer of a stream without a flow (a message's tokens) waits for, when reported."""


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


class Waited(Consumed, Protocol):
    """What a wait reads of a core (a :class:`~miniagents.promising._replay.ReplayCore`).

    A protocol, so that the core (which keeps its waits) and this module do not import each
    other. (Its ``flow``, if any, names the stream: ``what``, ``piece_wanted()``.)
    """

    @property
    def flow(self) -> Any: ...

    def get_waits(self) -> Waits: ...

    async def await_done(self) -> None: ...


class Waits:
    """The waits of one stream's consumers for its next change, and their wake-up."""

    __slots__ = ("bystanders", "futures", "needing", "reader", "waiting", "watch")

    def __init__(self) -> None:
        # the futures of the waits for a change: one, or a list of them (most streams have
        # one consumer: no list then), None when nobody waits
        self.futures: asyncio.Future[None] | list[asyncio.Future[None]] | None = None
        self.waiting = 0  # consumers inside a wait, woken ones that have not run yet too
        self.bystanders = 0  # of those: bystanders', which consume nothing (await_end)
        self.needing = 0  # of those: its producer's, which needs it (await_needed)
        self.reader = False  # an ``async for`` reader is among them (see handoffs)
        self.watch: _Watch | None = None  # the deadlock watch of the loop they wait in

    def wake(self, ended: bool) -> None:
        """Resolve the waits for a change (a piece or the end, if ``ended``, has arrived)."""
        if self.reader:
            self.reader = False
            _handoffs.count += 1
        futures = self.futures
        if futures is None:
            return
        first = None
        if leaders:  # the waking task may lead (RunFirst.lead): its wake-ups run next
            with contextlib.suppress(RuntimeError):  # (no loop on this thread: no task leads)
                task = asyncio.current_task()
                first = None if task is None else leaders.get(task)
        mark = 0 if first is None else len(first.ready)
        if isinstance(futures, list):
            for future in futures:
                if not future.done():
                    future.set_result(None)
            # a list is kept for the next waits (setting a result runs no callback here, so
            # none was added meanwhile); an ended stream has no next wait
            if ended:
                self.futures = None
            else:
                futures.clear()
        else:  # one waiter (setting its result runs no callback here: none is added)
            self.futures = None
            if not futures.done():
                futures.set_result(None)
        if first is not None and len(first.ready) != mark:
            first.to_front(mark)

    def start(
        self, core: Waited, reader: bool = False
    ) -> tuple[asyncio.Future[None], asyncio.Task[Any] | None]:
        """Start a wait for the next piece of ``core`` or its end: the future, and the task.

        The caller awaits the future, then calls :meth:`end` with the task and the error the
        ``await`` raised (``None`` if it raised none), as :meth:`change` does.
        ``reader``: the caller is an ``async for`` reader that takes the next piece as soon as
        it comes (it counts in :func:`handoffs` when woken).
        """
        loop = core.loop
        if loop is None:
            loop = asyncio.get_running_loop()
        elif self.watch is None:  # its first wait: in the loop it started in? (later
            _check_loop(core, loop)  # waits elsewhere fail below, or at the await: end)
        future = loop.create_future()
        futures = self.futures
        if futures is None:  # the one consumer waiting (most streams' case: no list)
            self.futures = future
        elif isinstance(futures, list):
            futures.append(future)
        else:
            self.futures = [futures, future]
        if reader:
            self.reader = True
        watch = self.watch  # looked up once per stream and loop, not once per wait
        if watch is None or watch.loop_ref() is not loop:
            watch = self.watch = watch_of(loop)
        flow = core.flow  # (a message's tokens: the sentence itself, no bound method)
        try:
            task = park_in(watch, _A_PIECE if flow is None else flow.piece_wanted, future, core)
        except RuntimeError:  # its loop is closed (its check could not be armed): another's?
            _check_loop(core, loop)
            raise
        # Counted until this consumer runs again: a consumer woken by a piece is not waiting
        # any more, but it has not given up either (another one's giving up, between the
        # wake-up and its turn, must not cancel the stream under it).
        self.waiting += 1
        return future, task

    def end(
        self, core: Waited, task: asyncio.Task[Any] | None, error: BaseException | None
    ) -> None:
        """End a wait that :meth:`start` started; ``error`` is what its ``await`` raised.

        A cancelled wait gives up: if it was the stream's last consumer, the stream is
        abandoned (see :func:`~miniagents.promising._giving_up.check_abandoned`).

        Raises:
            StreamLoopError: if the wait failed because it ran in another event loop than
                the stream's.
        """
        self.waiting -= 1
        if task is not None and self.watch is not None:
            unpark_in(self.watch, task)
        if isinstance(error, asyncio.CancelledError):
            check_abandoned(core)
        elif error is not None and isinstance(error, RuntimeError) and core.loop is not None:
            _check_loop(core, core.loop)  # a future of the stream's loop, awaited in another

    async def change(self, core: Waited, reader: bool = False) -> None:
        """Wait for the next piece of ``core`` or its end (``ReplayCore.await_change``): a
        wait that :meth:`start` starts and :meth:`end` ends."""
        future, task = self.start(core, reader)
        try:
            await future
        except BaseException as error:
            self.end(core, task, error)
            raise
        self.end(core, task, None)

    def consuming(self) -> bool:
        """Whether a consumer waits (a bystander consumes nothing)."""
        return self.waiting > self.bystanders

    def only_needed(self) -> bool:
        """Whether the producer of the stream's first holder is the only consumer waiting."""
        return bool(self.needing) and self.waiting - self.bystanders == self.needing


def _check_loop(core: Waited, loop: asyncio.AbstractEventLoop) -> None:
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


# -- the waits of a bystander and of a producer ----------------------------------------------


async def await_end(core: Waited) -> None:
    """Wait for the end of a started stream as a bystander, raising nothing.

    A bystander (a context waiting at its exit for the streams it started) is no
    consumer: when every consumer has given up, the stream is given up on though the
    bystander waits (see :func:`~miniagents.promising._giving_up.check_abandoned`).
    """
    if core.done:
        return  # (no wait: no waits made for it)
    waits = core.get_waits()
    waits.bystanders += 1
    try:
        while not core.done:
            await waits.change(core)
    finally:
        waits.bystanders -= 1


async def await_needed(core: Waited) -> None:
    """Wait for the end of the stream as the producer of its first holder, which needs it.

    The first holder is the first stream of ``wanted_by`` (an agent's replies, for a
    message the agent replied with and needs to go on: a tool's result, which the agent
    waits for). The wait keeps this stream going only while that holder is consumed:
    when every other consumer of this stream has given up and nobody consumes the
    holder, the holder is abandoned (see
    :func:`~miniagents.promising._giving_up.check_abandoned`), which cancels the waiting
    producer and, with its wait, this stream. Without a holder it is ``await_done``.
    """
    if core.done:
        return  # (a finished core may be a shared, read-only one)
    waits = core.get_waits()
    waits.needing += 1
    try:
        await core.await_done()
    finally:
        waits.needing -= 1
