"""Observables fed by asyncio: the bridge from ``async`` producers to the reactive core.

Each subscription starts one task (see :mod:`miniagents.promising._tasks`) that pulls
from the producer and pushes into the observer; disposing the subscription cancels the
task, which closes an async generator producer::

    async producer:  a . b . c . (end)
    observable:      --a--b--c--|

A task that feeds a replay core directly (:meth:`DirectSource.attach`) pulls the next item
only when the core has room: no further than its high-water mark ahead of the slowest
consumer (see :mod:`miniagents.promising.limits`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from reactivex import abc
from reactivex.disposable import Disposable

from miniagents.arguments import a_class
from miniagents.promising._replay import CancelReason, DirectSource, ReplayCore
from miniagents.promising._reporting import report_lost_error
from miniagents.promising._tasks import cancel_task, cancelled_error, forget_task, spawn
from miniagents.promising.errors import StreamArgumentError, StreamSourceError

__all__ = [
    "PieceObserver",
    "TaskObservable",
    "check_async_iterable",
    "from_async_iterable",
    "from_awaitable_factory",
    "pull",
    "pump",
]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class PieceObserver(Protocol[T_contra]):
    """What a pump pushes into: a core, a reactivex observer, a flattening."""

    def on_next(self, value: T_contra, /) -> None: ...

    def on_error(self, error: Exception, /) -> None: ...

    def on_completed(self) -> None: ...


def _report(observer: PieceObserver[T], error: BaseException) -> None:
    """Pass ``error`` on; reactivex types it as ``Exception``, the core accepts any error."""
    observer.on_error(error)  # type: ignore[arg-type]


def check_async_iterable(source: object, what: str) -> None:
    """Fail at once if ``source`` cannot be an async iterable.

    Raises:
        StreamSourceError: naming the type and what to pass instead.
    """
    if not hasattr(type(source), "__aiter__"):
        raise StreamSourceError(
            f"{what} needs an async iterable (or an Observable) as its source, but got "
            f"{a_class(type(source))} ({source!r:.60}). Pass an async generator, e.g. "
            "`async def tokens(): yield 'Hel'; yield 'lo'`, or wrap a list: "
            "`async def items(): for item in my_list: yield item`."
        )


def _open(source: AsyncIterable[T], what: str) -> AsyncIterator[T]:
    """Call ``source.__aiter__()``, turning a failure into a clear error."""
    try:
        iterator = source.__aiter__()
    except Exception as error:
        raise StreamSourceError(
            f"The source of {what} is not an async iterable: calling its __aiter__() "
            f"raised {type(error).__name__}: {error}. Pass an async generator or an Observable."
        ) from error
    if not hasattr(type(iterator), "__anext__"):
        raise StreamSourceError(
            f"The source of {what} is not an async iterable: its __aiter__() returned "
            f"{a_class(type(iterator))}, which has no __anext__. Pass an async generator."
        )
    return iterator


async def pump(
    source: AsyncIterable[T],
    observer: PieceObserver[T],
    what: str,
    gate: ReplayCore[Any] | None = None,
    feeding: bool = False,
    stop: _Stop | None = None,
) -> None:
    """Pull ``source`` into ``observer``, waiting for room in ``gate`` before every pull.

    ``feeding``: the source feeds ``gate`` as the part a flattener follows now, so the
    flattener's backlog does not hold it back (see ``Flow.has_room``). ``stop``: this
    task's stop, told when the source has ended (the end it passes on disposes the stop,
    which then leaves this task to close its source: see :class:`_Stop`).

    Once the task is asked to cancel (a stop, a dispose, its context's exit), an item the
    source gives all the same (one that finishes the read it was asked as it is cancelled,
    as some libraries do), or its end, is dropped, and the task ends cancelled, asking for no
    other, with the cancel's message (see :func:`cancel_task`).
    """
    iterator: AsyncIterator[T] | None = None
    if gate is not None and gate.flow is None:
        gate = None  # (a stream without a flow never makes its producer wait: see limits)
    # a core fed from its own task, on its loop's thread: no hop to check (see on_next)
    push = observer.accept if isinstance(observer, ReplayCore) else observer.on_next
    task = _this_task()
    cancelling = task.cancelling
    try:
        iterator = _open(source, what)
        while True:
            if gate is not None and not gate.has_room(feeding):
                await gate.await_room(feeding)
                if gate.done:
                    break
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                if cancelling():  # asked to cancel: the source caught it and returned
                    raise cancelled_error(task) from None
                break
            if cancelling():  # asked to cancel: the source went on all the same
                raise cancelled_error(task)
            push(item)
    except BaseException as error:
        if isinstance(error, asyncio.CancelledError):
            _report(observer, error)
            raise
        if cancelling():  # stopped: the stream has ended already
            report_lost_error(
                error, f"The source of {a_class(what)}, stopped as it was given up on,"
            )
        else:
            if stop is not None:
                stop.ended = True
            _report(observer, error)
    else:
        if stop is not None:
            stop.ended = True
        observer.on_completed()
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
        forget_task(task)  # (its last step: see forget_task)


def pull(
    source: AsyncIterable[T],
    observer: PieceObserver[T],
    what: str,
    gate: ReplayCore[Any] | None = None,
    feeding: bool = False,
) -> Callable[[], None]:
    """Pump ``source`` into ``observer`` in a new task (see :func:`pump`); return its stop.

    The stop's ``task`` is the pumping task (the producer, for the deadlock watch).
    """
    stop = _Stop(gate)
    stop.task = spawn(pump(source, observer, what, gate, feeding, stop), what)
    return stop


class _Stop:
    """What stops a pumping task (called), and the task itself.

    A stop of a task that feeds a core (``gate``) cancelled for a reason gives the task
    that reason as its cancel's message (see :func:`cancel_task`). Once the task's source
    has ended (``ended``: the task passes its end on, which disposes this stop), the stop
    leaves the task alone: it still closes its source, which a cancel would interrupt.
    """

    __slots__ = ("ended", "gate", "task")

    def __init__(self, gate: ReplayCore[Any] | None) -> None:
        self.task: asyncio.Task[None] | None = None  # (set once the task is made)
        self.gate = gate
        self.ended = False

    def __call__(self) -> None:
        task = self.task
        if self.ended or task is None:
            return
        gate = self.gate
        if gate is None or gate.reason is None:
            task.cancel()
        else:
            cancel_task(task, CancelReason(gate.reason))


async def _await_one(
    factory: Callable[[], Awaitable[T]], observer: abc.ObserverBase[T], stop: _Stop
) -> None:
    """Await ``factory()`` into ``observer``: its value and the end, or its error.

    Once the task is asked to cancel (a dispose, its context's exit), a value the resolver
    returns all the same (it caught the cancellation) is dropped, and the task ends
    cancelled, with the cancel's message, as :func:`pump` does.
    """
    task = _this_task()
    try:
        awaitable: object = factory()  # (typed Awaitable: code mypy does not check may err)
        if not inspect.isawaitable(awaitable):
            raise StreamArgumentError(
                "The resolver of a Promise must return an awaitable (the promise awaits it), "
                f"but it returned {type(awaitable).__name__}: make it an `async def` "
                "function, or use Promise(prefill=value) for a ready value."
            )
        value = await awaitable
        if task.cancelling():  # asked to cancel: the resolver returned all the same
            raise cancelled_error(task)
    except BaseException as error:
        _report(observer, error)
        if isinstance(error, asyncio.CancelledError):
            raise
    else:
        stop.ended = True
        observer.on_next(value)
        observer.on_completed()
    finally:
        forget_task(task)  # (its last step: see forget_task)


def _this_task() -> asyncio.Task[Any]:
    """The task running now (a pump always runs in one: see :func:`pull`, TaskObservable)."""
    task = asyncio.current_task()
    if task is None:
        raise StreamSourceError(
            "A source of a stream was pumped outside a task; pump it with pull() or "
            "from_async_iterable(), which start its task."
        )
    return task


class TaskObservable(DirectSource[T]):
    """An observable whose every subscription runs ``run(observer, gate, stop)`` in a new task.

    (``stop``: the subscription's stop, which ``run`` tells when its source has ended.)
    """

    def __init__(
        self,
        run: Callable[
            [abc.ObserverBase[T], ReplayCore[Any] | None, _Stop], Coroutine[Any, Any, None]
        ],
        what: str,
    ) -> None:
        """Remember what to run; nothing starts before a subscription."""
        super().__init__()
        self.body = run
        self.what = what

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._run(observer, None)

    def attach(self, core: ReplayCore[T]) -> abc.DisposableBase:
        """Start the task for ``core``, pulling only while it has room."""
        return self._run(core, core)

    def _run(
        self, observer: abc.ObserverBase[T], gate: ReplayCore[Any] | None
    ) -> abc.DisposableBase:
        stop = _Stop(gate)
        stop.task = task = spawn(self.body(observer, gate, stop), self.what)
        if gate is not None:
            gate.producer = task  # (for the deadlock watch: the task makes its pieces)
        return Disposable(stop)


def from_async_iterable(source: AsyncIterable[T], what: str) -> TaskObservable[T]:
    """Return an observable that pulls ``source`` in a task started on subscription.

    Marble::

        source:  a . b . c . (end)
        result:  --a--b--c--|

    Args:
        source: The async iterable to pull from.
        what: Names the task (``miniagents:<what>``) and the stream in error messages.

    Raises:
        StreamSourceError: if ``source`` is not an async iterable.
    """
    check_async_iterable(source, what)
    return TaskObservable(
        lambda observer, gate, stop: pump(source, observer, what, gate, stop=stop), what
    )


def from_awaitable_factory(factory: Callable[[], Awaitable[T]], what: str) -> TaskObservable[T]:
    """Return an observable that awaits ``factory()`` in a task and emits its one result.

    Marble::

        factory():  ....(x)
        result:     ----x|

    Args:
        factory: Called once per subscription; its awaitable gives the value.
        what: Names the task (``miniagents:<what>``) and the stream in error messages.
    """
    return TaskObservable(lambda observer, _gate, stop: _await_one(factory, observer, stop), what)
