"""What a virtual clock needs from its loop: a selector that jumps, executor jobs held.

:class:`JumpingSelector` stands in for the loop's selector. The loop asks it to wait for
I/O until its next timer (``select(timeout)``); when nothing is ready and the clock
advances by itself, it moves the clock to that timer instead of waiting, unless a job
handed to an executor is still running (:class:`ExecutorJobs`): its result is an event the
clock must not jump over. It turns Nagle's algorithm off on the TCP sockets it watches: the
kernel's wait for an ACK is another. :func:`on_running_loop` gives a running loop these for a
while; :func:`cancel_remaining_tasks` ends a loop's tasks before it is closed.
:class:`TimersInOrder` is the loop's ``call_at``: timers due at one time fire in the order
they were set, as they would on a real clock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import heapq
import itertools
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, Protocol, TypeVar

from typing_extensions import TypeVarTuple

from miniagents.testing.errors import VirtualTimeError

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = [
    "Clock",
    "ExecutorJobs",
    "JumpingSelector",
    "TimersInOrder",
    "cancel_remaining_tasks",
    "on_running_loop",
]

T = TypeVar("T")
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")

_Ready = list[tuple[selectors.SelectorKey, int]]


class Clock(Protocol):
    """What the idle machinery needs of a clock (``VirtualClock`` is one)."""

    auto_advance: bool

    @property
    def now(self) -> float: ...

    def time(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


ClockT = TypeVar("ClockT", bound=Clock)

_RESOLUTION = time.get_clock_info("monotonic").resolution
"""What asyncio adds to the loop's time to tell which timers are due (its clock's resolution)."""


class JumpingSelector(selectors.BaseSelector):
    """A selector that moves a virtual clock to the loop's next timer when the loop is idle.

    It also keeps the loop's clock resolution (what asyncio adds to the time to tell which
    timers are due) no finer than the spacing of floats at the clock's time: from 2**24 s
    on, adding asyncio's 1 ns to the time gives the same float, so a timer due now would
    never be due, and the loop would spin.

    The TCP sockets it watches send at once (see :meth:`register`), those the real selector
    watched already too.

    Args:
        selector: The real selector, which keeps the registrations.
        clock: The loop's clock.
        jobs: The loop's executor jobs (the clock holds while one runs).
        loop: The loop whose selector this is.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector,
        clock: Clock,
        jobs: ExecutorJobs,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._selector = selector
        self._clock = clock
        self._jobs = jobs
        self._loop = loop
        for key in selector.get_map().values():  # (watched before the clock came: see register)
            _send_at_once(key.fd)

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        """Watch ``fileobj`` (as the real selector does); a TCP socket sends at once from now on.

        The kernel holds a TCP socket's small writes while an earlier one is not yet
        acknowledged (Nagle's algorithm), for as long as the peer delays its ACK: some 40
        real ms on Linux's loopback, where uvicorn's second answer on a kept-alive
        connection waited so. The loop sees no I/O ready meanwhile and the clock would jump
        over that wait, to the client's timeout. asyncio turns the holding off
        (``TCP_NODELAY``) on the connections it makes, but not on those accepted from a
        socket made without ``IPPROTO_TCP`` (``socket.socket(AF_INET, SOCK_STREAM)``), so
        each TCP socket the loop watches has it turned off here.
        """
        key = self._selector.register(fileobj, events, data)
        _send_at_once(key.fd)
        return key

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._selector.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._selector.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> _Ready:
        """What is ready now; if nothing is, jump to the next timer, or wait for I/O.

        The loop passes the time until its next timer (``None``: it has none; ``0``: a
        callback is ready). It waits for real I/O (a thread's result wakes it too) when
        the clock is stopped, when a job runs in an executor, or when there is no timer.
        The loop tells the timers due right after, at the clock's time as it leaves it.
        """
        ready = self._select(timeout)
        resolution = max(_RESOLUTION, math.ulp(self._clock.now))
        setattr(self._loop, "_clock_resolution", resolution)  # noqa: B010 - asyncio's own
        return ready

    def _select(self, timeout: float | None) -> _Ready:
        ready = self._selector.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is None or not self._clock.auto_advance or self._jobs.busy:
            return self._selector.select(None)
        self._clock.advance(timeout)
        return []

    def close(self) -> None:
        self._selector.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._selector.get_map()


def _send_at_once(fd: int) -> None:
    """Turn Nagle's algorithm off on ``fd`` if it is a TCP socket (see ``register``)."""
    try:
        sock = socket.socket(fileno=fd)  # (takes the socket's family, type and protocol)
    except OSError:  # not a socket: a pipe, an event fd
        return
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            with contextlib.suppress(OSError):  # not connected yet, or closed meanwhile
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        sock.detach()  # the fd stays its owner's


class TimersInOrder:
    """A loop's ``call_at`` whose timers due at one time fire in the order they were set.

    A virtual clock stands still while the loop runs a step, so the timers set in one step
    with one delay are all due at the same time, where a real clock moves on between them
    (the one set first is due first). asyncio's heap of timers compares their times only
    and leaves such ties to chance: ten ``sleep(1)`` started in order woke shuffled. The
    timers made here break a tie by the order they were set. ``call_later`` (and so
    ``asyncio.sleep``) and ``asyncio.timeout`` all go through ``call_at``.

    Args:
        loop: The loop whose timers these are (its ``call_at`` is :meth:`call_at`).
        refuse: asyncio's own ``call_at`` of the loop, which refuses a closed loop and a
            time of ``None`` with asyncio's errors.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, refuse: Callable[..., asyncio.TimerHandle]
    ) -> None:
        self._loop = loop
        self._refuse = refuse
        self._order = itertools.count()

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Call ``callback(*args)`` at the loop's time ``when`` (as asyncio's ``call_at``)."""
        loop = self._loop
        given: object = when  # (typed a float; asyncio refuses None)
        if given is None or loop.is_closed():
            return self._refuse(when, callback, *args, context=context)  # (it raises)
        if loop.get_debug():  # asyncio's checks of a loop in debug mode
            getattr(loop, "_check_thread")()  # noqa: B009 - asyncio's own
            getattr(loop, "_check_callback")(callback, "call_at")  # noqa: B009
        timer = _InOrder(when, callback, args, loop, context, next(self._order))
        heapq.heappush(getattr(loop, "_scheduled"), timer)  # noqa: B009 - asyncio's heap
        setattr(timer, "_scheduled", True)  # noqa: B010 - as asyncio marks it
        return timer


class _InOrder(asyncio.TimerHandle):
    """A timer that fires after the timers due at its time that were set before it."""

    __slots__ = ("_order",)

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[object, ...],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
        order: int,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self._order = order

    def __lt__(self, other: asyncio.TimerHandle) -> bool:
        """Due before ``other``: sooner, or at the same time but set first."""
        if isinstance(other, _InOrder) and self.when() == other.when():
            return self._order < other._order
        return self.when() < other.when()


class ExecutorJobs:
    """The jobs a loop handed to executors that have not ended yet.

    A job counts from ``run_in_executor`` until it has ended (in a thread, or in another
    process): also when its future was cancelled meanwhile (``asyncio.to_thread`` in a
    cancelled task), as the job goes on all the same.

    Args:
        loop: The loop whose jobs these are (woken when a job it no longer waits for ends).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._count = 0

    @property
    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return self._count > 0

    def submit(
        self,
        run_in_executor: Callable[..., asyncio.Future[T]],
        executor: Executor | None,
        func: Callable[..., T],
        *args: object,
    ) -> asyncio.Future[T]:
        """Hand ``func(*args)`` to the loop's ``run_in_executor`` (the real one), counted.

        The loop's default executor runs it in a thread, wrapped to tell when the thread
        starts and ends. Any other executor gets ``func`` itself (a process pool pickles
        it: a wrapper would not do), and its future tells when the job has ended.
        """
        if executor is None:
            job = _Job(self, functools.partial(func, *args))
            return self._counted(lambda: run_in_executor(None, job.run), job.settled)
        handing = _Handing(executor, self)
        return self._counted(lambda: run_in_executor(handing, func, *args), handing.settled)

    def _counted(
        self,
        start: Callable[[], asyncio.Future[T]],
        settled: Callable[[asyncio.Future[T]], None],
    ) -> asyncio.Future[T]:
        """Start a job, counted; ``settled`` gets its future once done (on the loop)."""
        self.hold()
        try:
            future = start()
        except BaseException:
            self.release()
            raise
        future.add_done_callback(settled)
        return future

    def hold(self) -> None:
        """Count one more job."""
        with self._lock:
            self._count += 1

    def release(self, *, wake: bool = False) -> None:
        """Count one job less; ``wake`` the loop (from a thread) to look at its clock again."""
        with self._lock:
            self._count -= 1
        if wake and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nobody waits any more
                self._loop.call_soon_threadsafe(_nothing)


class _Handing(Executor):
    """Hands one job to an executor as it is (a process pool pickles it), and keeps its future.

    That future is done once the job has ended, or once it was cancelled before it started
    (it never will), in whatever thread or process it runs.
    """

    def __init__(self, executor: Executor, jobs: ExecutorJobs) -> None:
        self._executor = executor
        self._jobs = jobs
        self._job: concurrent.futures.Future[Any] | None = None

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        """Submit ``fn(*args, **kwargs)`` to the executor."""
        job = self._job = self._executor.submit(fn, *args, **kwargs)
        return job

    def settled(self, future: asyncio.Future[Any]) -> None:
        """The job's asyncio future is done (on the loop): a result, or given up (cancelled)."""
        job = self._job
        if future.cancelled() and job is not None and not job.done():  # it goes on all the same
            job.add_done_callback(lambda _: self._jobs.release(wake=True))
        else:
            self._jobs.release()


class _Job(Generic[T]):
    """One job: counted until its thread has ended, or until it can no longer start."""

    def __init__(self, jobs: ExecutorJobs, func: Callable[[], T]) -> None:
        self._jobs = jobs
        self._func = func
        self._lock = threading.Lock()
        self._state: Literal["queued", "running", "ended"] = "queued"
        self._held = True
        self._awaited = True  # whether the loop still waits for the result

    def run(self) -> T:
        """Run the job (in the executor's thread)."""
        with self._lock:
            self._state = "running"
            if not self._held:  # given up while queued, yet started: count it again
                self._held = True
                self._jobs.hold()
        try:
            return self._func()
        finally:
            with self._lock:
                self._state = "ended"
                release = self._held and not self._awaited
                self._held = self._held and not release
            if release:
                self._jobs.release(wake=True)

    def settled(self, future: asyncio.Future[T]) -> None:
        """The job's future is done (on the loop): a result, or given up (cancelled)."""
        with self._lock:
            if future.cancelled():
                self._awaited = False
                if self._state == "running":
                    return  # the thread goes on: it releases the job when it ends
            release = self._held
            self._held = False
        if release:
            self._jobs.release()


@contextmanager
def on_running_loop(loop: asyncio.AbstractEventLoop, clock: ClockT) -> Iterator[ClockT]:
    """Give the running ``loop`` the virtual ``clock`` for the ``with`` block, then its own.

    The clock becomes the loop's ``time``, a :class:`JumpingSelector` its selector (which
    sets its clock resolution, given back after), its ``run_in_executor`` counts the jobs,
    and its ``call_at`` sets timers in order (:class:`TimersInOrder`; instance attributes,
    taken off after). The clock starts at the loop's time, so
    the timers already set keep their times; when the loop has its own clock back, each
    timer still pending keeps the delay it had left on the virtual clock (see
    :func:`_keep_remaining_delays`).

    Raises:
        VirtualTimeError: if ``loop`` is not an asyncio selector event loop.
    """
    selector = getattr(loop, "_selector", None)  # asyncio's selector loops have one
    if not isinstance(selector, selectors.BaseSelector):
        raise VirtualTimeError(
            f"virtual_time() works on asyncio's selector event loop (the default on Linux "
            f"and macOS), not on {loop!r}. Run the test with run_with_virtual_time(...), "
            "on a VirtualTimeLoop, instead."
        )
    jobs = ExecutorJobs(loop)
    timers = TimersInOrder(loop, loop.call_at)
    real = loop.run_in_executor
    resolution = getattr(loop, "_clock_resolution")  # noqa: B009 - set back after

    def run_in_executor(
        executor: Executor | None, func: Callable[..., T], *args: object
    ) -> asyncio.Future[T]:
        return jobs.submit(real, executor, func, *args)

    setattr(loop, "time", clock.time)  # noqa: B010 - an instance attribute, taken off after
    setattr(loop, "call_at", timers.call_at)  # noqa: B010
    setattr(loop, "run_in_executor", run_in_executor)  # noqa: B010
    setattr(loop, "_selector", JumpingSelector(selector, clock, jobs, loop))  # noqa: B010
    try:
        yield clock
    finally:
        setattr(loop, "_selector", selector)  # noqa: B010
        setattr(loop, "_clock_resolution", resolution)  # noqa: B010
        delattr(loop, "run_in_executor")
        delattr(loop, "call_at")
        delattr(loop, "time")
        _keep_remaining_delays(loop, loop.time() - clock.now)


def _keep_remaining_delays(loop: asyncio.AbstractEventLoop, shift: float) -> None:
    """Move the loop's pending timers by ``shift`` seconds, from the virtual clock to its own.

    A timer set on the virtual clock is due at a time of that clock, which may be far from
    the loop's own (ahead of it by every jump, behind it while the clock was stopped): left
    as it is, a timer a server polls with (uvicorn's tick of 0.1 s) would fire minutes late,
    or all of them at once. Moved by the same shift, each timer fires as long after the
    block as it had left at its end, and they stay in their order (asyncio's heap of
    timers keeps its order: each is moved by the same amount).
    """
    scheduled = getattr(loop, "_scheduled", None)  # asyncio's heap of pending TimerHandles
    if not shift or not isinstance(scheduled, list):
        return
    for timer in scheduled:
        if isinstance(timer, asyncio.TimerHandle):
            setattr(timer, "_when", timer.when() + shift)  # noqa: B010 - asyncio's own
    heapq.heapify(scheduled)


def cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the loop's tasks and let them end; report the errors of those that failed."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "an unhandled error of a task cancelled by run_with_virtual_time()",
                    "exception": task.exception(),
                    "task": task,
                }
            )


def _nothing() -> None:
    """A callback that only wakes the loop."""
