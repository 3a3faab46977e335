"""The worker's event-loop thread, tested in this process (no Ray task needed)."""

from __future__ import annotations

import threading

import pytest

from miniagents.ext.ray._worker import _LoopTask, worker_loop

pytestmark = pytest.mark.ray


def test_a_loop_task_cancelled_before_its_first_step_still_ends() -> None:
    loop = worker_loop()
    gate = threading.Event()
    loop.call_soon_threadsafe(gate.wait)  # the loop is busy until the gate opens
    started: list[bool] = []

    async def body() -> None:
        started.append(True)

    task = _LoopTask(body())
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

    assert _LoopTask(answer()).result() == 42
    with pytest.raises(KeyError):
        _LoopTask(fail()).result()
