"""``SerialWorker``: blocking jobs run off the event loop, one at a time, in the order asked.

Each job runs in a thread of the loop's default executor, so the loop goes on while a
file is written and synced. Jobs run one after another, in the order their callers
asked (``asyncio.Lock`` wakes its waiters first come, first served). A caller cancelled
while it waits for its turn gives its job up (it never runs); once a job has started,
it runs to its end even if its caller is cancelled, and the next job waits for it. So
each job happens completely or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class SerialWorker:
    """Runs blocking jobs in threads, one at a time, in the order they were asked for."""

    def __init__(self) -> None:
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, job: Callable[[], T]) -> T:
        """Run ``job`` in a thread once the jobs asked for before it are done; its result."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:  # a lock serves one loop
            self._lock, self._loop = asyncio.Lock(), loop
        lock = self._lock
        await lock.acquire()  # cancelled here, the job never runs
        try:
            future = loop.run_in_executor(None, job)
        except BaseException:
            lock.release()
            raise
        future.add_done_callback(lambda _: lock.release())  # not before the job has ended
        return await asyncio.shield(future)
