"""The replay core: the record that every promise and stream is built on.

A :class:`ReplayCore` subscribes once to its source (when first needed), records every
piece, and replays the record to each new consumer before passing on the live pieces, so
that every consumer, early or late, sees the whole stream while the producer runs once::

    source:        --a--b--c--|
    observer 1:    --a--b--c--|          (subscribed at the start)
    observer 2:          (ab)c--|        (subscribed after b: replayed, then live)
    observer 3:                   (abc|) (subscribed after the end: all replayed)

A stream is a few parts, each owning its state; they talk through small methods::

    part           owns                                          made         module
    ReplayCore     the record (pieces, end, why it was           always       _replay
                   cancelled), source, observers
    Flow           the replay window, the producer's pressure    if paced     _flow
    Waits          the consumers' waits, their wake-up, watch    first wait   _waiting
    Audience       readers between waits, interactions, ends,    first one    _giving_up
                   what to check again as an interaction stops
    PieceIterator  one ``async for``'s position, the streams it  per reader   _cursor
                   keeps from being given up on

    producer -accept/has_room-> ReplayCore -on_next-> observers, -wake-> Waits
    Flow -drop_front-> ReplayCore (what it releases);  PieceIterator -add_cursor-> Flow
    giving up asks ReplayCore (observers), Waits (consuming) and Audience (holds)

The core records the pieces (a long record of ``str`` packs its front: ``_packing``) and the
end, follows its source (once, at the first consumer or lazily; a :class:`DirectSource` calls
it, an observable of any thread hops onto its loop), and passes the record to its observers
in its order, even when a source emits from inside an observer (see :data:`NESTED`). A broken
observer is unsubscribed and reported; a failed core reports its error when it goes, unless
a consumer received it or another stream took it over. A cancelled core keeps the reason its
canceller gave (``reason``): its error tells it, and so do the errors of the streams it holds
that giving up on it cancels, whenever they end (see :meth:`ReplayCore.why_cancelled`), and
of the streams it followed, given up on as it stops following them. Its methods for the
layers above ask its parts (a wait for a change is its waits', an audience is made by its
module). Its observable face is :class:`ReplayObservable`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.promising import _giving_up, _waiting
from miniagents.promising._deadlock import outside_source
from miniagents.promising._flow import Flow
from miniagents.promising._packing import BLOCK, PackedTokens
from miniagents.promising._reporting import mark_received, report_broken_observer, report_lost_error
from miniagents.promising._reporting import was_received as _was_received
from miniagents.promising._shared import Shared, one_more
from miniagents.promising._tasks import no_loop_error
from miniagents.promising.errors import StreamCancelledError
from miniagents.promising.limits import Overflow, stream_limits

__all__ = [
    "CancelReason",
    "Deferred",
    "DirectSource",
    "Observer",
    "ReplayCore",
    "ReplayObservable",
    "joined_text",
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
"""The error of a stream cancelled by :meth:`ReplayCore.cancel_now` when no reason was given."""


_VIEW_CANCELLED = (
    "This view of a stream was cancelled with cancel() before the stream ended: its readers "
    "get the pieces so far, while the stream goes on for its other readers. To read it to "
    "its end, read it through a view that was not cancelled (or do not cancel this one)."
)
"""The error of a view cancelled on its own (see :meth:`ReplayCore.detached_copy`)."""


class CancelReason(str):
    """A task's cancel message that is a whole error text of the streams that task feeds.

    Given as ``task.cancel(CancelReason(text))`` (the exit of a ``MiniAgents`` context after
    an error), it is the error of each stream the task was cancelled under, as a ``reason``
    given to :meth:`ReplayCore.cancel` is; any other message is quoted in a sentence of ours.
    """

    __slots__ = ()


def _producer_cancelled(reason: str | None, error: asyncio.CancelledError) -> str:
    """The text of the error of a stream whose producer was cancelled (``error``), with the
    reason of the stream's cancellation if one was given (see ``ReplayCore.why_cancelled``),
    or the cancel's message if it is such a reason (a :class:`CancelReason`)."""
    message = error.args[0] if error.args else None
    if reason is not None or isinstance(message, CancelReason):
        return reason or cast(str, message)
    said = f" with the message {message!r}" if message else ""
    return (
        f"The producer of this stream (the task that fed it) was cancelled{said} before the "
        "stream ended, so the stream ends here. To read it to its end, let that task run "
        "until the stream has ended: do not cancel it (a timeout, a failed task group, the "
        "exit of its MiniAgents context after an error) before."
    )


_NEVER = 1 << 62
"""A piece count no record reaches: the ``_pack_at`` of a core that never packs."""


# -- streams fed inside one another --------------------------------------------------------

NESTED = 16
"""How many streams one thread feeds inside one another before it queues the next step.

A piece or an end reaches a stream's observers synchronously, and an observer that forwards
into another stream (a flattening: an agent's replies that hold another agent's replies)
feeds that one in turn, with about three Python frames per stream for a piece and six for
an end. An agent that hands its conversation on to a new agent at every turn makes such a
chain, one stream per turn; past about 160 turns an end would exceed Python's recursion
limit, and be lost. So past ``NESTED`` streams the next step (a forwarded piece, an end) is
queued, and the outermost step takes the queue, in order, before it returns::

    chain:     S1 -> S2 -> ... -> S16 -> S17 -> ... -> S200   (S2 follows S1, ...)
    S1 ends:   S2 .. S16 end nested in one another, S17's end is queued;
               the outermost then ends S17 .. S32 nested, queues S33's; ... S200
"""

_Step = tuple[Callable[[Any, Any], None], Any, Any]
"""A step queued: ``step(core, argument)``, as three items (no closure made per step)."""


class _Nesting(threading.local):
    """This thread's streams fed inside one another: how deep, and the steps queued."""

    depth = 0
    later: deque[_Step] | None = None

    def queue(self, step: Callable[[Any, Any], None], core: object, argument: object) -> None:
        """Queue ``step(core, argument)`` for the outermost step of this thread to run."""
        if self.later is None:
            self.later = deque()
        self.later.append((step, core, argument))

    def run(self, queue: deque[_Step]) -> None:
        """Run the queued steps, in order, each chain nested at most as deep as the first."""
        self.depth = 1  # (the steps they queue go to this loop, not to a nested one)
        try:
            while queue:
                step, core, argument = queue.popleft()
                step(core, argument)
        finally:
            self.depth = 0


_nesting = _Nesting()
"""This thread's nesting (each thread has its own: a ``threading.local``)."""


class ReplayObservable(Observable[T_co], Shared["ReplayCore[T_co]"]):
    """The observable face of a :class:`ReplayCore`: every subscriber gets the full replay.

    Marble::

        core:          --a--b--c--|
        subscriber 1:  --a--b--c--|      (subscribed at the start)
        subscriber 2:        (ab)c--|    (subscribed after b)
    """

    def __init__(self, core: ReplayCore[T_co]) -> None:
        # Observable.__init__ would only make a lock that few operators use: see `lock`.
        self._subscribe = None
        self.core = self._core = core  # (the core it shows, as a face and for its readers)
        self._lock: threading.RLock | None = None
        flow = core.flow
        if flow is not None:  # (only a stream with a flow counts its handles)
            flow.count_handle()  # a handle of the stream until it goes

    def __del__(self) -> None:
        try:
            core = self._core
        except AttributeError:  # never set up (no getattr call for the common case)
            return
        flow = core.flow
        if flow is not None:
            flow.handle_gone(core)

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
        core = self._core
        return Disposable(
            core.add_observer(observer.on_next, on_error, observer.on_completed, consumer=True)
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
        "_end_callbacks",
        "_pack_at",
        "_source",
        "_traceback",
        "audience",
        "base",
        "delivering",
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
        "reason",
        "sent",
        "started",
        "thread",
        "validator",
        "waits",
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
        self.base = 0  # pieces released (see Flow), or packed, from the front of the record
        self.delivering = False  # passing pieces to its observers now
        self.done = source is None and not open_ended
        self.error: BaseException | None = None
        self._traceback: TracebackType | None = None
        self.handed_over = False  # the error went on to another stream, which reports it
        # its source until it starts, then what stops following it (a subscription, a stop)
        self._source: Observable[T] | abc.DisposableBase | Callable[[], None] | None = source
        self.started = source is None
        # one callback, or a list of them (most streams have none or one: no list then)
        self._end_callbacks: Callable[[], None] | list[Callable[[], None]] | None = None
        self.observers: tuple[Observer[T], ...] = ()
        # its parts made when first needed (most streams never wait, nor have a reader
        # between two pieces: a ready message, a reply awaited once it has ended)
        self.waits: _waiting.Waits | None = None
        self.audience: _giving_up.Audience | None = None
        # who makes its next piece, for the deadlock watch's wait-for graph (see _waitfor):
        # a task, the core it follows, or a Producer naming them; None: it cannot be told
        self.producer: object = None
        self.on_abandoned: Callable[[], None] | None = None
        self.reason: str | None = None  # why it was cancelled, if its canceller said it
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

    # -- the record as kept ------------------------------------------------------------------

    def record(self) -> list[T]:
        """Every piece kept, from piece number ``released()``: ``pieces`` (from number
        ``base``) after the packed front of a record of ``str``, if any (new, equal strings)."""
        packed = self.packed
        if packed is None:
            return self.pieces
        return [*cast("list[T]", list(packed)), *self.pieces]

    def piece(self, index: int) -> T:
        """Piece number ``index`` of the record, packed or not (it must be kept)."""
        offset = index - self.base
        if offset >= 0:
            return self.pieces[offset]
        assert self.packed is not None  # only a packed front lies below base and is kept
        return cast(T, self.packed[index])

    def drop_front(self, floor: int) -> None:
        """Drop the pieces below number ``floor``, which its flow released (``accept`` drops
        them itself as it records: no call there)."""
        del self.pieces[: floor - self.base]
        self.base = floor

    def _pack_front(self) -> None:
        """Pack the first block of a long record of ``str`` (every piece of it was sent)."""
        packed = self.packed
        if packed is None:
            packed = self.packed = PackedTokens()
        pieces: list[Any] = self.pieces  # (of str: see __init__'s _pack_at)
        packed.pack(pieces[:BLOCK])
        del pieces[:BLOCK]
        self.base += BLOCK
        self._pack_at += BLOCK

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
            # The flow's credit is spent here, the one place the record touches its flow's
            # state: a call to the flow per piece would cost W3 and W4 a call per message
            # and stage (measured: see tests/benchmarks/README.md).
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
            if self.sent - self.base >= flow.check_at and not self.delivering:
                floor = flow.release(self)  # (the pieces below it go: see drop_front)
                if floor > self.base:
                    del self.pieces[: floor - self.base]
                    self.base = floor
        elif self.sent >= self._pack_at and not self.delivering:
            self._pack_front()
        pieces = self.pieces
        pieces.append(piece)
        if self.delivering:
            return  # the running delivery passes it on, in order
        self.sent += 1  # outside a delivery, every piece was sent: this one is now
        if self.observers:
            self.delivering = True
            try:  # the fast path: pass this one piece on
                self._pass_on(piece)
            finally:
                self.delivering = False
            if self.sent < self.base + len(pieces) or self.done:
                self._deliver()  # what arrived while observers were being called
                return
        waits = self.waits
        if waits is not None and waits.futures:
            waits.wake(False)  # (it has not ended: see above)

    def accept_forwarded(self, piece: T) -> None:
        """:meth:`accept` a piece another stream passes on (a flattening's message).

        Streams nested in one another forward into each other synchronously; past a depth
        the step is queued for the outermost one (see :data:`NESTED`),
        so a chain of any length passes its pieces on in order without exceeding Python's
        recursion limit.
        (A core without observers passes nothing on: :meth:`accept` is enough for it, and
        cheaper, as the flattening does.)
        """
        nesting = _nesting
        depth = nesting.depth
        if depth >= NESTED:
            nesting.queue(ReplayCore.accept, self, piece)
            return
        nesting.depth = depth + 1
        try:
            self.accept(piece)
        finally:
            nesting.depth = depth
        if depth == 0 and nesting.later:
            nesting.run(nesting.later)

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (its producer's cancellation: a
        :class:`StreamCancelledError` that says why, where that is known)."""
        if self.done:
            return
        if isinstance(error, asyncio.CancelledError):
            cancelled = StreamCancelledError(_producer_cancelled(self.why_cancelled(), error))
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
        if self.started and self._source is not None:  # (most cores are fed directly: none
            self._dispose_subscription()  # to dispose)
        callbacks, self._end_callbacks = self._end_callbacks, None
        if callbacks is not None:
            for callback in callbacks if isinstance(callbacks, list) else (callbacks,):
                try:
                    callback()
                except Exception as exc:  # a listener must not break the stream
                    report_broken_observer(exc)
        if self.flow is not None:
            self.flow.ended(self)
        if not self.delivering:
            self._deliver()

    def cancel(self, reason: str | None = None) -> None:
        """Stop the producer and end the stream with :class:`StreamCancelledError`.

        A stream with an ``on_abandoned`` callback (an agent's replies) calls it first, so
        that its producer (the agent's task) stops too. A ``reason`` (the canceller knows
        why) is the error's text, kept by the stream: the streams it holds that giving up
        on it cancels tell it too (see :meth:`why_cancelled`), whenever they end.
        """
        if self.done:
            return
        if reason is not None:
            self.reason = reason
        _giving_up.give_up(self)
        self.cancel_now()

    def cancel_now(self) -> None:
        """End the stream with :class:`StreamCancelledError` now, without ``on_abandoned``."""
        if self.done:
            return
        if self.started:
            self._dispose_subscription()
        self.started = True
        self._source = None
        self.fail(StreamCancelledError(self.why_cancelled() or _CANCELLED))

    def why_cancelled(self) -> str | None:
        """The reason it is cancelled for: its own, else that of a stream holding it (an
        agent's replies, cancelled for a reason, cancel their messages for it too)."""
        if self.reason is None:
            for holder in self.wanted_by:
                if holder.reason is not None:
                    return holder.reason
        return self.reason

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the stream ends (at once if it has); it gets no error."""
        if self.done:
            callback()
        else:
            self._end_callbacks = one_more(self._end_callbacks, callback)

    def detached_copy(self) -> ReplayCore[T]:
        """A finished copy of the record so far, ended by :class:`StreamCancelledError`.

        A view cancelled on its own moves to it: its consumers get the pieces so far, then
        the error, while the stream goes on for its other consumers.
        """
        error = StreamCancelledError(_VIEW_CANCELLED)
        copy = ReplayCore(prefill=list(self.pieces), error=error, piece_type=self.piece_type)
        copy.base = self.base
        copy.sent = self.base + len(copy.pieces)
        copy.packed = None if self.packed is None else self.packed.copy()
        copy.flow = None if self.flow is None else self.flow.frozen_copy()
        if self.waits is not None:
            self.waits.wake(self.done)  # its consumers that wait here move to the copy
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
            core = source.core
            self.producer = core  # its pieces are that stream's
            self._source = core.add_observer(self.accept, self.fail, self.complete, sink=self)
        elif isinstance(source, DirectSource):  # it calls this core directly
            self._source = source.attach(self)
        else:
            loop = self.loop
            if loop is not None:  # it may push from a thread or a callback: not a deadlock
                self.when_done(outside_source(self, loop))
            self._source = source.subscribe(self.on_next, self.on_error, self.on_completed)

    def defer(self, starter: Callable[[], None]) -> None:
        """Make an open core start lazily: ``starter`` is called at its first consumer."""
        self._source = Deferred(starter)
        self.started = False

    def adopt_loop(self) -> None:
        """Belong to the running loop, if it belongs to none yet (a producer waits in it, for
        room in a stream that no consumer has started: its wake-ups go there)."""
        if self.loop is None:
            self.loop, self.thread = asyncio.get_running_loop(), threading.get_ident()

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
        subscription = cast("abc.DisposableBase | Callable[[], None] | None", self._source)
        self._source = None
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
        each observer, unlinked from it first; past :data:`NESTED` streams fed inside one
        another it is queued, as this delivery with the observers to tell (``ends``), for
        the outermost step to run.
        """
        queued = None  # the steps queued past NESTED, if this end is the outermost step
        self.delivering = True
        try:
            pieces = self.pieces
            while self.sent < self.base + len(pieces):
                piece = pieces[self.sent - self.base]
                self.sent += 1
                self._pass_on(piece)
            if ends is None and self.done and self.observers:
                ends, self.observers = self.observers, ()
            if ends:
                nesting = _nesting  # (NESTED deep at most: see there)
                depth = nesting.depth
                if depth >= NESTED:
                    nesting.queue(ReplayCore._deliver, self, ends)
                else:
                    nesting.depth = depth + 1
                    try:
                        for observer in ends:
                            sink = observer[4]  # (a feeder with a flow: its flow ended it)
                            if sink is not None and self.flow is None and sink.flow is not None:
                                sink.flow.drop_feeder(self)
                            self.send_end(observer)
                    finally:
                        nesting.depth = depth
                    if depth == 0:
                        queued = nesting.later
        finally:
            self.delivering = False
        if queued:  # (run once this core's delivery is over: it may feed this core again)
            _nesting.run(queued)
        waits = self.waits
        if waits is not None and waits.futures:
            waits.wake(self.done)
        if self.done and self.flow is None:  # an ended stream of its own pieces (waiters woken):
            audience = self.audience  # nobody reads on: its audience goes, unless it holds checks
            self.waits, self.audience = None, audience if audience and audience.at_release else None

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
        observer: Observer[T] = (on_next, on_error, on_completed, consumer, sink)
        if not self.observe(observer):
            return _noop

        def dispose() -> None:
            self.stop_observing(observer)

        return dispose

    def observe(self, observer: Observer[T]) -> bool:
        """As :meth:`add_observer`, for a whole observer (stop it with :meth:`stop_observing`).

        Returns:
            Whether it observes the stream now (``False``: it has been told the end already,
            nothing to stop). For a caller that keeps the core anyway (a flattening
            following its parts): no disposer is made per observer.
        """
        on_next, on_error, _, _, sink = observer
        if not self.started:
            self.start()
        flow = self.flow
        pieces = self.pieces
        if self.sent:  # a record to replay first (an early observer has none)
            # (a record with a flow is pinned meanwhile: nothing is released, so base stays;
            # a record of str may pack its front meanwhile: each piece is read by its number)
            if flow is not None and flow.settle(self, pin=True):  # (none sent: none released)
                on_error(flow.released_error(self))
                return False
            index = 0
            try:
                while index < self.sent:  # pieces not passed on yet will come live
                    offset = index - self.base
                    on_next(pieces[offset] if offset >= 0 else self.piece(index))
                    index += 1
            except Exception as exc:
                report_broken_observer(exc)
                return False
            finally:
                if flow is not None:
                    flow.unpin()
        if self.done and self.sent == self.base + len(pieces):
            self.send_end(observer)
            return False
        self.observers = (*self.observers, observer)
        if sink is not None and sink.flow is not None:
            sink.flow.add_feeder(self)  # the sink's pressure counts from now on
        if flow is not None and flow.blocked:
            flow.recheck(self)  # a subscriber reads at once: there may be room now
        return True

    def stop_observing(self, observer: Observer[T]) -> None:
        """Stop informing an observer :meth:`observe` gave (the stream may be abandoned now:
        for the reason the stream the observer fed was cancelled for, if any)."""
        self.remove(observer)
        if not self.done:  # (one stopped after the end was told the end: it gave up nothing)
            sink = observer[4]
            _giving_up.check_abandoned(self, None if sink is None else sink.reason)

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
            _giving_up.tell_end(self, on_error, on_completed)
            return _noop
        watch = _giving_up.EndWatch(self, on_error, on_completed)
        self.when_done(watch.end)
        return watch.dispose

    def remove(self, observer: Observer[T]) -> None:
        """Stop informing ``observer``."""
        kept = tuple(o for o in self.observers if o is not observer)
        if len(kept) < len(self.observers):
            self.observers = kept
            sink = observer[4]
            if sink is not None and sink.flow is not None:
                sink.flow.drop_feeder(self)
            if self.flow is not None and self.flow.blocked:
                self.flow.recheck(self)

    # -- its flow: pacing and handles -------------------------------------------------------

    def has_room(self, feeding: bool = False) -> bool:
        """Whether a producer (or, ``feeding``, a feeder) may add a piece now (see
        ``Flow.has_room``): one with credit left may, without a call to the flow."""
        flow = self.flow
        if flow is None:
            return True
        if feeding:
            return flow.feed_credit > 0 or flow.has_room(self, feeding=True)
        return flow.credit > 0 or flow.has_room(self)

    async def await_room(self, feeding: bool = False) -> None:
        """Wait until a producer (or, ``feeding``, a feeder) may add a piece."""
        if self.flow is not None:
            await self.flow.wait_room(self, feeding)

    def released(self) -> int:
        """How many pieces from the first one the stream has released (past its window)."""
        flow = self.flow
        return 0 if flow is None else flow.settle(self)

    def unpace(self) -> None:
        """Stop exerting pressure for good: every producer waiting for room goes on."""
        if self.flow is not None:
            self.flow.unpace(self)

    # -- its consumers: their waits, and their giving up -----------------------------------

    def get_waits(self) -> _waiting.Waits:
        """The waits of its consumers (:mod:`miniagents.promising._waiting`), made at the first."""
        waits = self.waits
        if waits is None:
            waits = self.waits = _waiting.Waits()
        return waits

    def get_audience(self) -> _giving_up.Audience:
        """Who will still read it between its waits (an interaction whose input it is: its
        ``hold_reader()``), made at the first of them (:mod:`miniagents.promising._giving_up`)."""
        audience = self.audience
        if audience is None:
            audience = self.audience = _giving_up.Audience()
        return audience

    def await_change(self, reader: bool = False) -> Coroutine[Any, Any, None]:
        """Wait until a piece arrives or the stream ends (the caller has started the core).

        ``reader``: the caller is an ``async for`` reader (see ``Waits.start``); a hot reader
        makes the wait without this coroutine, with its waits' ``start`` and ``end``.
        """
        return (self.waits or self.get_waits()).change(self, reader)

    async def await_done(self) -> None:
        """Wait for the end of the stream (starting it if needed), raising nothing."""
        while not self.done:
            if self.started:
                await (self.waits or self.get_waits()).change(self)
            else:
                self.start()  # a synchronous source may finish right here

    def await_end(self) -> Coroutine[Any, Any, None]:
        """Wait for the end of a started stream as a bystander (no consumer), raising nothing."""
        return _waiting.await_end(self)

    def await_needed(self) -> Coroutine[Any, Any, None]:
        """Wait for the end as the producer of its first holder, which needs it."""
        return _waiting.await_needed(self)

    async def acollect(self, gate: ReplayCore[Any] | None = None) -> list[T]:
        """Wait for the end of the stream; return every piece or raise its error.

        ``gate``: the caller is an agent awaiting its whole input through its view (gated by
        its replies): the hold of its input from the interaction's start ends, this wait
        needing every piece itself (see ``Flow.let_go_reader``).

        Raises:
            ReplayWindowError: if the stream has released pieces (past its replay window).
        """
        if self.flow is not None:  # (its flow pins the record meanwhile: see Flow.acollect)
            return await self.flow.acollect(self, gate)
        await self.await_done()
        self.raise_if_failed()
        return self.record()

    def consumed(self) -> bool:
        """Whether a consumer is subscribed or waiting for the next piece, or holds it."""
        return _giving_up.consumed(self)

    def check_abandoned(self) -> None:
        """Call ``on_abandoned`` if the last consumer of a running stream gave up."""
        _giving_up.check_abandoned(self)

    # -- errors --------------------------------------------------------------------------

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
    ``__init__``. Nothing writes them: its consumers get the record and the end at once.
    """

    __slots__ = ()

    base = 0
    done = started = True
    error = _traceback = _source = _end_callbacks = packed = on_abandoned = loop = None
    thread = producer = waits = audience = validator = flow = reason = None
    _pack_at = _NEVER
    handed_over = delivering = False
    wanted_by = observers = ()


def joined_text(core: ReplayCore[str]) -> str:
    """The pieces kept by a core of ``str`` joined (a message's text, packed front included)."""
    packed = core.packed
    rest = "".join(core.pieces)
    return rest if packed is None else packed.text() + rest
