"""The virtual-time loop: timers fire in deadline order at once, threads hold the clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from miniagents.testing import VirtualTimeLoop, run_with_virtual_time


def test_sleeps_wake_in_deadline_order_at_their_virtual_times() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, delay: float) -> None:
            await asyncio.sleep(delay)
            woke.append((name, loop.time()))

        await asyncio.gather(sleeper("slow", 3600), sleeper("fast", 0.25), sleeper("mid", 2))
        return woke

    assert run_with_virtual_time(main()) == [("fast", 0.25), ("mid", 2.0), ("slow", 3600.0)]


def test_a_timeout_fires_at_its_virtual_deadline() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(1000), timeout=1.5)
        return loop.time()

    assert run_with_virtual_time(main(), start=10.0) == 11.5


def test_the_clock_stands_still_while_a_thread_works() -> None:
    release = threading.Event()

    async def main() -> tuple[bool, float]:
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(asyncio.sleep(5))
        worker = asyncio.ensure_future(asyncio.to_thread(release.wait, 30))
        await asyncio.sleep(0)  # both are scheduled; the thread now blocks on the event
        loop.call_soon(release.set)  # the thread may finish only after this point
        assert await worker is True
        before_timer = (timer.done(), loop.time())
        await timer
        return before_timer

    timer_done, when = run_with_virtual_time(main())
    assert not timer_done  # the 5 s timer did not fire while the thread was working
    assert when == 0.0


def test_the_loop_is_a_selector_loop_with_a_virtual_clock() -> None:
    loop = VirtualTimeLoop(start=42.0)
    try:
        assert loop.time() == 42.0
        assert isinstance(loop, asyncio.SelectorEventLoop)
    finally:
        loop.close()
