"""The reactive core: a replay record that every promise and stream is built on.

A :class:`ReplayCore` subscribes once to its source (when first needed), records every
piece, and replays the record to each new consumer before passing on the live pieces, so
that every consumer, early or late, sees the whole stream while the producer runs once::

    source:        --a--b--c--|
    observer 1:    --a--b--c--|          (subscribed at the start)
    observer 2:          (ab)c--|        (subscribed after b: replayed, then live)
    observer 3:                   (abc|) (subscribed after the end: all replayed)

A core of a stream of many pieces has a :class:`~miniagents.promising._flow.Flow`, which
releases the pieces no live consumer needs once the stream has passed its replay window
(``base`` counts them) and tells producers when to wait; see :mod:`miniagents.promising.limits`.

The core is built in layers, one module each: :mod:`~miniagents.promising._consumers`
(observers, waiting, collecting, giving up), :mod:`~miniagents.promising._producers` (its
source, pieces from any thread), :mod:`~miniagents.promising._delivery` (passing the
record on in order) and this one (recording, overflow, ending, copies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from reactivex import Observable, abc

from miniagents.promising._consumers import Observer
from miniagents.promising._delivery import DeliverySide
from miniagents.promising._flow import Flow
from miniagents.promising._replay_observable import ReplayObservable
from miniagents.promising._reporting import report_broken_observer, report_lost_error
from miniagents.promising.errors import StreamCancelledError, StreamOverflowError
from miniagents.promising.limits import Overflow, stream_limits

__all__ = ["ReplayCore", "ReplayObservable"]

T = TypeVar("T")


class ReplayCore(DeliverySide[T], abc.ObserverBase[T]):
    """Records a stream's pieces and its end, and replays them to every consumer."""

    __slots__ = (
        "__weakref__",
        "_end_callbacks",
        "_traceback",
        "base",
        "done",
        "error",
        "flow",
        "piece_type",
        "pieces",
        "validator",
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
        self.pieces: list[T] = prefill if prefill is not None else []
        self.base = 0  # pieces released from the front of the record (see Flow)
        self.sent = len(self.pieces)  # how many pieces observers have been given
        self._delivering = False
        self.done = source is None and not open_ended
        self.error: BaseException | None = None
        self._traceback: TracebackType | None = None
        self.handed_over = False  # the error went on to another stream, which reports it
        self._source = source
        self.started = source is None
        self._end_callbacks: list[Callable[[], None]] | None = None
        self._subscription: abc.DisposableBase | Callable[[], None] | None = None
        self.observers: tuple[Observer[T], ...] = ()
        self._waiters: list[asyncio.Future[None]] | None = None  # made when first needed
        self.on_abandoned: Callable[[], None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self.validator = validator
        self.piece_type = piece_type
        self.flow = None if paced is None else Flow(stream_limits.get(), paced, overflow)
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

    # -- recording ---------------------------------------------------------------

    def unpace(self) -> None:
        """Stop exerting pressure for good: every producer waiting for room goes on."""
        if self.flow is not None:
            self.flow.unpace(self)

    def accept(self, piece: T) -> None:
        """Record ``piece`` and pass it to every observer (on the loop's thread)."""
        if self.done:
            return
        if self.validator is not None:
            problem = self.validator(piece)
            if problem is not None:
                self.fail(problem)
                return
        pieces = self.pieces
        flow = self.flow
        if flow is not None:
            hot = flow.credit <= 0 and flow.overflow != "buffer"  # a hot source may outrun
            if hot and not flow.has_room(self) and self._overflow(flow):
                return
            if flow.credit > 0:
                flow.credit -= 1
            if len(pieces) >= flow.check_at and not self._delivering:
                flow.release(self)
        pieces.append(piece)
        if self._delivering:
            return  # the running delivery passes it on, in order
        self.sent = self.base + len(pieces)  # outside a delivery, everything was sent
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
            self._wake()

    def _overflow(self, flow: Flow) -> bool:
        """Apply the overflow policy to a piece from a hot source; whether to drop it."""
        if flow.overflow == "drop_newest":
            return True
        if flow.overflow == "drop_oldest":
            flow.skip_oldest(self)
            return False
        self.fail(
            StreamOverflowError(
                f"A hot source outran the consumers of {flow.what}: a piece came while "
                f"{flow.high_water} pieces were waiting for the slowest one, and the overflow "
                "policy is 'error'. Consume it faster, raise the high_water_mark, or choose "
                "overflow='buffer', 'drop_oldest' or 'drop_newest'."
            )
        )
        return True

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
        self._end()

    def complete(self) -> None:
        """End the stream normally."""
        if not self.done:
            self._end()

    def cancel(self) -> None:
        """Stop the producer and end the stream with :class:`StreamCancelledError`.

        A stream with an ``on_abandoned`` callback (an agent's replies) calls it first, so
        that its producer (the agent's task) stops too.
        """
        if self.done:
            return
        self.give_up()  # an agent's replies: its task stops, then cancels this stream
        self.cancel_now()

    def cancel_now(self) -> None:
        """End the stream with :class:`StreamCancelledError` now, without ``on_abandoned``."""
        if self.done:
            return
        self.started = True
        self._source = None
        self._dispose_subscription()
        self.fail(StreamCancelledError("This stream was cancelled with cancel() before it ended."))

    def _end(self) -> None:
        self.done = True
        self.on_abandoned = None  # nothing to give up any more (and no reference cycle)
        self._dispose_subscription()
        callbacks, self._end_callbacks = self._end_callbacks, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception as exc:  # a listener must not break the stream
                report_broken_observer(exc)
        flow = self.flow
        if flow is not None and (flow.room_waiters or flow.feed_waiters or flow.feeders):
            flow.blocked = True  # wake any waiting producer: there is nothing to wait for
            flow.recheck(self)
        if not self._delivering:
            self._deliver()

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the stream ends (at once if it has); it gets no error."""
        if self.done:
            callback()
        elif self._end_callbacks is None:
            self._end_callbacks = [callback]
        else:
            self._end_callbacks.append(callback)

    def detached_copy(self) -> ReplayCore[T]:
        """A finished copy of the record so far, ended by :class:`StreamCancelledError`.

        A view cancelled on its own moves to it: its consumers get the pieces so far, then
        the error, while the stream goes on for its other consumers.
        """
        error = StreamCancelledError("This stream was cancelled with cancel() before it ended.")
        copy = ReplayCore(prefill=list(self.pieces), error=error, piece_type=self.piece_type)
        copy.base = self.base
        copy.sent = self.base + len(copy.pieces)
        copy.flow = None if self.flow is None else self.flow.frozen_copy()
        self._wake()  # its consumers that wait here move to the copy
        return copy


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
    _subscription = _waiters = on_abandoned = loop = thread = None
    validator = flow = None
    handed_over = _delivering = False
    observers = ()
