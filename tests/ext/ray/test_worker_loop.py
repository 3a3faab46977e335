"""The worker's event-loop thread and outbox, tested in this process (no Ray task needed)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from miniagents.ext.ray._wire import START, TOKENS
from miniagents.ext.ray._worker import OUTBOX_EVENTS, _Outbox
from miniagents.ext.ray._worker_loop import LoopTask, worker_loop

pytestmark = pytest.mark.ray


def test_a_loop_task_cancelled_before_its_first_step_still_ends() -> None:
    loop = worker_loop()
    gate = threading.Event()
    loop.call_soon_threadsafe(gate.wait)  # the loop is busy until the gate opens
    started: list[bool] = []

    async def body() -> None:
        started.append(True)

    task = LoopTask(body())
    loop.call_soon_threadsafe(task._cancel)  # a ray.cancel that comes at once
    gate.set()
    assert task.ended.wait(10)  # (a wait for the coroutine's own end would never return)
    assert started == []
    assert task.outcome.cancelled()


def test_a_loop_task_gives_its_result_or_its_error() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> int:
        raise KeyError("no")

    assert LoopTask(answer()).result() == 42
    with pytest.raises(KeyError):
        LoopTask(fail()).result()


async def test_the_outbox_holds_a_bounded_number_of_events_and_merges_tokens() -> None:
    outbox = _Outbox()
    await outbox.put((START, 0, b"header"))
    for _ in range(OUTBOX_EVENTS - 1):
        await outbox.put((TOKENS, 0, "t"))
    extra = asyncio.create_task(outbox.put((TOKENS, 0, "u")))
    for _ in range(3):
        await asyncio.sleep(0)  # the extra event's sender gets its turns
    assert not extra.done()  # the outbox is full: it waits for the driver
    batch = await outbox.batch()
    await extra
    assert batch == [(START, 0, b"header"), (TOKENS, 0, ["t"] * (OUTBOX_EVENTS - 1) + ["u"])]
    await outbox.close()
    assert await outbox.batch() is None
