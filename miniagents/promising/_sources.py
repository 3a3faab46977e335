"""Observables fed by asyncio: the bridge from ``async`` producers to the reactive core.

Each subscription starts one task (see :mod:`miniagents.promising._tasks`) that pulls
from the producer and pushes into the observer; disposing the subscription cancels the
task, which closes an async generator producer::

    async producer:  a . b . c . (end)
    observable:      --a--b--c--|
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from miniagents.promising._tasks import spawn

__all__ = ["TaskObservable", "from_async_iterable", "from_awaitable_factory"]

T = TypeVar("T")


def _report(observer: abc.ObserverBase[T], error: BaseException) -> None:
    """Pass ``error`` on; reactivex types it as ``Exception``, the core accepts any error."""
    observer.on_error(error)  # type: ignore[arg-type]


async def _pump(source: AsyncIterable[T], observer: abc.ObserverBase[T]) -> None:
    iterator = source.__aiter__()
    try:
        async for item in iterator:
            observer.on_next(item)
    except BaseException as error:
        _report(observer, error)
        if isinstance(error, asyncio.CancelledError):
            raise
    else:
        observer.on_completed()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def _await_one(factory: Callable[[], Awaitable[T]], observer: abc.ObserverBase[T]) -> None:
    try:
        value = await factory()
    except BaseException as error:
        _report(observer, error)
        if isinstance(error, asyncio.CancelledError):
            raise
    else:
        observer.on_next(value)
        observer.on_completed()


class TaskObservable(Observable[T]):
    """An observable whose every subscription runs ``run(observer)`` in a new task."""

    def __init__(
        self, run: Callable[[abc.ObserverBase[T]], Coroutine[Any, Any, None]], what: str
    ) -> None:
        """Remember what to run; nothing starts before a subscription."""
        super().__init__()
        self.body = run
        self.what = what

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self.subscribe_direct(observer)

    def subscribe_direct(self, observer: abc.ObserverBase[T]) -> abc.DisposableBase:
        """Start the task for ``observer`` without reactivex's subscription wrapper."""
        task = spawn(self.body(observer), self.what)

        def dispose() -> None:
            task.cancel()

        return Disposable(dispose)


def from_async_iterable(source: AsyncIterable[T], what: str) -> Observable[T]:
    """Return an observable that pulls ``source`` in a task started on subscription.

    Marble::

        source:  a . b . c . (end)
        result:  --a--b--c--|

    Args:
        source: The async iterable to pull from.
        what: Names the task (``miniagents:<what>``) and the stream in error messages.
    """

    return TaskObservable(lambda observer: _pump(source, observer), what)


def from_awaitable_factory(factory: Callable[[], Awaitable[T]], what: str) -> Observable[T]:
    """Return an observable that awaits ``factory()`` in a task and emits its one result.

    Marble::

        factory():  ....(x)
        result:     ----x|

    Args:
        factory: Called once per subscription; its awaitable gives the value.
        what: Names the task (``miniagents:<what>``) and the stream in error messages.
    """

    return TaskObservable(lambda observer: _await_one(factory, observer), what)
