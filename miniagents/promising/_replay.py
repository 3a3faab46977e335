"""The reactive core: a replay buffer that every promise and stream is built on.

A :class:`ReplayCore` subscribes once to its source observable (when first needed),
records every piece, and replays the record to each new observer before passing on
the live pieces, so that every consumer, early or late, sees the whole stream while
the producer runs once::

    source:        --a--b--c--|
    observer 1:    --a--b--c--|          (subscribed at the start)
    observer 2:          (ab)c--|        (subscribed after b: replayed, then live)
    observer 3:                   (abc|) (subscribed after the end: all replayed)

Async consumers wait on per-waiter futures that are woken on every change, so one
producer serves many ``async for`` loops and ``await`` expressions without queues.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar, cast

from reactivex import Observable, abc

from miniagents.promising._replay_observable import ReplayObservable
from miniagents.promising._reporting import (
    mark_received,
    report_broken_observer,
    report_lost_error,
    was_received,
)
from miniagents.promising._sources import TaskObservable
from miniagents.promising._tasks import no_loop_error
from miniagents.promising.errors import StreamCancelledError

__all__ = ["ReplayCore", "ReplayObservable"]

T = TypeVar("T")

_OnNext = Callable[[T], None]
_OnError = Callable[[BaseException], None]
_OnCompleted = Callable[[], None]
_Observer = tuple[_OnNext[T], _OnError, _OnCompleted, bool]
"""on_next, on_error, on_completed, and whether it is a consumer (not another stream)."""


def _noop() -> None:
    """Dispose of nothing."""


class ReplayCore(abc.ObserverBase[T]):
    """Records a stream's pieces and its end, and replays them to every observer."""

    __slots__ = (
        "__weakref__",
        "_delivering",
        "_end_callbacks",
        "_loop",
        "_observers",
        "_sent",
        "_source",
        "_subscription",
        "_thread",
        "_traceback",
        "_waiters",
        "done",
        "error",
        "kind",
        "on_abandoned",
        "pieces",
        "started",
        "validator",
    )

    def __init__(
        self,
        source: Observable[T] | None = None,
        prefill: list[T] | None = None,
        error: BaseException | None = None,
        validator: Callable[[T], BaseException | None] | None = None,
        kind: object = None,
        open_ended: bool = False,
    ) -> None:
        """Create a core fed by ``source``, or a finished one holding ``prefill`` (and ``error``).

        Args:
            source: The observable to subscribe to when started; ``None`` for a finished core.
            prefill: The pieces known from the start.
            error: For a finished core, the error that ended it.
            validator: Checks each piece from ``source``; a returned error ends the stream.
            kind: A tag the owner uses to recognise cores whose pieces it already checked.
            open_ended: Without a source, stay open: the owner pushes pieces with
                :meth:`accept` and ends the stream with :meth:`complete` or :meth:`fail`.
        """
        self.pieces: list[T] = prefill if prefill is not None else []
        self._sent = len(self.pieces)  # how many pieces observers have been given
        self._delivering = False
        self.done = source is None and not open_ended
        self.error: BaseException | None = error
        self._traceback: TracebackType | None = error.__traceback__ if error else None
        self._source = source
        self.started = source is None
        self._end_callbacks: list[Callable[[], None]] | None = None
        self.on_abandoned: Callable[[], None] | None = None
        self._subscription: abc.DisposableBase | Callable[[], None] | None = None
        self._observers: tuple[_Observer[T], ...] = ()
        self._waiters: list[asyncio.Future[None]] | None = None  # made when first needed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self.validator = validator
        self.kind = kind

    # -- producing ---------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the source, once; later calls do nothing."""
        if self.started:
            return
        source = cast("Observable[T]", self._source)
        try:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.get_ident()
        except RuntimeError:
            # A purely synchronous source (e.g. reactivex.testing) needs no loop; one run
            # by a task does, and the stream stays startable once a loop runs.
            if isinstance(source, TaskObservable):
                raise no_loop_error(source.what) from None
        self.started = True
        self._source = None
        if isinstance(source, ReplayObservable):
            self._subscription = source.core.add_observer(self.accept, self.fail, self.complete)
        elif isinstance(source, TaskObservable):  # the task calls this core directly
            self._subscription = source.subscribe_direct(self)
        else:
            self._subscription = source.subscribe(self.on_next, self.on_error, self.on_completed)

    def on_next(self, piece: T) -> None:
        """Accept a piece from any thread (pieces from other threads hop onto the loop)."""
        if self._thread is None or threading.get_ident() == self._thread:
            self.accept(piece)  # the hot path: on the loop's thread, no hop
        else:
            cast(asyncio.AbstractEventLoop, self._loop).call_soon_threadsafe(self.accept, piece)

    def on_error(self, error: BaseException) -> None:
        """Accept the error that ends the stream, from any thread."""
        self._on_loop(self.fail, error)

    def on_completed(self) -> None:
        """Accept the normal end of the stream, from any thread."""
        self._on_loop(self.complete)

    def _on_loop(self, method: Callable[..., None], *args: object) -> None:
        if self._thread is not None and threading.get_ident() != self._thread:
            cast(asyncio.AbstractEventLoop, self._loop).call_soon_threadsafe(method, *args)
        else:
            method(*args)

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
        pieces.append(piece)
        if self._delivering:
            return  # the running delivery passes it on, in order
        self._delivering = True
        try:  # the fast path: pass this one piece on
            self._sent = len(pieces)
            self._pass_on(piece)
        finally:
            self._delivering = False
        if self._sent < len(pieces) or self.done:
            self._deliver()  # what arrived while observers were being called
        elif self._waiters:
            self._wake()

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
        self.error = error
        self._traceback = error.__traceback__
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
        self._give_up()  # an agent's replies: its task stops, then cancels this stream
        self._cancel_now()

    def _cancel_now(self) -> None:
        if self.done:
            return
        self.started = True
        self._source = None
        self._dispose_subscription()
        error = StreamCancelledError("This stream was cancelled with cancel() before it ended.")
        self.fail(error)

    def _end(self) -> None:
        self.done = True
        self._dispose_subscription()
        callbacks, self._end_callbacks = self._end_callbacks, None
        for callback in callbacks or ():
            try:
                callback()
            except Exception as exc:  # a listener must not break the stream
                report_broken_observer(exc)
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

    async def wait_done(self) -> None:
        """Wait for the end of the stream (starting it if needed), raising nothing."""
        while not self.done:
            if self.started:
                await self.wait()
            else:
                self.start()  # a synchronous source may finish right here

    def _deliver(self) -> None:
        """Pass on every recorded piece not passed on yet, then the end if it came.

        A piece or an end that arrives while observers are being called (a source that
        emits from inside an observer) is recorded and passed on by this same loop, so
        that every observer sees the pieces in the order of the record.
        """
        self._delivering = True
        try:
            pieces = self.pieces
            while self._sent < len(pieces):
                piece = pieces[self._sent]
                self._sent += 1
                self._pass_on(piece)
            if self.done:
                observers, self._observers = self._observers, ()
                for observer in observers:
                    self._send_end(observer)
        finally:
            self._delivering = False
        if self._waiters:
            self._wake()

    def _pass_on(self, piece: T) -> None:
        for observer in self._observers:
            try:
                observer[0](piece)
            except Exception as exc:  # a broken observer must not break the stream
                self._remove(observer)
                report_broken_observer(exc)

    def _remove(self, observer: _Observer[T]) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)

    def _send_end(self, observer: _Observer[T]) -> None:
        try:
            if self.error is None:
                observer[2]()
            else:
                if observer[3]:
                    mark_received(self.error)
                observer[1](self.error)
        except Exception as exc:
            report_broken_observer(exc)

    def _dispose_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        if isinstance(subscription, abc.DisposableBase):
            subscription.dispose()
        else:
            subscription()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # -- consuming ---------------------------------------------------------------

    def add_observer(
        self,
        on_next: _OnNext[T],
        on_error: _OnError,
        on_completed: _OnCompleted,
        *,
        consumer: bool = False,
    ) -> Callable[[], None]:
        """Replay the record to a new observer, then keep it informed; return its disposer.

        ``consumer`` tells that the observer is an end consumer (not another stream passing
        the pieces on): an error it gets counts as received.
        """
        self.start()
        observer: _Observer[T] = (on_next, on_error, on_completed, consumer)
        pieces = self.pieces
        index = 0
        try:
            while index < self._sent:  # pieces not passed on yet will come live
                on_next(pieces[index])
                index += 1
        except Exception as exc:
            report_broken_observer(exc)
            return _noop
        if self.done and self._sent == len(pieces):
            self._send_end(observer)
            return _noop
        self._observers = (*self._observers, observer)

        def dispose() -> None:
            self._remove(observer)
            self._check_abandoned()

        return dispose

    async def wait(self) -> None:
        """Wait until a piece arrives or the stream ends (the caller has started the core)."""
        loop = self._loop or asyncio.get_running_loop()
        waiter = loop.create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self._check_abandoned()
            raise

    def _check_abandoned(self) -> None:
        """Call ``on_abandoned`` if the last consumer of a running stream gave up.

        A consumer gives up when its wait is cancelled or its subscription disposed; the
        stream is abandoned when no consumer is left waiting or subscribed. Only streams
        with an ``on_abandoned`` callback (those an agent produces) react to it.
        """
        if self.on_abandoned is None or self.done or self._observers:
            return
        if any(not waiter.done() for waiter in self._waiters or ()):
            return
        self._give_up()

    def _give_up(self) -> None:
        """Call ``on_abandoned`` once, if there is one (its errors are reported, not raised)."""
        on_abandoned, self.on_abandoned = self.on_abandoned, None
        if on_abandoned is None:
            return
        try:
            on_abandoned()
        except Exception as exc:  # giving up must not fail the consumer that gave up
            report_broken_observer(exc)

    async def acollect(self) -> list[T]:
        """Wait for the end of the stream; return every piece or raise its error."""
        await self.wait_done()
        self.raise_if_failed()
        return self.pieces

    @property
    def error_received(self) -> bool:
        """Whether a consumer has been given the error that ended the stream."""
        return self.error is not None and was_received(self.error)

    def raise_if_failed(self) -> None:
        """Re-raise the stream's error, with its original traceback, if it failed."""
        error = self.error
        if error is not None:
            mark_received(error)
            raise error.with_traceback(self._traceback)

    def observable(self) -> ReplayObservable[T]:
        """Return the observable face of this core."""
        return ReplayObservable(self)  # not cached: a cache would make a reference cycle

    # -- lost errors ------------------------------------------------------------------

    def __del__(self) -> None:
        """Log an error that ended the stream if no consumer ever received it."""
        error = getattr(self, "error", None)
        if error is not None:
            report_lost_error(error)
