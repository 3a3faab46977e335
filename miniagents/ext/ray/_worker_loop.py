"""The event loop of a Ray worker process, and coroutines run on it from the task's thread.

A Ray task runs synchronous code in the worker's main thread; agents need asyncio. Each
worker process therefore keeps one event loop running in a thread of its own
(:func:`worker_loop`), and a task's body waits for a :class:`LoopTask` on it. Waiting in
the main thread is what makes ``ray.cancel`` work: Ray interrupts that thread
(``KeyboardInterrupt``, or ``GeneratorExit`` at a ``yield``), which then cancels the
coroutine, so the agent gets an ordinary ``asyncio.CancelledError``, and waits for it to
end::

    main thread (the Ray task):  wait ....... wait ....... (interrupted: cancel, wait)
    loop thread:                 the agent runs ............ CancelledError, clean-up

The interrupt may land on any line the main thread runs, including the scheduling of a
coroutine on the loop: :func:`run_on_loop` and :meth:`LoopTask.start` inside a ``try``
make sure that a coroutine scheduled is cancelled then too (not left running on the loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from miniagents.ext.ray.errors import RayCancelTimeoutError

__all__ = ["CANCEL_TIMEOUT", "LoopTask", "in_worker_loop", "run_on_loop", "worker_loop"]

T = TypeVar("T")

_WAKE_UP = 0.05
"""Seconds between wake-ups of a waiting main thread: ``ray.cancel`` interrupts it by
setting a flag that Python checks only while it runs code, so a wait never blocks longer."""

CANCEL_TIMEOUT = 10.0
"""Seconds a cancelled :class:`LoopTask` may take to end (``ray_agent`` passes its own)."""


class _WorkerLoop:
    """This process's event loop for agents: made at first use, under a lock (once)."""

    __slots__ = ("_lock", "loop")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self.loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="miniagents-ray", daemon=True
                )
                thread.start()
                self.loop = loop
            return self.loop


_worker_loop = _WorkerLoop()


def worker_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for agents, running in a daemon thread (made at first use)."""
    return _worker_loop.get()


def in_worker_loop() -> bool:
    """Whether the running code runs on this process's worker loop (an agent on a worker)."""
    try:
        return asyncio.get_running_loop() is _worker_loop.loop
    except RuntimeError:  # no loop runs in this thread
        return False


class LoopTask(Generic[T]):
    """A coroutine run as a task on the worker loop, waited for from the task's thread.

    Its end is always known (``ended``), even when it is cancelled before its first step,
    or before it was ever scheduled (the thread was interrupted while scheduling it).
    """

    def __init__(self, coroutine: Coroutine[Any, Any, T], *, start: bool = True) -> None:
        self.loop = worker_loop()
        self.ended = threading.Event()
        self.outcome: Future[T] = Future()
        self.task: asyncio.Task[T] | None = None
        self._coroutine: Coroutine[Any, Any, T] | None = coroutine
        if start:
            self.start()

    def start(self) -> None:
        """Schedule the coroutine on the loop (call it inside a ``try`` that cancels).

        The coroutine runs in a context of its own, empty: nothing the calling thread set
        in its context variables (the Ray task's thread, which runs one task after another)
        reaches it, and nothing it sets reaches another task on the loop.
        """
        self.loop.call_soon_threadsafe(self._start, context=contextvars.Context())

    def _start(self) -> None:
        coroutine, self._coroutine = self._coroutine, None
        assert coroutine is not None  # _cancel never runs before a _start scheduled earlier
        # Runs in the empty context given to call_soon_threadsafe: the task copies it.
        self.task = self.loop.create_task(coroutine)
        self.task.add_done_callback(self._end)

    def _end(self, task: asyncio.Task[T]) -> None:
        if task.cancelled():
            self.outcome.cancel()
        elif task.exception() is not None:
            self.outcome.set_exception(task.exception())
        else:
            self.outcome.set_result(task.result())
        self.ended.set()

    def _cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            return
        # Never scheduled (the loop runs callbacks in order: a _start scheduled before this
        # _cancel would have run): the coroutine never runs.
        coroutine, self._coroutine = self._coroutine, None
        if coroutine is not None:
            coroutine.close()
            self.outcome.cancel()
            self.ended.set()

    def cancel(self, timeout: float = CANCEL_TIMEOUT, what: str = "a coroutine") -> None:
        """Cancel the task and wait until it has ended (the coroutine's own clean-up).

        Args:
            timeout: How many seconds to wait for its end.
            what: Names the coroutine in the error.

        Raises:
            RayCancelTimeoutError: if it has not ended within ``timeout`` seconds (it goes
                on running on the loop).
        """
        self.loop.call_soon_threadsafe(self._cancel)  # after _start: the loop keeps the order
        if not self.ended.wait(timeout):
            raise RayCancelTimeoutError(
                f"In the Ray worker, {what} did not end within {timeout} s of its "
                "cancellation, so the task stopped waiting for it (it may go on running in "
                "the worker). Make it end when cancelled (asyncio.CancelledError), or give "
                "ray_agent(...) a larger cancel_timeout."
            )

    def wait(self) -> T:
        """Wait for the result (this thread stays interruptible: see ``_WAKE_UP``)."""
        while True:
            try:
                return self.outcome.result(timeout=_WAKE_UP)
            except concurrent.futures.TimeoutError:
                continue  # Ray's interrupt (a flag, no OS signal) is seen between waits

    def result(self) -> T:
        """Wait for the result; if this thread is interrupted (``ray.cancel``), cancel first."""
        try:
            return self.wait()
        except BaseException:
            self.cancel()
            raise


def run_on_loop(
    coroutine: Coroutine[Any, Any, T], cancel_timeout: float = CANCEL_TIMEOUT, what: str = ""
) -> T:
    """Run ``coroutine`` on the worker loop and wait for its result.

    If this thread is interrupted at any point (``ray.cancel``), even while the coroutine
    is being scheduled, the coroutine is cancelled and has ended before the interrupt goes
    on (a ``LoopTask(coroutine).result()`` would leave it running when the interrupt lands
    inside the constructor). Cancelled, it waits at most ``cancel_timeout`` seconds for the
    coroutine's end (``what`` names it in the ``RayCancelTimeoutError``).
    """
    waiting = LoopTask(coroutine, start=False)  # nothing scheduled yet
    try:
        waiting.start()
        return waiting.wait()
    except BaseException:
        waiting.cancel(cancel_timeout, what or "a coroutine")
        raise
