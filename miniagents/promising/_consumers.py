"""The consuming side of a replay core: observers, waiting, collecting, giving up, lost errors.

Observers are given the record, then every new piece as it comes (``add_observer``); async
consumers wait on per-waiter futures that the core wakes on every change (``wait``), so one
producer serves many ``async for`` loops and ``await`` expressions without queues. An
``await`` of the whole (``acollect``) pins the record while it waits (see
:mod:`miniagents.promising._flow`). A stream whose every consumer gave up (a cancelled wait,
a disposed subscription) calls its ``on_abandoned`` callback, which stops its producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from miniagents.promising._deadlock import park, unpark
from miniagents.promising._flow import Flow
from miniagents.promising._reach import handle_gone
from miniagents.promising._replay_observable import ReplayObservable
from miniagents.promising._reporting import mark_received, report_broken_observer
from miniagents.promising._reporting import was_received as _was_received

if TYPE_CHECKING:
    from miniagents.promising._replay import ReplayCore

__all__ = ["ConsumerSide", "Observer"]

T = TypeVar("T")

Observer = tuple[
    Callable[[T], None],
    Callable[[BaseException], None],
    Callable[[], None],
    bool,
    "ReplayCore[Any] | None",
]
"""on_next, on_error, on_completed, whether it is an end consumer (not another stream), and
the core it forwards into (whose pressure it carries), if any."""


def _noop() -> None:
    """Dispose of nothing."""


class ConsumerSide(Generic[T]):
    """The consumer-facing half of :class:`~miniagents.promising._replay.ReplayCore`."""

    __slots__ = ("_waiters", "observers", "on_abandoned")

    pieces: list[T]
    base: int
    sent: int
    done: bool
    started: bool
    loop: asyncio.AbstractEventLoop | None
    error: BaseException | None
    handed_over: bool
    _traceback: TracebackType | None
    flow: Flow | None

    observers: tuple[Observer[T], ...]
    _waiters: list[asyncio.Future[None]] | None
    on_abandoned: Callable[[], None] | None

    def start(self) -> None:
        """Subscribe to the source (the producing side implements it)."""
        raise NotImplementedError

    # -- observers -------------------------------------------------------------------

    def add_observer(
        self,
        on_next: Callable[[T], None],
        on_error: Callable[[BaseException], None],
        on_completed: Callable[[], None],
        *,
        consumer: bool = False,
        sink: ReplayCore[Any] | None = None,
    ) -> Callable[[], None]:
        """Replay the record to a new observer, then keep it informed; return its disposer.

        ``consumer`` tells that the observer is an end consumer (not another stream passing
        the pieces on): an error it gets counts as received. ``sink`` is the core the
        observer forwards into, whose pressure it carries upstream.
        """
        self.start()
        flow = self.flow
        if flow is not None and flow.settle(self.core):
            on_error(flow.released_error(self.core))
            return _noop
        observer: Observer[T] = (on_next, on_error, on_completed, consumer, sink)
        pieces = self.pieces
        index = 0
        if flow is not None:
            flow.pins += 1  # nothing is released while the record is replayed
        try:
            while index < self.sent:  # pieces not passed on yet will come live
                on_next(pieces[index])
                index += 1
        except Exception as exc:
            report_broken_observer(exc)
            return _noop
        finally:
            if flow is not None:
                flow.pins -= 1
        if self.done and self.sent == self.base + len(pieces):
            self.send_end(observer)
            return _noop
        self.observers = (*self.observers, observer)
        if flow is not None and sink is not None:
            flow.credit = 0  # the sink's pressure counts from now on
        if sink is not None and sink.flow is not None:
            if sink.flow.feeders is None:
                sink.flow.feeders = [self.core]
            else:
                sink.flow.feeders.append(self.core)
        if flow is not None and flow.blocked:
            flow.recheck(self.core)  # a subscriber reads at once: there may be room now

        def dispose() -> None:
            self.remove(observer)
            self.check_abandoned()

        return dispose

    @property
    def core(self) -> ReplayCore[T]:
        """This object, typed as the core it is."""
        return self  # type: ignore[return-value]

    def remove(self, observer: Observer[T]) -> None:
        """Stop informing ``observer``."""
        kept = tuple(o for o in self.observers if o is not observer)
        if len(kept) < len(self.observers):
            self.observers = kept
            self._unlink(observer)
            if self.flow is not None and self.flow.blocked:
                self.flow.recheck(self.core)

    def _unlink(self, observer: Observer[T]) -> None:
        sink = observer[4]
        if sink is not None and sink.flow is not None and sink.flow.feeders:
            sink.flow.feeders = [core for core in sink.flow.feeders if core is not self]

    def send_end(self, observer: Observer[T]) -> None:
        """Tell ``observer`` how the stream ended (the producing side implements it)."""
        raise NotImplementedError

    # -- waiting -----------------------------------------------------------------------

    async def await_change(self) -> None:
        """Wait until a piece arrives or the stream ends (the caller has started the core)."""
        loop = self.loop or asyncio.get_running_loop()
        waiter = loop.create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        task = park(self._waiting_for, waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self.check_abandoned()
            raise
        finally:
            unpark(task)

    def _waiting_for(self) -> str:
        flow = self.flow
        return f"a piece of {flow.what if flow is not None else 'a stream'}"

    async def await_done(self) -> None:
        """Wait for the end of the stream (starting it if needed), raising nothing."""
        while not self.done:
            if self.started:
                await self.await_change()
            else:
                self.start()  # a synchronous source may finish right here

    async def acollect(self) -> list[T]:
        """Wait for the end of the stream; return every piece or raise its error.

        Raises:
            ReplayWindowError: if the stream has released pieces (past its replay window).
        """
        flow = self.flow
        if flow is None:
            await self.await_done()
            self.raise_if_failed()
            return self.pieces
        if flow.settle(self.core):
            raise flow.released_error(self.core)
        flow.pins += 1  # an await of the whole needs every piece, and reads them all at once
        if flow.blocked:
            flow.recheck(self.core)
        try:
            await self.await_done()
        finally:
            flow.pins -= 1
        self.raise_if_failed()
        flow.delivered = self.base + len(self.pieces)
        return list(self.pieces)

    def released(self) -> int:
        """How many pieces from the first one the stream has released (past its window)."""
        flow = self.flow
        return 0 if flow is None else flow.settle(self.core)

    def has_room(self, feeding: bool = False) -> bool:
        """Whether a producer may add a piece now (see :mod:`miniagents.promising._flow`).

        ``feeding``: asked for a feeder of this stream (a part a flattener follows now),
        which the flattener's backlog does not hold back (see ``Flow.has_room``).
        """
        flow = self.flow
        if flow is None:
            return True
        if feeding:
            return flow.has_room(self.core, feeding=True)
        return flow.credit > 0 or flow.has_room(self.core)

    async def await_room(self, feeding: bool = False) -> None:
        """Wait until a producer (or, ``feeding``, a feeder) may add a piece."""
        if self.flow is not None:
            await self.flow.wait_room(self.core, feeding)

    # -- giving up -----------------------------------------------------------------------

    def check_abandoned(self) -> None:
        """Call ``on_abandoned`` if the last consumer of a running stream gave up.

        A consumer gives up when its wait is cancelled or its subscription disposed; the
        stream is abandoned when no consumer is left waiting or subscribed. Only streams
        with an ``on_abandoned`` callback (those an agent produces) react to it.
        """
        if self.on_abandoned is None or self.done or self.consumed():
            return
        self.give_up()

    def consumed(self) -> bool:
        """Whether a consumer is subscribed or waiting for the next piece."""
        return bool(self.observers) or any(not waiter.done() for waiter in self._waiters or ())

    def give_up(self) -> None:
        """Call ``on_abandoned`` once, if there is one (its errors are reported, not raised)."""
        on_abandoned, self.on_abandoned = self.on_abandoned, None
        if on_abandoned is None:
            return
        try:
            on_abandoned()
        except Exception as exc:  # giving up must not fail the consumer that gave up
            report_broken_observer(exc)

    # -- errors --------------------------------------------------------------------------

    @property
    def error_received(self) -> bool:
        """Whether a consumer has been given the error that ended the stream."""
        return self.error is not None and _was_received(self.error)

    @property
    def error_lost(self) -> bool:
        """Whether the stream failed and neither a consumer nor another stream got the error."""
        return self.error is not None and not self.handed_over and not _was_received(self.error)

    def raise_if_failed(self) -> None:
        """Re-raise the stream's error, with its original traceback, if it failed."""
        error = self.error
        if error is not None:
            mark_received(error)
            raise error.with_traceback(self._traceback)

    def count_handle(self) -> None:
        """Count one more handle that will call :meth:`handle_gone` when it goes."""
        if self.flow is not None:
            self.flow.add_handle()

    def handle_gone(self) -> None:
        """A handle counted by :meth:`count_handle` went (from a finalizer: anywhere)."""
        handle_gone(self.core)

    def observable(self) -> ReplayObservable[T]:
        """Return the observable face of this core (a handle: it counts itself)."""
        return ReplayObservable(self.core)  # not cached: a cache would make a cycle
