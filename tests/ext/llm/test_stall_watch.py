"""``StallWatch``: the stall watches of a loop share one timer, and keep no loop alive.

Each program runs on a virtual clock: a watch's timer fires at its deadline, exactly.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import weakref
from types import FrameType

from miniagents.ext.llm import _stall
from miniagents.ext.llm._stall import StallWatch
from miniagents.ext.llm.errors import LLMTimeoutError
from miniagents.promising.lowlevel import ReplayCore
from miniagents.testing.virtual_time import run_with_virtual_time


def _stalled() -> LLMTimeoutError:
    return LLMTimeoutError("The model went silent.")


async def _watched(timeout: float, events: int, ended: dict[float, float]) -> None:
    """Wait for ``events`` events (one a second), then for one that never comes."""
    loop = asyncio.get_running_loop()
    try:
        with StallWatch(timeout, _stalled) as watch:
            for _ in range(events):
                await asyncio.sleep(1)
                watch.alive()
            await asyncio.Event().wait()
    except LLMTimeoutError:
        ended[timeout] = loop.time()


def test_each_watch_of_a_loop_stalls_at_its_own_deadline_and_no_timer_is_left() -> None:
    async def main() -> tuple[dict[float, float], bool, bool]:
        ended: dict[float, float] = {}
        watches = _stall._watches_of(asyncio.get_running_loop())
        tasks = [
            asyncio.create_task(_watched(3.0, 0, ended)),  # the first to start, due at 3
            asyncio.create_task(_watched(1.0, 0, ended)),  # starts later, due earlier: at 1
            asyncio.create_task(_watched(2.0, 4, ended)),  # alive until 4: due at 6
        ]
        await asyncio.sleep(0)
        armed = watches.handle is not None
        await asyncio.gather(*tasks)
        return ended, armed, watches.handle is None and not watches.watches

    ended, armed, cleared = run_with_virtual_time(main())
    assert ended == {1.0: 1.0, 3.0: 3.0, 2.0: 6.0}
    assert armed  # one timer for the three
    assert cleared  # the last one's end took it away: an idle loop has no timer of them


def test_a_watch_that_ends_in_time_leaves_the_others_watched() -> None:
    async def main() -> tuple[dict[float, float], float]:
        loop = asyncio.get_running_loop()
        ended: dict[float, float] = {}
        slow = asyncio.create_task(_watched(5.0, 0, ended))
        with StallWatch(1.0, _stalled):  # ends at 0.5, before its deadline
            await asyncio.sleep(0.5)
        await slow
        return ended, loop.time()

    ended, now = run_with_virtual_time(main())
    assert ended == {5.0: 5.0}
    assert now == 5.0


def test_a_closed_loop_is_not_kept_by_the_deadlock_watch_or_the_stall_watches() -> None:
    # both keep a record per loop in a WeakKeyDictionary: a strong reference from it to
    # the loop (or to a timer handle, which has one) would keep every loop for good
    loops: list[weakref.ReferenceType[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        core: ReplayCore[int] = ReplayCore(open_ended=True)
        waiter = asyncio.create_task(core.await_change())  # parks in the deadlock watch
        await asyncio.sleep(0)
        with StallWatch(60.0, _stalled):
            core.accept(1)
            await waiter

    for _ in range(3):
        asyncio.run(main())
    gc.collect()
    assert [loop() for loop in loops] == [None, None, None]


def test_alive_reads_asyncio_s_clock_directly_and_asks_a_loop_with_a_clock_of_its_own() -> None:
    # asyncio's own loop's clock is time.monotonic(): alive() reads it with no call of the
    # loop's time() between (a Python call per event fewer); a loop with a clock of its own
    # (here the virtual one) is asked, so that the deadline is on the clock its timer reads
    def python_calls_of_alive(watch: StallWatch) -> list[str]:
        called: list[str] = []

        def profile(frame: FrameType, event: str, arg: object) -> None:
            if event == "call" and frame.f_code.co_name != "alive":
                called.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            watch.alive()
        finally:
            sys.setprofile(None)
        return called

    async def real() -> tuple[list[str], float, float, float]:
        with StallWatch(10.0, _stalled) as watch:
            before = time.monotonic()
            called = python_calls_of_alive(watch)
            return called, before, watch.deadline, time.monotonic()

    called, before, deadline, after = asyncio.run(real())
    assert called == []
    assert before + 10.0 <= deadline <= after + 10.0

    async def virtual() -> tuple[list[str], float]:
        with StallWatch(10.0, _stalled) as watch:
            await asyncio.sleep(3)
            return python_calls_of_alive(watch), watch.deadline

    called, deadline = run_with_virtual_time(virtual())
    assert "time" in called  # the virtual loop's clock, asked
    assert deadline == 13.0
