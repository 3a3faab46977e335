"""The observable face of a replay core: every subscriber gets the full replay.

Marble::

    core:          --a--b--c--|
    subscriber 1:  --a--b--c--|      (subscribed at the start)
    subscriber 2:        (ab)c--|    (subscribed after b)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.promising._reach import handle_gone

if TYPE_CHECKING:
    from miniagents.promising._replay import ReplayCore

__all__ = ["ReplayObservable"]

T_co = TypeVar("T_co", covariant=True)


class ReplayObservable(Observable[T_co]):
    """The observable face of a :class:`ReplayCore`: every subscriber gets the full replay."""

    def __init__(self, core: ReplayCore[T_co]) -> None:
        # Observable.__init__ would only make a lock that few operators use: see `lock`.
        self._subscribe = None
        self.core = core
        self._lock: threading.RLock | None = None
        if core.flow is not None:
            core.flow.add_handle()  # a handle of the stream until it goes

    def __del__(self) -> None:
        handle_gone(getattr(self, "core", None))

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
