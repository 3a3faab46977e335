"""Following an outside observable: its pieces reach the loop's thread, its waits are no deadlock.

An observable that is not one of the library's own streams may emit from any thread (a
timer's, a socket reader's) and at any time (a callback). What follows it here sees every
notification on the thread of the loop that was running when it subscribed, in order (one
from another thread hops over with ``call_soon_threadsafe``), and the deadlock watch of
that loop stays off while the source may still push (see
:func:`~miniagents.promising._deadlock.outside_source`)::

    source (timer thread):   --a----b--|
    observer (loop thread):  ---a----b--|

Without a running loop (a synchronous source, e.g. ``reactivex.testing``) the observer is
subscribed as it is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from reactivex import Observable, abc

from miniagents.promising._deadlock import outside_source
from miniagents.promising._sources import PieceObserver

__all__ = ["follow_outside"]

T = TypeVar("T")


class _Hop(Generic[T]):
    """The observer of an outside source: it passes each notification on, on the loop's thread."""

    __slots__ = ("__weakref__", "loop", "observer", "release", "stopped", "subscription", "thread")

    def __init__(self, observer: PieceObserver[T], loop: asyncio.AbstractEventLoop) -> None:
        self.observer = observer
        self.loop = loop
        self.thread = threading.get_ident()
        self.stopped = False
        self.subscription: abc.DisposableBase | None = None
        # (the owner is this hop: once the source lets go of it, nothing can push any more)
        self.release = outside_source(self, loop)

    def on_next(self, piece: T) -> None:
        if threading.get_ident() == self.thread:
            if not self.stopped:
                self.observer.on_next(piece)
        else:
            self.loop.call_soon_threadsafe(self._next, piece)

    def on_error(self, error: Exception) -> None:
        if threading.get_ident() == self.thread:
            self._end(error)
        else:
            self.loop.call_soon_threadsafe(self._end, error)

    def on_completed(self) -> None:
        if threading.get_ident() == self.thread:
            self._end(None)
        else:
            self.loop.call_soon_threadsafe(self._end, None)

    def _next(self, piece: T) -> None:
        if not self.stopped:
            self.observer.on_next(piece)

    def _end(self, error: Exception | None) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.release()
        if error is None:
            self.observer.on_completed()
        else:
            self.observer.on_error(error)

    def dispose(self) -> None:
        """Stop following the source: unsubscribe, and pass nothing more on."""
        self.stopped = True
        self.release()
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.dispose()


def follow_outside(source: Observable[T], observer: PieceObserver[T]) -> Callable[[], None]:
    """Subscribe ``observer`` to ``source`` on the running loop's thread; return the unsubscribe.

    Every notification reaches ``observer`` on the loop's thread; one that comes after
    the unsubscribe (queued from another thread before it) is dropped.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop: a synchronous source, followed as it is
        return source.subscribe(observer.on_next, observer.on_error, observer.on_completed).dispose
    hop = _Hop(observer, loop)
    subscription = source.subscribe(hop.on_next, hop.on_error, hop.on_completed)
    if hop.stopped:  # it ended (or was disposed) while subscribing
        subscription.dispose()
    else:
        hop.subscription = subscription
    return hop.dispose
