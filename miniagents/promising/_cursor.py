"""One ``async for`` consumer's position in a stream: the cursor of a replay core.

A cursor reads the record from the first piece. On a stream with a flow (see
:mod:`miniagents.promising._flow`) it is a *live consumer* while it exists: the pieces from
its position on are kept for it, and the producer runs no further than the high-water mark
ahead of the slowest cursor. A cursor may have a *gate*: another core (an agent's replies)
that must have room before the cursor takes its next piece; this is how an agent whose
replies are not being read waits at its next input pull::

    input:    -a-b-c-d-e-f-|
    replies:   -A-B-|          (HWM = 2: nobody reads them)
    the agent's loop takes a, b, then waits before c until a reply is read.

It owns its position, tells the stream's flow where it is, waits with the stream's waits,
and counts in its audience while it is between two pieces (a view cancelled on its own
moves its cursors to a copy of the record: :meth:`PieceIterator.move`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from miniagents.promising._giving_up import (
    Kept,
    add_reader,
    check_abandoned,
    recheck_closed,
    recheck_kept,
)
from miniagents.promising._replay import ReplayCore

__all__ = ["PieceIterator"]

T = TypeVar("T")


class PieceIterator(AsyncIterator[T]):
    """One consumer's position in a stream, from the first piece."""

    __slots__ = (
        "__weakref__",
        "_gate",
        "_owner",
        "_stream",
        "index",
        "kept",
        "quit",
        "task",
        "until",
        "waiting",
    )

    def __init__(
        self, owner: object, core: ReplayCore[T], gate: ReplayCore[Any] | None = None
    ) -> None:
        """Read ``core``, the core ``owner`` (a stream) shows, from its first piece."""
        self._owner = owner
        self._stream = core
        self._gate = gate
        self.index = 0
        self.until: int | None = None
        """Read on demand: the producer makes no more pieces than this for it (see
        :meth:`read_until`); ``None``: it may run the high-water mark ahead."""
        # as the stream counts it (see _giving_up.add_reader): a reader between two pieces
        # holds the stream (and the messages it holds) against another consumer giving up
        self.quit = False
        self.waiting = False
        self.kept: list[Kept] | None = None  # the streams it keeps from being given up on
        if not core.done or core.flow is not None:  # (a sequence's messages may stream on)
            add_reader(core, self)
        flow = core.flow
        if flow is None and (gate is not None or core.on_abandoned is None or core.done):
            if gate is None:  # nothing to check per piece
                self.__class__ = _PlainIterator
            return
        try:  # the task whose cancellation may unwind its loop (none: synchronous code)
            self.task = asyncio.current_task()
        except RuntimeError:
            self.task = None
        if flow is None:  # a producer to give up (an agent's streaming message): see __del__
            self.__class__ = _WatchedPlainIterator
            return
        self.__class__ = _FollowedIterator  # the stream follows it: uncount it when gone
        floor = flow.settle(core) if core.sent else 0  # (none sent yet: none released)
        if floor > flow.skipped:  # (what drop_oldest skipped before any reader: skipped too)
            self.index = -1  # too late: its first read raises ReplayWindowError
            self.quit = True  # (it will read nothing: it holds nothing for anyone)
        else:
            self.index = floor  # the first piece, or the oldest drop_oldest kept
            flow.add_cursor(self)
            if gate is not None and flow.queued:  # an agent's input it was held for
                flow.let_go_reader(core, gate)

    def __aiter__(self) -> PieceIterator[T]:
        return self

    async def __anext__(self) -> T:
        core = self._stream
        while True:
            index = self.index
            if index < core.sent:  # (every piece recorded: an iterator reads outside a delivery)
                offset = index - core.base
                if offset < 0 and core.flow is not None:  # released (past the window)
                    self.quit = True  # its loop ends here (it reads nothing more)
                    raise core.flow.released_error(core)
                gate = self._gate
                if gate is not None and not gate.has_room():
                    try:
                        await gate.await_room()
                    except BaseException as error:
                        self.quit = True  # its loop ends here (cancelled: it gave up)
                        if isinstance(error, asyncio.CancelledError):
                            check_abandoned(core)
                        raise
                else:
                    self.index = index + 1
                    flow = core.flow  # a producer waits: room may have come, unless this
                    if flow is not None and flow.blocked and index >= flow.room_at:  # read
                        flow.recheck(core)  # leaves the cursor where none can
                    # below base without a flow: the packed front of a record of str
                    return core.pieces[offset] if offset >= 0 else core.piece(index)
            elif core.done:
                self.quit = True  # read to the end
                if core.error is not None:
                    core.raise_if_failed()
                raise StopAsyncIteration
            elif core.started:
                await self._wait(core)
            else:
                core.start()  # a synchronous source may deliver pieces right here
            core = self._stream  # (moved to a copy meanwhile: a view cancelled on its own)

    async def _wait(self, core: ReplayCore[T]) -> None:
        """Wait for the next piece or the end, as a reader between two pieces (see ``quit``).

        The wait of ``ReplayCore.await_change``, made with the stream's waits' ``start`` and
        ``end`` so that the reader's state follows it: waiting while it waits, quit if it is
        cancelled (it gave up, unless it reads again).
        """
        waits = core.waits or core.get_waits()
        waiter, task = waits.start(core, reader=True)
        self.waiting, self.quit = True, False  # it reads on
        if task is not None:  # its reader now (the deadlock watch asks: see Flow.holders)
            self.task = task
        try:
            await waiter
        except BaseException as error:
            self.waiting = False
            self.quit = True  # its loop ends here (cancelled: it gave up)
            waits.end(core, task, error)
            raise
        self.waiting = False
        waits.end(core, task, None)

    def read_until(self, count: int) -> None:
        """Let the producer make ``count`` pieces in all for this iterator, and no more.

        From then on the iterator reads on demand: the producer waits (whatever the
        high-water mark) until the bound is raised past what it made; raising it wakes
        the producer. A hot source is not slowed: its overflow follows the high-water mark.
        """
        self.until = count
        core = self._stream
        if core.flow is not None:
            core.flow.read_on_demand(core)

    def move(self, owner: object, core: ReplayCore[T]) -> None:
        """Read ``core`` from now on, at the same place, if this iterator reads for ``owner``,
        a view cancelled on its own, which moves to ``core``, a finished copy of the record
        (which has a flow only if the stream had one: this is a followed iterator then)."""
        if self._owner is not owner:
            return
        old = self._stream
        if old.flow is not None:
            old.flow.drop_cursor(old, self)
        self._stream = core
        if not core.done or core.flow is not None:
            add_reader(core, self)
        if core.flow is not None and self.index >= core.flow.floor:
            core.flow.add_cursor(self)

    async def aclose(self) -> None:
        """Stop consuming: the stream no longer keeps pieces for this iterator, nor waits.

        If another consumer gave up on the stream while this iterator held it (between two
        pieces), the stream is given up on now, unless someone else still reads it.
        """
        core = self._stream
        if core.flow is not None:
            core.flow.drop_cursor(core, self)
        if not self.quit:
            self.quit = True
            recheck_closed(self)

    def watch_gone(self) -> None:
        """Have the streams it keeps from being given up on (``kept``) checked again when it
        goes: an iterator without a finalizer gets one (few iterators ever keep one)."""
        if type(self) in (PieceIterator, _PlainIterator):
            self.__class__ = _KeepingIterator

    def give_up_unwinding(self) -> None:
        """Give up, going, if a cancellation of this reader's task unwinds its loop.

        The cancellation landed in the loop's body (a timeout around the loop, while the reader
        was busy with a piece), not in its wait: it gave up all the same, and the stream is
        checked at once, as a cancelled wait's is.
        """
        if not self.quit and not self.waiting and _unwinds_cancellation(self.task):
            self.quit = True
            check_abandoned(self._stream)


class _PlainIterator(PieceIterator[T]):
    """An iterator without a gate, of a stream without a flow (a message's tokens).

    A piece the record holds is taken at once, without the checks of a gate or a flow (a
    reader's cost per token), and so is a wait for the next one (the reader's wait,
    :meth:`PieceIterator._wait`); anything else (the end, a packed front, a view that
    changed its core) is the general iterator's.
    """

    __slots__ = ()

    async def __anext__(self) -> T:
        core = self._stream
        while self._stream is core:
            index = self.index
            offset = index - core.base
            if offset >= 0 and index < core.sent:  # (every piece recorded: see the general one)
                self.index = index + 1
                return core.pieces[offset]
            if offset < 0 or core.done or not core.started:
                break
            await self._wait(core)
        return await PieceIterator.__anext__(self)


class _GoingIterator(PieceIterator[T]):
    """An iterator with something to do when it goes: tell its stream's flow (its cursor),
    give up if its loop is left by a cancellation of its task (see
    :meth:`PieceIterator.give_up_unwinding`), check again the streams it kept."""

    __slots__ = ()

    def __del__(self) -> None:
        try:  # (a finalizer must not raise: no context manager's calls per iterator)
            core = self._stream
            if core.flow is not None:
                core.flow.drop_cursor(core, self, gone=True)
            if not self.quit:  # (read to its end, closed or given up on: nothing to give up)
                self.give_up_unwinding()
            if self.kept:
                recheck_kept(self.kept)
        except Exception:
            pass


class _WatchedPlainIterator(_PlainIterator[T], _GoingIterator[T]):
    """A plain iterator of a stream with a producer to give up, which it gives up on going.

    (Only such streams' iterators have a finalizer: one object fewer to finalize for each
    message read that is ready, or that no agent streams.)
    """

    __slots__ = ()


class _FollowedIterator(_GoingIterator[T]):
    """An iterator that a stream's flow follows: it tells the flow when it is gone.

    An iterator of a stream without a flow (a message's tokens) has nothing to tell, so it
    has no finalizer (one object fewer to finalize per message read).
    """

    __slots__ = ()


class _KeepingIterator(PieceIterator[T]):
    """An iterator without a flow's cursor nor a producer to give up that keeps streams from
    being given up on: they are checked again when it goes (see ``watch_gone``)."""

    __slots__ = ()

    def __del__(self) -> None:
        try:  # (a finalizer must not raise: no context manager's calls)
            if self.kept:
                recheck_kept(self.kept)
        except Exception:
            pass


def _current_task() -> asyncio.Task[Any] | None:
    """The running task, or ``None`` outside of one (an iterator made in synchronous code)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _unwinds_cancellation(task: asyncio.Task[Any] | None) -> bool:
    """Whether ``task`` runs now, being cancelled: a finalizer run as its cancellation unwinds.

    (A finalizer the collector runs while another task runs, or outside a loop, is not.)
    """
    return task is not None and task.cancelling() > 0 and _current_task() is task
