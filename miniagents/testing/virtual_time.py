"""Virtual time: timing tests that neither wait nor depend on the speed of the machine.

A :class:`VirtualClock` stands in for the event loop's clock. Running by itself (the
default), it jumps to the loop's next timer whenever the loop is idle: no callback ready,
no I/O ready, no job of an executor (``asyncio.to_thread``, ``run_in_executor``) still
running. Code sleeps, times out and waits as on a real loop, in the same order, at the
same (virtual) times, but at once::

    real clock:     sleep(5) .....(5 s of wall time)..... wake
    virtual clock:  sleep(5) wake                          (loop.time() moved on by 5)

So a test of a delay, a timeout or a stall gives the same result on a fast machine and on
a loaded one. I/O from outside the loop (a server in a thread or another process) comes
at a time the loop cannot know: a clock running by itself would jump past it. For such
tests, stop the clock (:func:`manual_time`): it moves only when the test calls
:meth:`VirtualClock.advance`, once it has seen what it waited for (a request reaching the
fake server, the first token).

Three ways to use it:

- :func:`run_with_virtual_time` runs a coroutine on a new :class:`VirtualTimeLoop`, like
  ``asyncio.run``;
- :func:`virtual_time` and :func:`manual_time` put the *running* loop on a virtual clock
  for the length of a ``with`` block: in a pytest-asyncio test or fixture, say;
- :class:`VirtualTimeLoop` is the event loop class itself.

Example:
    >>> async def nap() -> float:
    ...     with virtual_time() as clock:
    ...         await asyncio.sleep(3600)
    ...         return clock.elapsed
    >>> asyncio.run(nap())  # returns at once
    3600.0
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import math
import selectors
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from typing_extensions import TypeVarTuple

from miniagents.arguments import coroutine_refusal
from miniagents.testing._idle import (
    ExecutorJobs,
    JumpingSelector,
    TimersInOrder,
    cancel_remaining_tasks,
    on_running_loop,
)
from miniagents.testing.errors import VirtualTimeError
from miniagents.utils.blocks import PlainWithBlock

__all__ = [
    "EXECUTOR_SECONDS",
    "VirtualClock",
    "VirtualTimeLoop",
    "manual_time",
    "run_with_virtual_time",
    "virtual_time",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

EXECUTOR_SECONDS = 60.0
"""Real seconds :func:`run_with_virtual_time` waits, once its coroutine has ended, for the
jobs its loop's default executor still runs (``asyncio.to_thread``) before it gives up on
them (a thread cannot be cancelled): past them, the run fails rather than hangs."""


class VirtualClock:
    """The time of a loop on virtual time: seconds pass only when the clock is moved on.

    Args:
        start: The time the clock shows at first, in seconds.
        auto_advance: Whether it runs by itself (see :attr:`auto_advance`).

    Attributes:
        start: The time the clock showed at first.
        auto_advance: ``True``: the loop moves the clock to its next timer whenever it is
            idle. ``False``: the clock is stopped; only :meth:`advance` moves it. The
            ``with`` blocks of :func:`virtual_time` and :func:`manual_time` set it.

    Raises:
        VirtualTimeError: if ``start`` is not a finite number.
    """

    def __init__(self, start: float = 0.0, *, auto_advance: bool = True) -> None:
        if not (isinstance(start, (int, float)) and math.isfinite(start)):
            raise VirtualTimeError(
                f"A virtual clock starts at a finite number of seconds, not at {start!r}. "
                "Give start= a number, e.g. 0.0 (the default)."
            )
        self.start = start
        self.auto_advance = auto_advance
        self._now = start

    @property
    def now(self) -> float:
        """The time now, in seconds: what ``loop.time()`` returns."""
        return self._now

    @property
    def elapsed(self) -> float:
        """The seconds that passed since the clock started, to the microsecond.

        Rounded so: a clock put on a running loop starts at the loop's own time (any float),
        and a timer's deadline is that time plus its delay, so the clock's difference can
        miss the delay in its last bits (299.99999999999955 for 300); rounded, a test may
        compare it with ``==``.
        """
        return round(self._now - self.start, 6)

    def time(self) -> float:
        """The time now (the loop's ``time`` method)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock on: the timers now due run at the loop's next step.

        Call it from the loop's thread (in a task or a callback); from another thread,
        through ``loop.call_soon_threadsafe(clock.advance, seconds)``.

        Raises:
            VirtualTimeError: if ``seconds`` is negative or not a finite number.
        """
        if not (isinstance(seconds, (int, float)) and 0 <= seconds < math.inf):
            raise VirtualTimeError(
                f"A virtual clock moves forward by a finite number of seconds, not by {seconds!r}."
            )
        self._now += seconds

    def __repr__(self) -> str:
        """The time, the time elapsed, and whether the clock runs by itself."""
        mode = "runs by itself" if self.auto_advance else "stopped"
        return f"<VirtualClock at {self._now:g} s ({self.elapsed:g} s elapsed), {mode}>"


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual (see :mod:`miniagents.testing.virtual_time`).

    Args:
        start: The time its clock shows at first, in seconds.
        auto_advance: Whether its clock runs by itself (jumping to the next timer when
            the loop is idle) or is stopped until moved on with ``loop.clock.advance``.

    Attributes:
        clock: The loop's clock.

    Raises:
        VirtualTimeError: if ``start`` is not a finite number.

    Example:
        >>> loop = VirtualTimeLoop()
        >>> loop.run_until_complete(asyncio.sleep(60))
        >>> loop.time()
        60.0
        >>> loop.close()
    """

    _closed = True
    """Until asyncio's ``__init__`` opens it: a loop refused its ``start`` is not unclosed."""

    def __init__(self, start: float = 0.0, *, auto_advance: bool = True) -> None:
        self.clock = VirtualClock(start, auto_advance=auto_advance)
        self._virtual_jobs = ExecutorJobs(self)
        self._timers = TimersInOrder(self, super().call_at)
        selector = JumpingSelector(
            selectors.DefaultSelector(), self.clock, self._virtual_jobs, self
        )
        super().__init__(selector)

    def time(self) -> float:
        """The time of the loop's virtual clock, in seconds."""
        return self.clock.time()

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Call ``callback(*args)`` at the loop's time ``when`` (as asyncio's ``call_at``).

        Timers due at one time fire in the order they were set, as on a real clock (the
        virtual one stands still while the loop runs a step).
        """
        return self._timers.call_at(when, callback, *args, context=context)

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """Shut the default executor down, waiting for its threads (as asyncio's), the clock held.

        ``timeout`` is in real seconds (``None``: no limit); past it, a ``RuntimeWarning``
        (as asyncio's), and the threads are left running. On asyncio's own, the idle clock
        jumped past the timeout (300 s as ``asyncio.run`` closes, from Python 3.12) before
        the threads had ended, warning that they had not.
        """
        if not await self._joined_executor(timeout):
            warnings.warn(
                f"The loop's default executor did not end its threads within {timeout:g} "
                "real seconds; they are left running. Make its jobs end with the "
                "coroutine (give them a deadline, or an event the coroutine sets before "
                "it returns).",
                RuntimeWarning,
                stacklevel=2,
            )

    async def _joined_executor(self, timeout: float | None) -> bool:
        """Shut the default executor down, waiting at most ``timeout`` real seconds, the clock held.

        Returns:
            Whether its threads all ended in time (if not, they are left running).
        """
        setattr(self, "_executor_shutdown_called", True)  # noqa: B010 - asyncio's: no new jobs
        executor: Executor | None = getattr(self, "_default_executor", None)  # (asyncio's)
        if executor is None:
            return True
        ended: asyncio.Future[bool] = self.create_future()

        def settle(done: bool) -> None:  # (in a thread: the first to come tells)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.call_soon_threadsafe(_settle, ended, done)

        def shut_down() -> None:
            executor.shutdown(wait=True)
            settle(True)

        jobs = self._virtual_jobs
        jobs.hold()  # (the clock waits for the threads' end, which wakes the loop)
        joining = threading.Thread(target=shut_down, name="the default executor's shutdown")
        joining.daemon = True
        timer = None if timeout is None else threading.Timer(timeout, settle, (False,))
        try:
            joining.start()
            if timer is not None:
                timer.daemon = True
                timer.start()
            if not await ended:
                return False
            joining.join()
            return True
        finally:
            if timer is not None:
                timer.cancel()
            jobs.release()

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in an executor; the clock holds until its thread has ended."""
        real = super().run_in_executor
        return self._virtual_jobs.submit(real, executor, func, *args)


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


def run_with_virtual_time(
    main: Coroutine[Any, Any, T], *, start: float = 0.0, auto_advance: bool = True
) -> T:
    """Run ``main`` on a new :class:`VirtualTimeLoop` and return its result, like ``asyncio.run``.

    The tasks still running when ``main`` returns are cancelled, then the loop is closed.
    The jobs its default executor still runs (``asyncio.to_thread``) are waited for, at
    most :data:`EXECUTOR_SECONDS` real seconds: a thread cannot be cancelled.

    Args:
        main: The coroutine to run.
        start: The time the clock shows at first.
        auto_advance: Whether the clock runs by itself (see :class:`VirtualClock`).

    Raises:
        VirtualTimeError: if called while an event loop runs in this thread (there, use
            ``with virtual_time():``), if ``start`` is not a finite number, or if ``main``
            is not a coroutine (``run_with_virtual_time(main)``, not ``main()``), or if
            ``main`` returned but a job of the default executor still ran
            :data:`EXECUTOR_SECONDS` later (had ``main`` failed, its error is raised).

    Example:
        >>> async def main() -> float:
        ...     await asyncio.gather(asyncio.sleep(30), asyncio.sleep(20))
        ...     return asyncio.get_running_loop().time()
        >>> run_with_virtual_time(main())  # at once
        30.0
    """
    refusal = coroutine_refusal(main, "run_with_virtual_time")
    if refusal is not None:
        raise VirtualTimeError(refusal)
    try:
        if _running_loop() is not None:
            raise VirtualTimeError(
                "run_with_virtual_time() cannot run inside a running event loop. In async code "
                "(a pytest-asyncio test, say), put the running loop on virtual time with "
                "`with virtual_time():` instead."
            )
        loop = VirtualTimeLoop(start, auto_advance=auto_advance)
    except VirtualTimeError:
        main.close()  # never run: no "coroutine was never awaited" warning
        raise
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))  # (as asyncio's)
    ended = False
    try:
        asyncio.set_event_loop(loop)
        result = loop.run_until_complete(main)
        ended = True
        return result
    finally:
        try:
            cancel_remaining_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            joined = loop.run_until_complete(loop._joined_executor(EXECUTOR_SECONDS))
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        if not joined and ended:
            raise VirtualTimeError(
                f"A job of the loop's executor (asyncio.to_thread, run_in_executor) still ran "
                f"{EXECUTOR_SECONDS:g} s after the coroutine ended; it was left running in its "
                "thread. Make the job end with the coroutine (give it a deadline or an event "
                "that the coroutine sets before it returns)."
            )


def virtual_time(*, auto_advance: bool = True) -> AbstractContextManager[VirtualClock]:
    """Put the running event loop on a virtual clock inside the ``with`` block.

    The clock starts at the loop's time; timers set before the block fire at their times
    on it. On a loop already on virtual time (a :class:`VirtualTimeLoop`, or inside
    another such block), the block gives that loop's clock and sets whether it runs by
    itself. Blocks may overlap, in one task or in several (a fixture's and its test's, two
    tasks'): the loop stays on the clock until the last of them ends, and the clock runs as
    the last entered of the blocks still open says. Once the last one ends, the loop has
    its own clock back (a :class:`VirtualTimeLoop` its clock's mode as before), and each
    timer still pending keeps the delay it had left on the virtual clock: a server started
    before the block or in it (uvicorn, whose loop polls every 0.1 s) goes on after it, and
    stops on whichever clock is in force then. Under :func:`manual_time`, no timer fires
    until the clock is moved on: stop such a server outside that block.

    Args:
        auto_advance: ``True``: the clock jumps to the next timer whenever the loop is
            idle. ``False``: the clock is stopped (see :func:`manual_time`).

    Returns:
        A plain ``with`` block (in async code too), which gives the loop's clock; an
        ``async with`` one is refused with a ``VirtualTimeError`` saying so.

    Raises:
        VirtualTimeError: (as the block is entered) outside a running loop, or on a loop
            that is not asyncio's selector loop (the default one on Linux and macOS); on
            another loop, run the test with :func:`run_with_virtual_time`.

    Example:
        >>> async def test_a_delay() -> None:
        ...     with virtual_time() as clock:
        ...         await asyncio.sleep(60)
        ...         assert clock.elapsed == 60
    """
    return _plain_with("virtual_time", _virtual_time(auto_advance))


@contextmanager
def _virtual_time(auto_advance: bool) -> Iterator[VirtualClock]:
    """The block of :func:`virtual_time`."""
    loop = _running_loop()
    if loop is None:
        raise VirtualTimeError(
            "virtual_time() puts the running event loop on virtual time, but no loop is "
            "running: use it in async code, or run_with_virtual_time(...) from sync code."
        )
    blocks = _BLOCKS.get(loop)
    if blocks is None:
        blocks = _BLOCKS[loop] = _OpenBlocks(loop)
    block = object()
    blocks.modes[block] = auto_advance
    blocks.clock.auto_advance = auto_advance
    try:
        yield blocks.clock
    finally:
        del blocks.modes[block]
        if blocks.modes:
            blocks.clock.auto_advance = next(reversed(blocks.modes.values()))
        else:
            del _BLOCKS[loop]
            blocks.close()


def manual_time() -> AbstractContextManager[VirtualClock]:
    """Stop the running loop's clock inside the ``with`` block: only ``advance`` moves it.

    For tests that talk to a server outside the loop: I/O goes on, but no timer fires
    (no ``asyncio.sleep``, no timeout, no stall watch) until the test moves the clock on,
    after it has seen what it waited for. Nothing that waits on the loop's clock ends
    meanwhile; the fake server's ``_async`` waiters (``await server.wait_requests_async(1)``)
    wait in a thread of their own, so they work.

    Returns:
        A plain ``with`` block (in async code too), which gives the loop's clock (see
        :func:`virtual_time`, of which this is the stopped form); an ``async with`` one is
        refused with a ``VirtualTimeError`` saying so.

    Raises:
        VirtualTimeError: (as the block is entered) outside a running loop (from sync
            code, run the test with ``run_with_virtual_time(main(), auto_advance=False)``),
            or as :func:`virtual_time` does.

    Example:
        >>> async def test_a_stall(server: FakeLLMServer) -> None:  # doctest: +SKIP
        ...     server.reply(["Hel", "lo"], hang_after=1)
        ...     with manual_time() as clock:
        ...         ...  # start the call, read its first token
        ...         clock.advance(60)  # now the stall timeout fires
    """
    return _plain_with("manual_time", _manual_time())


@contextmanager
def _manual_time() -> Iterator[VirtualClock]:
    """The block of :func:`manual_time`."""
    if _running_loop() is None:
        raise VirtualTimeError(
            "manual_time() stops the running event loop's clock, but no loop is running: use "
            "it in async code, or run_with_virtual_time(main(), auto_advance=False) from sync "
            "code."
        )
    with _virtual_time(auto_advance=False) as clock:
        yield clock


def _plain_with(
    name: str, block: AbstractContextManager[VirtualClock]
) -> PlainWithBlock[VirtualClock]:
    """The block of ``name()``: a plain ``with`` (it changes the loop's clock at once).

    Its ``async with`` is refused with a ``VirtualTimeError`` that says to write ``with``.
    """
    return PlainWithBlock(
        block,
        VirtualTimeError,
        f"{name}() is a plain `with` block, not an `async with` one: write "
        f"`with {name}() as clock:` (in async code too).",
    )


class _OpenBlocks:
    """The :func:`virtual_time` blocks open on a loop: its clock, and each block's mode.

    Made when the first block opens; :meth:`close` after the last one gives the loop back
    what it had: its own clock (a :class:`VirtualTimeLoop`: its clock's mode).

    Raises:
        VirtualTimeError: on a loop that is not asyncio's selector loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.modes: dict[object, bool] = {}
        """Whether the clock runs by itself, by open block, in the order they were entered."""
        self._stack = ExitStack()
        if isinstance(loop, VirtualTimeLoop):
            self.clock = loop.clock
            self._stack.callback(setattr, self.clock, "auto_advance", self.clock.auto_advance)
        else:
            self.clock = self._stack.enter_context(on_running_loop(loop, VirtualClock(loop.time())))

    def close(self) -> None:
        """Give the loop back what it had before the first block."""
        self._stack.close()


_BLOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, _OpenBlocks] = WeakKeyDictionary()
"""The blocks of :func:`virtual_time` open on each running loop."""


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
