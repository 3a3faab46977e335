"""Ray's cancel of the caller's tasks, kept out of the way of Ray's own race with their ends.

Ray's owner of a task takes its reply in two steps: it forgets that the task runs, then,
after letting go of its lock, completes it. A ``ray.cancel`` that comes between the two
takes the task for one that never started and fails it, and the completion that follows
aborts the whole process ("Check failed: ... Tried to complete task that was not pending",
seen with Ray 2.60 on a loaded machine of 2 cores; the kind of ray-project/ray#54798). A
task that is ending anyway needs no cancel: :func:`cancel_running` gives each
``ENDING_GRACE`` seconds to end first, and cancels only those still running then::

    tasks:   a (ends 5 ms later)    b (an LLM call, runs on)
    wait:    |------ ENDING_GRACE ------|
    cancel:                             b

This narrows the race to a task whose reply comes in just as the grace ends; only Ray can
close it. Ray's cancel (and the other steps of a stop that may block) runs off the caller's
thread, in :class:`InThread`, whose caller waits for it a bounded time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

from miniagents.promising.lowlevel import logger

__all__ = ["ENDING_GRACE", "InThread", "cancel_running", "log_late_failure"]

ENDING_GRACE = 0.05
"""Seconds a task that is to be cancelled is given to end on its own first."""


def cancel_running(tasks: Sequence[tuple[Any, Any]], grace: float = ENDING_GRACE) -> None:
    """Cancel each task not ended within ``grace`` seconds (waited for once, for all).

    Args:
        tasks: each task's ``ray.cancel`` target (its ref, or its ``ObjectRefGenerator``)
            and the ref that is ready once it has ended (the same ref, or the generator's
            ``completed()``).
        grace: the seconds given to the tasks to end on their own.
    """
    import ray

    if not tasks:
        return
    ends = [end for _, end in tasks]
    ended, _ = ray.wait(ends, num_returns=len(ends), timeout=grace, fetch_local=False)
    for target, end in tasks:
        if end not in ended:
            ray.cancel(target)


class InThread:
    """``function(*args)`` called in a daemon thread: one that hangs never holds up the exit.

    Its outcome is handed back to one waiter, who waits a bounded time: a thread, blocking
    (:meth:`join`; :meth:`ajoin` from a task), or a task awaiting :meth:`future`. A failure
    that comes once the waiter gave up on it (the join timed out, the future was cancelled,
    or the future's loop has closed) is logged, naming ``what`` the call stops (e.g. "the
    Ray task of the agent X"): nobody else would see it.
    """

    def __init__(self, what: str, function: Callable[..., object], *args: object) -> None:
        self.what = what
        """What the call stops, for the log of a late failure."""
        self.error: BaseException | None = None
        """The call's error, once it has ended (:meth:`join` returned ``True``)."""
        self._ended = False
        self._gave_up = False
        self._future: asyncio.Future[None] | None = None
        self._lock = threading.Lock()
        self._joined = threading.Event()
        run = threading.Thread(target=self._run, args=(function, args), daemon=True)
        run.name = "miniagents-ray-stop"
        run.start()

    def _run(self, function: Callable[..., object], args: tuple[object, ...]) -> None:
        error: BaseException | None = None
        try:
            function(*args)
        except BaseException as caught:  # handed to the waiter
            error = caught
        with self._lock:
            self.error, self._ended = error, True
            future, lost = self._future, self._gave_up
        self._joined.set()
        if future is not None:
            try:
                future.get_loop().call_soon_threadsafe(self._hand, future)
            except RuntimeError:  # the loop has closed (a second Ctrl-C): nobody waits any more
                lost = True
        if lost and error is not None:
            log_late_failure(error, self.what)

    def _hand(self, future: asyncio.Future[None]) -> None:
        if future.done():  # given up on already (cancelled)
            if self.error is not None:
                log_late_failure(self.error, self.what)
        elif self.error is None:
            future.set_result(None)
        else:
            future.set_exception(self.error)

    def join(self, timeout: float) -> bool:
        """Wait, blocking, ``timeout`` seconds at most: whether the call ended (see :attr:`error`).

        If it has not, it is given up on.
        """
        if self._joined.wait(timeout):
            return True
        with self._lock:
            self._gave_up = not self._ended
            return self._ended

    async def ajoin(self, timeout: float) -> bool:
        """Wait as :meth:`join` does, in a thread: the loop's other tasks run meanwhile."""
        return await asyncio.to_thread(self.join, timeout)

    def future(self) -> asyncio.Future[None]:
        """The call's outcome, for the running loop's tasks; cancelled, it is given up on."""
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if not self._ended:
                self._future = future
                return future
        self._hand(future)
        return future


def log_late_failure(error: BaseException, what: str) -> None:
    """Log a step of the stop of ``what`` that failed after nobody waited for it any more."""
    logger.warning(
        "Stopping %s failed after it had been given up on (%r): it may go on running. Check "
        "the Ray cluster (`ray status`).",
        what,
        error,
    )
