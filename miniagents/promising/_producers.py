"""The source side of a replay core: starting its producer, and pieces from any thread.

A core starts its source once, at its first consumer (or ``start()``): another core's
observable is followed directly, a :class:`~miniagents.promising._sources.DirectSource` (a
task pulling an async iterable, a lazily started agent, a flattening) feeds the core by
calling it, and any other observable is subscribed to. Pieces, errors and the end may come
from any thread: those from another thread hop onto the core's event loop first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar, cast

from reactivex import Observable, abc

from miniagents.promising._consumers import ConsumerSide
from miniagents.promising._deadlock import external_source
from miniagents.promising._replay_observable import ReplayObservable
from miniagents.promising._sources import Deferred, DirectSource
from miniagents.promising._tasks import no_loop_error

__all__ = ["SourceSide"]

T = TypeVar("T")


class SourceSide(ConsumerSide[T]):
    """The source-facing half of :class:`~miniagents.promising._replay.ReplayCore`."""

    __slots__ = ("_source", "_subscription", "loop", "started", "thread")

    _source: Observable[T] | None
    _subscription: abc.DisposableBase | Callable[[], None] | None
    loop: asyncio.AbstractEventLoop | None
    thread: int | None
    started: bool

    def accept(self, piece: T) -> None:
        """Record a piece (the recording side implements it)."""
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        """End the stream with ``error`` (the recording side implements it)."""
        raise NotImplementedError

    def complete(self) -> None:
        """End the stream normally (the recording side implements it)."""
        raise NotImplementedError

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
            self._subscription = source.core.add_observer(
                self.accept, self.fail, self.complete, sink=self.core
            )
        elif isinstance(source, DirectSource):  # it calls this core directly
            self._subscription = source.attach(self.core)
        else:
            loop = self.loop
            if loop is not None:  # it may push from a thread or a callback: not a deadlock
                external_source(loop, 1)
                self.core.when_done(lambda: external_source(loop, -1))
            self._subscription = source.subscribe(self.on_next, self.on_error, self.on_completed)

    def defer(self, starter: Callable[[], None]) -> None:
        """Make an open core start lazily: ``starter`` is called at its first consumer."""
        self._source = Deferred(starter)
        self.started = False

    def on_next(self, piece: T) -> None:
        """Accept a piece from any thread (pieces from other threads hop onto the loop)."""
        if self.thread is None or threading.get_ident() == self.thread:
            self.accept(piece)  # the hot path: on the loop's thread, no hop
        else:
            cast(asyncio.AbstractEventLoop, self.loop).call_soon_threadsafe(self.accept, piece)

    def on_error(self, error: BaseException) -> None:
        """Accept the error that ends the stream, from any thread."""
        self._on_loop(self.fail, error)

    def on_completed(self) -> None:
        """Accept the normal end of the stream, from any thread."""
        self._on_loop(self.complete)

    def _on_loop(self, method: Callable[..., None], *args: object) -> None:
        if self.thread is not None and threading.get_ident() != self.thread:
            cast(asyncio.AbstractEventLoop, self.loop).call_soon_threadsafe(method, *args)
        else:
            method(*args)

    def _dispose_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        if isinstance(subscription, abc.DisposableBase):
            subscription.dispose()
        else:
            subscription()
