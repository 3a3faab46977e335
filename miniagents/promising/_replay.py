"""The replay core: the record that every promise and stream is built on.

A :class:`ReplayCore` subscribes once to its source (when first needed), records every
piece, and replays the record to each new consumer before passing on the live pieces, so
that every consumer, early or late, sees the whole stream while the producer runs once::

    source:        --a--b--c--|
    observer 1:    --a--b--c--|          (subscribed at the start)
    observer 2:          (ab)c--|        (subscribed after b: replayed, then live)
    observer 3:                   (abc|) (subscribed after the end: all replayed)

The core is the record and its delivery to observers, in sections:

* **recording**: ``accept`` (a piece), ``fail`` / ``complete`` (the end), ``cancel``,
  "when done" callbacks, a detached copy for a cancelled view;
* **the source**: started once, at the first consumer (``start``) or lazily (``defer``);
  another core's observable is followed directly, a :class:`DirectSource` feeds the core
  by calling it, any other observable is subscribed to; pieces, errors and the end may
  come from any thread (they hop onto the core's loop);
* **delivery**: every observer sees the pieces in the order of the record, even when a
  source emits from inside an observer (and a chain of streams fed inside one another
  queues its steps past a depth: :mod:`miniagents.promising._nesting`); a broken observer
  is unsubscribed and reported; the end goes to each observer once (to an end consumer
  it counts as received, to another stream as handed over);
* **observers**: ``add_observer`` (``observe``), ``add_end_observer`` for the end only;
* **errors that must not be lost**: a failed core reports its error when it goes, unless
  a consumer received it or another stream took it over.

Its other parts are concepts of their own, modules of functions over a core that it keeps
as its methods (the layers above call them so): the record as kept, a long record of
``str`` packing its front (:mod:`miniagents.promising._packing`: ``record``, ``piece``);
its flow (:mod:`miniagents.promising._flow`), which releases the pieces no live consumer
needs once the stream has passed its replay window (``base`` counts them), tells
producers when to wait (``has_room``, ``await_room``; a hot source's overflow) and counts
the handles that keep the stream reachable; the waits of its consumers
(:mod:`miniagents.promising._waiting`: ``await_change``, ``await_done``, ``acollect``,
...); and their giving up (:mod:`miniagents.promising._giving_up`: ``check_abandoned``,
``consumed``, ``hold_reader``, ...). See :mod:`miniagents.promising.limits` for the rules.
Its observable face is :class:`ReplayObservable`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.promising import _flow, _giving_up, _packing, _waiting
from miniagents.promising._deadlock import _Watch, outside_source
from miniagents.promising._flow import Flow, count_handle, handle_gone
from miniagents.promising._giving_up import Reader, check_abandoned, give_up
from miniagents.promising._nesting import NESTED, queue_step, run_queued, thread_nesting
from miniagents.promising._packing import BLOCK, PackedTokens, pack_front
from miniagents.promising._reporting import (
    mark_received,
    report_broken_observer,
    report_lost_error,
)
from miniagents.promising._reporting import was_received as _was_received
from miniagents.promising._tasks import no_loop_error
from miniagents.promising._waiting import wake
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.limits import Overflow, stream_limits

__all__ = [
    "Deferred",
    "DirectSource",
    "Observer",
    "ReplayCore",
    "ReplayObservable",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

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


_CANCELLED = (
    "This stream was cancelled before it ended: cancel() was called on it, or every consumer "
    "of it gave up (a wait cancelled, e.g. by asyncio.wait_for's timeout), which stops its "
    "producer. To let it finish, keep a consumer on it (e.g. asyncio.shield the wait), or "
    "start it again."
)
"""The error of a stream cancelled by :meth:`ReplayCore.cancel_now`, whichever the cause."""


_NEVER = 1 << 62
"""A piece count no record reaches: the ``_pack_at`` of a core that never packs."""


class ReplayObservable(Observable[T_co]):
    """The observable face of a :class:`ReplayCore`: every subscriber gets the full replay.

    Marble::

        core:          --a--b--c--|
        subscriber 1:  --a--b--c--|      (subscribed at the start)
        subscriber 2:        (ab)c--|    (subscribed after b)
    """

    def __init__(self, core: ReplayCore[T_co]) -> None:
        # Observable.__init__ would only make a lock that few operators use: see `lock`.
        self._subscribe = None
        self.core = core
        self._lock: threading.RLock | None = None
        if core.flow is not None:  # (only a stream with a flow counts its handles)
            count_handle(core)  # a handle of the stream until it goes

    def __del__(self) -> None:
        try:
            core = self.core
        except AttributeError:  # never set up (no getattr call for the common case)
            return
        handle_gone(core)

    @property
    def lock(self) -> threading.RLock:  # type: ignore[override]
        """The lock some reactivex operators take, made when first needed."""
        if self._lock is None:
            self._lock = threading.RLock()
        return self._lock

    def _subscribe_core(
        self, observer: abc.ObserverBase[T_co], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        on_error = cast(Callable[[BaseException], None], observer.on_error)
        return Disposable(
            self.core.add_observer(observer.on_next, on_error, observer.on_completed, consumer=True)
        )


class DirectSource(Observable[T]):
    """A source that feeds a replay core by calling it directly, without reactivex's wrappers.

    Attributes:
        what: Names the source in task names and error messages.
        needs_loop: Whether attaching it starts a task (and so needs a running loop).
    """

    what = "stream"
    needs_loop = True

    def attach(self, core: ReplayCore[T]) -> abc.DisposableBase | Callable[[], None]:
        """Start feeding ``core``; return what stops it."""
        raise NotImplementedError


class Deferred(DirectSource[Any]):
    """No source, only a starter: an open core whose producer (an agent) starts lazily."""

    what = "an agent"

    def __init__(self, starter: Callable[[], None]) -> None:
        super().__init__()
        self.starter = starter

    def attach(self, core: ReplayCore[Any]) -> Callable[[], None]:
        """Call the starter (it feeds ``core`` by other means)."""
        self.starter()
        return _noop


class ReplayCore(abc.ObserverBase[T]):
    """Records a stream's pieces and its end, and replays them to every consumer."""

    __slots__ = (
        "__weakref__",
        "_bystanders",
        "_delivering",
        "_end_callbacks",
        "_end_watchers",
        "_interactions",
        "_needing",
        "_pack_at",
        "_reader_waits",
        "_source",
        "_subscription",
        "_traceback",
        "_waiters",
        "_waiting",
        "_watch",
        "base",
        "done",
        "error",
        "flow",
        "handed_over",
        "loop",
        "observers",
        "on_abandoned",
        "packed",
        "piece_type",
        "pieces",
        "producer",
        "readers",
        "sent",
        "started",
        "thread",
        "validator",
        "wanted_by",
    )

    def __init__(
        self,
        source: Observable[T] | None = None,
        prefill: list[T] | None = None,
        error: BaseException | None = None,
        validator: Callable[[T], BaseException | None] | None = None,
        piece_type: type[T] | None = None,
        open_ended: bool = False,
        paced: str | None = None,
        overflow: Overflow = "buffer",
    ) -> None:
        """Create a core fed by ``source``, or a finished one holding ``prefill`` (and ``error``).

        Args:
            source: The observable to subscribe to when started; ``None`` for a finished core.
            prefill: The pieces known from the start.
            error: For a finished core, the error that ended it.
            validator: Checks each piece from ``source``; a returned error ends the stream.
            piece_type: The type every piece is known to have (checked by ``validator`` or by
                the owner, e.g. ``str`` for a message's tokens): a core fed by this one, or
                a stream shown over it, may then take its pieces unchecked.
            open_ended: Without a source, stay open: the owner pushes pieces with
                :meth:`accept` and ends the stream with :meth:`complete` or :meth:`fail`.
            paced: For a stream of many pieces, how errors name it (e.g. "this
                MessageSequencePromise"): it gets a :class:`Flow` with the current
                :data:`~miniagents.promising.limits.stream_limits`. ``None``: the core keeps
                every piece and never makes a producer wait.
            overflow: For a paced stream, what to do with pieces of a hot source that
                outruns its consumers.
        """
        if prefill is None:  # (no len() of an empty list: the common case)
            self.pieces: list[T] = []
            # how many pieces observers have been given: outside a delivery (whenever an
            # iterator reads), every piece recorded
            self.sent = 0
        else:
            self.pieces = prefill
            self.sent = len(prefill)
        self.base = 0  # pieces released from the front of the record (see Flow)
        self._delivering = False
        self.done = source is None and not open_ended
        self.error: BaseException | None = None
        self._traceback: TracebackType | None = None
        self.handed_over = False  # the error went on to another stream, which reports it
        self._source = source
        self.started = source is None
        # one callback, or a list of them (most streams have none or one: no list then)
        self._end_callbacks: Callable[[], None] | list[Callable[[], None]] | None = None
        self._subscription: abc.DisposableBase | Callable[[], None] | None = None
        self.observers: tuple[Observer[T], ...] = ()
        # the futures of the waits for a change: one, or a list of them (most streams have
        # one consumer: no list then), None when nobody waits
        self._waiters: asyncio.Future[None] | list[asyncio.Future[None]] | None = None
        self._waiting = 0  # consumers inside await_change, woken ones that have not run yet too
        self._bystanders = 0  # of those waits: bystanders', which consume nothing (await_end)
        self._end_watchers = 0  # consumers waiting for the end only (add_end_observer)
        self._needing = 0  # of the waits: its producer's, which needs it (await_needed)
        self._interactions = 0  # running interactions that read it as their input
        # its async for readers (weakly), which read on between two pieces (see add_reader)
        # (one, or a list of them: most streams have one reader, no list then)
        self.readers: weakref.ref[Reader] | list[weakref.ref[Reader]] | None = None
        self._reader_waits = False  # an ``async for`` reader is among the waiters
        self._watch: _Watch | None = None  # the deadlock watch of the loop its consumers wait in
        # who makes its next piece, for the deadlock watch's wait-for graph (see _waitfor):
        # a task, the core it follows, or a Producer naming them; None: it cannot be told
        self.producer: object = None
        self.on_abandoned: Callable[[], None] | None = None
        # the streams that hold this one as a piece (a message's sequences): while one of
        # them is consumed, this one is not abandoned (see check_abandoned)
        self.wanted_by: tuple[ReplayCore[Any], ...] = ()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self.validator = validator
        self.piece_type = piece_type
        self.flow = None if paced is None else Flow(stream_limits.get(), paced, overflow, self.sent)
        # a record of str that keeps every piece packs its front (see _packing): ``base``
        # then counts the packed pieces, which are kept (a core with a flow releases them)
        self.packed: PackedTokens | None = None
        self._pack_at = 2 * BLOCK if paced is None and piece_type is str else _NEVER  # (base: 0)
        if error is not None:
            self._set_error(error)

    @staticmethod
    def finished(pieces: list[T], piece_type: type[T] | None = None) -> ReplayCore[T]:
        """A finished core holding ``pieces`` (the fast path for a ready message's text)."""
        core: ReplayCore[T] = _ReadyCore.__new__(_ReadyCore)
        core.pieces = pieces
        core.sent = len(pieces)
        core.piece_type = piece_type
        return core

    def _set_error(self, error: BaseException) -> None:
        self.error = error
        self._traceback = error.__traceback__
        # only a failed core reports a lost error when it goes, so only it has a finalizer
        self.__class__ = _FailedReplayCore

    @property
    def count(self) -> int:
        """The number of pieces recorded so far (released ones included)."""
        return self.base + len(self.pieces)

    # its record as kept, a packed front included (miniagents.promising._packing): that
    # module's functions themselves, which take the core first (no method calling them)
    record = _packing.record
    """Every piece kept, from piece number ``released()`` (the packed ones unpacked)."""
    piece = _packing.piece
    """Piece number ``index`` of the record, packed or not (it must be kept)."""

    # -- recording ---------------------------------------------------------------

    def accept(self, piece: T) -> None:
        """Record ``piece`` and pass it to every observer (on the loop's thread)."""
        if self.done:
            return
        if self.validator is not None:
            problem = self.validator(piece)
            if problem is not None:
                self.fail(problem)
                return
        flow = self.flow
        if flow is not None:
            credit = flow.credit
            if credit > 0:
                flow.credit = credit - 1
            elif flow.overflow != "buffer":  # a hot source may outrun its consumers
                if not flow.has_room(self, demand=False) and flow.overflows(self):
                    return
                if flow.credit > 0:
                    flow.credit -= 1
            if flow.feed_credit > 0:  # every piece uses a unit, whoever produced it
                flow.feed_credit -= 1
            # (outside a delivery every piece recorded was sent: the record kept is
            # ``sent - base`` pieces long, no len() needed; inside one nothing is released)
            if self.sent - self.base >= flow.check_at and not self._delivering:
                flow.release(self)
        elif self.sent >= self._pack_at and not self._delivering:
            pack_front(self)
        pieces = self.pieces
        pieces.append(piece)
        if self._delivering:
            return  # the running delivery passes it on, in order
        self.sent += 1  # outside a delivery, every piece was sent: this one is now
        if self.observers:
            self._delivering = True
            try:  # the fast path: pass this one piece on
                self._pass_on(piece)
            finally:
                self._delivering = False
            if self.sent < self.base + len(pieces) or self.done:
                self._deliver()  # what arrived while observers were being called
                return
        if self._waiters:
            wake(self)

    def accept_forwarded(self, piece: T) -> None:
        """:meth:`accept` a piece another stream passes on (a flattening's message).

        Streams nested in one another forward into each other synchronously; past a depth
        the step is queued for the outermost one (see :mod:`miniagents.promising._nesting`),
        so a chain of any length passes its pieces on in order without exceeding Python's
        recursion limit.
        (A core without observers passes nothing on: :meth:`accept` is enough for it, and
        cheaper, as the flattening does.)
        """
        nesting = thread_nesting
        depth = nesting.depth
        if depth >= NESTED:
            queue_step(nesting, ReplayCore.accept, self, piece)
            return
        nesting.depth = depth + 1
        try:
            self.accept(piece)
        finally:
            nesting.depth = depth
        if depth == 0 and nesting.later:
            run_queued(nesting, nesting.later)

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error``."""
        if self.done:
            return
        if isinstance(error, asyncio.CancelledError):
            cancelled = StreamCancelledError(
                "The producer of this stream was cancelled before the stream ended."
            )
            cancelled.__cause__ = error
            error = cancelled
        self._set_error(error)
        self.complete()  # (the end itself: with the error set, it is a failure)

    def complete(self) -> None:
        """End the stream normally (an ended stream stays as it is).

        (:meth:`fail` ends it here too, once it has set the error.)
        """
        if self.done:
            return
        self.done = True
        self.on_abandoned = None  # nothing to give up any more (and no reference cycle)
        self.producer = None  # (nor a producer to name: it let go of its task)
        self.wanted_by = ()
        if self._subscription is not None:  # (most cores are fed directly: none to dispose)
            self._dispose_subscription()
        callbacks, self._end_callbacks = self._end_callbacks, None
        if callbacks is not None:
            for callback in callbacks if isinstance(callbacks, list) else (callbacks,):
                try:
                    callback()
                except Exception as exc:  # a listener must not break the stream
                    report_broken_observer(exc)
        flow = self.flow
        if flow is not None:
            # an ended stream has no pressure: let go of its producer's backlog (an agent's
            # flattener, which holds its appender and task) at once, not at the context's end
            flow.backlog = None
            if flow.room_waiters or flow.feed_waiters or flow.feeders is not None:
                flow.blocked = True  # wake any waiting producer: there is nothing to wait for
                flow.recheck(self)
        if not self._delivering:
            self._deliver()

    def cancel(self) -> None:
        """Stop the producer and end the stream with :class:`StreamCancelledError`.

        A stream with an ``on_abandoned`` callback (an agent's replies) calls it first, so
        that its producer (the agent's task) stops too.
        """
        if self.done:
            return
        give_up(self)  # an agent's replies: its task stops, then cancels this stream
        self.cancel_now()

    def cancel_now(self) -> None:
        """End the stream with :class:`StreamCancelledError` now, without ``on_abandoned``."""
        if self.done:
            return
        self.started = True
        self._source = None
        self._dispose_subscription()
        self.fail(StreamCancelledError(_CANCELLED))

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the stream ends (at once if it has); it gets no error."""
        callbacks = self._end_callbacks
        if self.done:
            callback()
        elif callbacks is None:
            self._end_callbacks = callback
        elif isinstance(callbacks, list):
            callbacks.append(callback)
        else:
            self._end_callbacks = [callbacks, callback]

    def detached_copy(self) -> ReplayCore[T]:
        """A finished copy of the record so far, ended by :class:`StreamCancelledError`.

        A view cancelled on its own moves to it: its consumers get the pieces so far, then
        the error, while the stream goes on for its other consumers.
        """
        error = StreamCancelledError("This stream was cancelled with cancel() before it ended.")
        copy = ReplayCore(prefill=list(self.pieces), error=error, piece_type=self.piece_type)
        copy.base = self.base
        copy.sent = self.base + len(copy.pieces)
        copy.packed = None if self.packed is None else self.packed.copy()
        copy.flow = None if self.flow is None else self.flow.frozen_copy()
        wake(self)  # its consumers that wait here move to the copy
        return copy

    # -- the source -----------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the source, once; later calls do nothing."""
        if self.started:
            return
        source = cast("Observable[T]", self._source)
        try:
            self.loop = asyncio.get_running_loop()
            self.thread = threading.get_ident()
        except RuntimeError:
            # A purely synchronous source (e.g. reactivex.testing) needs no loop; one run
            # by a task does, and the stream stays startable once a loop runs.
            if isinstance(source, DirectSource) and source.needs_loop:
                raise no_loop_error(source.what) from None
        self.started = True
        self._source = None
        if isinstance(source, ReplayObservable):
            self.producer = source.core  # its pieces are that stream's
            self._subscription = source.core.add_observer(
                self.accept, self.fail, self.complete, sink=self
            )
        elif isinstance(source, DirectSource):  # it calls this core directly
            self._subscription = source.attach(self)
        else:
            loop = self.loop
            if loop is not None:  # it may push from a thread or a callback: not a deadlock
                self.when_done(outside_source(self, loop))
            self._subscription = source.subscribe(self.on_next, self.on_error, self.on_completed)

    def defer(self, starter: Callable[[], None]) -> None:
        """Make an open core start lazily: ``starter`` is called at its first consumer."""
        self._source = Deferred(starter)
        self.started = False

    # Pieces, errors and the end may come from any thread: each of the three below hops
    # onto the loop's thread (with call_soon_threadsafe) unless it runs there already.

    def on_next(self, piece: T) -> None:
        """Accept a piece from any thread (pieces from other threads hop onto the loop)."""
        if self.thread is None or threading.get_ident() == self.thread:
            self.accept(piece)
        else:
            cast(asyncio.AbstractEventLoop, self.loop).call_soon_threadsafe(self.accept, piece)

    def on_error(self, error: BaseException) -> None:
        """Accept the error that ends the stream, from any thread."""
        if self.thread is None or threading.get_ident() == self.thread:
            self.fail(error)
        else:
            cast(asyncio.AbstractEventLoop, self.loop).call_soon_threadsafe(self.fail, error)

    def on_completed(self) -> None:
        """Accept the normal end of the stream, from any thread."""
        if self.thread is None or threading.get_ident() == self.thread:
            self.complete()
        else:
            cast(asyncio.AbstractEventLoop, self.loop).call_soon_threadsafe(self.complete)

    def _dispose_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        if isinstance(subscription, abc.DisposableBase):
            subscription.dispose()
        else:
            subscription()

    # -- delivery ----------------------------------------------------------------------

    def _deliver(self, ends: tuple[Observer[T], ...] | None = None) -> None:
        """Pass on every recorded piece not passed on yet, then the end if it came.

        A piece or an end that arrives while observers are being called (a source that
        emits from inside an observer) is recorded and passed on by this same loop, so
        that every observer sees the pieces in the order of the record. The end goes to
        each observer, unlinked from it first; past :data:`~miniagents.promising._nesting.NESTED`
        streams fed inside one another it is queued, as this delivery with the observers
        to tell (``ends``), for the outermost step to run.
        """
        queued = None  # the steps queued past NESTED, if this end is the outermost step
        self._delivering = True
        try:
            pieces = self.pieces
            while self.sent < self.base + len(pieces):
                piece = pieces[self.sent - self.base]
                self.sent += 1
                self._pass_on(piece)
            if ends is None and self.done and self.observers:
                ends, self.observers = self.observers, ()
            if ends:
                nesting = thread_nesting  # (NESTED deep at most: see there)
                depth = nesting.depth
                if depth >= NESTED:
                    queue_step(nesting, ReplayCore._deliver, self, ends)
                else:
                    nesting.depth = depth + 1
                    try:
                        for observer in ends:
                            self._unlink(observer)
                            self.send_end(observer)
                    finally:
                        nesting.depth = depth
                    if depth == 0:
                        queued = nesting.later
        finally:
            self._delivering = False
        if queued:  # (run once this core's delivery is over: it may feed this core again)
            run_queued(thread_nesting, queued)
        if self._waiters:
            wake(self)

    def _pass_on(self, piece: T) -> None:
        for observer in self.observers:
            try:
                observer[0](piece)
            except Exception as exc:  # a broken observer must not break the stream
                self.remove(observer)
                report_broken_observer(exc)

    def send_end(self, observer: Observer[T]) -> None:
        """Tell ``observer`` how the stream ended."""
        try:
            if self.error is None:
                observer[2]()
            else:
                if observer[3]:
                    mark_received(self.error)
                else:  # another stream: it is the one that must see the error consumed
                    self.handed_over = True
                observer[1](self.error)
        except Exception as exc:
            report_broken_observer(exc)

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
        observer = self.observe(on_next, on_error, on_completed, consumer=consumer, sink=sink)
        if observer is None:
            return _noop

        def dispose() -> None:
            self.stop_observing(observer)

        return dispose

    def observe(
        self,
        on_next: Callable[[T], None],
        on_error: Callable[[BaseException], None],
        on_completed: Callable[[], None],
        *,
        consumer: bool = False,
        sink: ReplayCore[Any] | None = None,
    ) -> Observer[T] | None:
        """As :meth:`add_observer`, but return the observer (stop it with :meth:`stop_observing`).

        ``None`` if the observer has been told the end already (nothing to stop). For a
        caller that keeps the core anyway (a flattening following its parts): no disposer
        is made per observer.
        """
        if not self.started:
            self.start()
        flow = self.flow
        pieces = self.pieces
        if flow is not None and flow.settle(self):
            on_error(flow.released_error(self))
            return None
        observer: Observer[T] = (on_next, on_error, on_completed, consumer, sink)
        if self.sent:  # a record to replay first (an early observer has none)
            index = 0
            if flow is not None:
                flow.pins += 1  # nothing is released while the record is replayed
            try:
                while index < self.sent:  # pieces not passed on yet will come live
                    # (with a flow nothing is released here, so base is 0; a record of str
                    # may pack its front meanwhile: read by the piece's number)
                    offset = index - self.base
                    on_next(pieces[offset] if offset >= 0 else self.piece(index))
                    index += 1
            except Exception as exc:
                report_broken_observer(exc)
                return None
            finally:
                if flow is not None:
                    flow.pins -= 1
        if self.done and self.sent == self.base + len(pieces):
            self.send_end(observer)
            return None
        self.observers = (*self.observers, observer)
        if sink is not None:
            if flow is not None:
                flow.credit = flow.feed_credit = 0  # the sink's pressure counts from now on
            sink_flow = sink.flow
            if sink_flow is not None:
                feeders = sink_flow.feeders
                if feeders is None:  # (the common case: no list made)
                    sink_flow.feeders = self
                elif isinstance(feeders, list):
                    feeders.append(self)
                else:
                    sink_flow.feeders = [feeders, self]
        if flow is not None and flow.blocked:
            flow.recheck(self)  # a subscriber reads at once: there may be room now
        return observer

    def stop_observing(self, observer: Observer[T]) -> None:
        """Stop informing an observer :meth:`observe` gave (the stream may be abandoned now)."""
        self.remove(observer)
        if not self.done:  # (one stopped after the end was told the end: it gave up nothing)
            check_abandoned(self)

    def add_end_observer(
        self, on_error: Callable[[BaseException], None], on_completed: Callable[[], None]
    ) -> Callable[[], None]:
        """Tell a new observer how the stream ends, without its pieces; return its disposer.

        For a consumer that needs only the end (its pieces are read from the record then):
        it is never called per piece, yet it counts as a consumer until the end or until
        disposed, as an observer does. The error goes to it as to another stream (handed
        over: it passes the error on).
        """
        self.start()
        if self.done:
            self._send_end_to(on_error, on_completed)
            return _noop
        self._end_watchers += 1
        waiting = True

        def end() -> None:
            nonlocal waiting
            if waiting:
                waiting = False
                self._end_watchers -= 1
                self._send_end_to(on_error, on_completed)

        def dispose() -> None:
            nonlocal waiting
            if waiting:
                waiting = False
                self._end_watchers -= 1
                check_abandoned(self)

        self.when_done(end)
        return dispose

    def _send_end_to(
        self, on_error: Callable[[BaseException], None], on_completed: Callable[[], None]
    ) -> None:
        error = self.error
        if error is None:
            on_completed()
        else:
            self.handed_over = True
            on_error(error)

    def remove(self, observer: Observer[T]) -> None:
        """Stop informing ``observer``."""
        kept = tuple(o for o in self.observers if o is not observer)
        if len(kept) < len(self.observers):
            self.observers = kept
            self._unlink(observer)
            if self.flow is not None and self.flow.blocked:
                self.flow.recheck(self)

    def _unlink(self, observer: Observer[T]) -> None:
        sink = observer[4]
        flow = None if sink is None else sink.flow
        if flow is not None and flow.feeders is not None:
            feeders = flow.feeders
            if feeders is self:  # the common case (a flattener follows one part at a time)
                flow.feeders = None
            elif isinstance(feeders, list):
                flow.feeders = [core for core in feeders if core is not self] or None

    # -- its flow: pacing and handles -----------------------------------------------------

    # Its pacing and its handles (what keeps it reachable) are its flow's (a core without a
    # flow keeps every piece and never makes a producer wait: miniagents.promising._flow):
    # that module's functions themselves, which take the core first (no method calling them)
    has_room = _flow.has_room
    """Whether a producer (or, ``feeding``, a feeder) may add a piece now."""
    await_room = _flow.await_room
    """Wait until a producer (or, ``feeding``, a feeder) may add a piece."""
    released = _flow.released
    """How many pieces from the first one the stream has released (past its window)."""
    unpace = _flow.unpace
    """Stop exerting pressure for good: every producer waiting for room goes on."""
    count_handle = _flow.count_handle
    """Count one more handle that will call ``handle_gone`` when it goes."""
    handle_gone = _flow.handle_gone
    """A handle counted by ``count_handle`` went (from a finalizer: it may run anywhere)."""

    # -- its consumers: their waits and their giving up -----------------------------------

    # The waits of its consumers (miniagents.promising._waiting) and their giving up
    # (miniagents.promising._giving_up), each a concept of its own: its methods are those
    # modules' functions themselves, which take the core first (no method calling them).
    await_change = _waiting.await_change
    """Wait until a piece arrives or the stream ends (the caller has started the core)."""
    wait_change = _waiting.wait_change
    """Start a wait for the next piece or the end: the future to ``await``, and the task."""
    end_wait = _waiting.end_wait
    """End a wait that ``wait_change`` started; ``error`` is what its ``await`` raised."""
    await_done = _waiting.await_done
    """Wait for the end of the stream (starting it if needed), raising nothing."""
    await_end = _waiting.await_end
    """Wait for the end of a started stream as a bystander (no consumer), raising nothing."""
    await_needed = _waiting.await_needed
    """Wait for the end as the producer of its first holder, which needs it."""
    acollect = _waiting.acollect
    """Wait for the end of the stream; return every piece or raise its error."""
    _waiting_for = _waiting.waiting_for
    check_abandoned = _giving_up.check_abandoned
    """Call ``on_abandoned`` if the last consumer of a running stream gave up."""
    check_abandoned_at_release = _giving_up.check_abandoned_at_release
    """``check_abandoned`` now, or, while interactions read it, when the last one stops."""
    consumed = _giving_up.consumed
    """Whether a consumer is subscribed or waiting for the next piece, or holds it."""
    give_up = _giving_up.give_up
    """Call ``on_abandoned`` once, if there is one (its errors are reported, not raised)."""
    add_reader = _giving_up.add_reader
    """Count an ``async for`` iterator of this stream as a consumer (between two pieces)."""
    hold_reader = _giving_up.hold_reader
    """Count a reader for as long as it runs: an interaction whose input this stream is."""
    release_reader = _giving_up.release_reader
    """End a count of ``hold_reader``; ``gave_up``: the reader was given up on."""

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

    def observable(self) -> ReplayObservable[T]:
        """Return the observable face of this core (a handle: it counts itself)."""
        return ReplayObservable(self)  # not cached: a cache would make a cycle


class _FailedReplayCore(ReplayCore[T]):
    """A core whose stream failed: it logs the error when it goes if nobody received it."""

    __slots__ = ()

    def __del__(self) -> None:
        if not getattr(self, "handed_over", True):
            report_lost_error(self.error)  # type: ignore[arg-type]


class _ReadyCore(ReplayCore[T]):
    """A core born finished (a ready message's text), made with three attribute writes.

    The other fields of a finished core never change, so they are class attributes here
    (they shadow the slots, which stay unset): ``finished()`` costs a third of a full
    ``__init__``. Nothing writes them on a finished core: its consumers get the record and
    the end at once, and it has no producer, flow or waiters.
    """

    __slots__ = ()

    base = 0
    done = started = True
    error = _traceback = _source = _end_callbacks = None
    _reader_waits = False
    packed = None
    _pack_at = _NEVER
    _subscription = _waiters = on_abandoned = loop = thread = producer = None
    wanted_by = ()
    _waiting = _end_watchers = _needing = _interactions = _bystanders = 0
    readers = None
    _watch = None
    validator = flow = None
    handed_over = _delivering = False
    observers = ()
