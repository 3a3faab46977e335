"""Bounded concurrency: at most N interactions of an agent at once, the others wait in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from miniagents import InteractionContext, MiniAgent, MiniAgents, miniagent
from miniagents.errors import ConcurrencyLimitError, StreamCancelledError
from miniagents.promising.lowlevel import running_tasks


class Gauge:
    """Who runs now, the most that ever ran at once, and the order they started in."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}

    def gate(self, index: int) -> asyncio.Event:
        return self.gates.setdefault(index, asyncio.Event())


def limited_agent(gauge: Gauge, limit: int) -> MiniAgent[...]:
    @miniagent(max_concurrency=limit)
    async def worker(ctx: InteractionContext, index: int) -> None:
        gauge.running += 1
        gauge.most = max(gauge.most, gauge.running)
        gauge.started.append(index)
        try:
            await gauge.gate(index).wait()
            ctx.reply(f"done {index}")
        finally:
            gauge.running -= 1

    return worker


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_limit_is_never_exceeded_and_waiters_start_in_order() -> None:
    gauge = Gauge()
    worker = limited_agent(gauge, 3)
    async with MiniAgents():
        replies = [worker.inquire(index=index) for index in range(10)]
        await settle()
        assert gauge.started == [0, 1, 2]
        for index in (1, 0, 4, 2, 3, 5, 6, 7, 8, 9):  # finishing in any order
            gauge.gate(index).set()
            await settle()
            assert gauge.running <= 3
        assert [str(await reply) for reply in replies] == [f"done {i}" for i in range(10)]
    assert gauge.most == 3
    assert gauge.started == list(range(10))


async def test_a_cancelled_waiter_takes_no_slot_and_a_cancelled_holder_frees_one() -> None:
    gauge = Gauge()
    worker = limited_agent(gauge, 1)
    async with MiniAgents():
        first = worker.inquire(index=0)
        second = worker.inquire(index=1)
        third = worker.inquire(index=2)
        await settle()
        assert gauge.started == [0]
        second.cancel()  # waiting for a slot
        first.cancel()  # holding the slot
        await settle()
        assert gauge.started == [0, 2]
        gauge.gate(2).set()
        assert str(await third) == "done 2"
        for cancelled in (first, second):
            with pytest.raises(StreamCancelledError):
                await cancelled
    assert gauge.most == 1


async def test_forks_share_the_limit_unless_they_set_their_own() -> None:
    gauge = Gauge()
    worker = limited_agent(gauge, 2)
    same = worker.fork(alias="SAME")
    own = worker.fork(alias="OWN", max_concurrency=5)
    assert same.concurrency_limit is worker.concurrency_limit
    assert own.concurrency_limit is not worker.concurrency_limit
    async with MiniAgents():
        [worker.inquire(index=0), same.inquire(index=1), same.inquire(index=2)]
        await settle()
        assert sorted(gauge.started) == [0, 1]  # 2 waits: the two agents share 2 slots
        [own.inquire(index=index) for index in (10, 11, 12)]
        await settle()
        assert sorted(gauge.started) == [0, 1, 10, 11, 12]
        for index in (0, 1, 2, 10, 11, 12):
            gauge.gate(index).set()


async def test_the_limit_works_across_event_loops() -> None:
    gauge = Gauge()
    worker = limited_agent(gauge, 1)

    async def run() -> list[str]:
        async with MiniAgents():
            replies = [worker.inquire(index=index) for index in range(3)]
            for index in range(3):
                gauge.gate(index).set()
            return [str(await reply) for reply in replies]

    assert await run() == ["done 0", "done 1", "done 2"]
    gauge.gates.clear()
    loop_result = await asyncio.get_running_loop().run_in_executor(None, asyncio.run, run())
    assert loop_result == ["done 0", "done 1", "done 2"]
    assert gauge.most == 1


def test_a_limit_must_be_a_positive_int() -> None:
    async def agent(ctx: InteractionContext) -> None:
        pass

    for bad in (0, -1, True):
        with pytest.raises(
            ValueError, match="max_concurrency must be a whole number of at least 1"
        ):
            MiniAgent(agent, max_concurrency=bad)
    # a value of another type is refused when the agent is made, not at its first call
    for other in (1.5, "2"):
        with pytest.raises(
            ConcurrencyLimitError, match="max_concurrency must be a whole number of at least 1"
        ):
            MiniAgent(agent, max_concurrency=other)  # type: ignore[arg-type]


def test_a_fork_checks_its_own_limit_and_keeps_the_parent_s_without_one() -> None:
    """fork(max_concurrency=0) is refused (it was taken for "no limit of its own")."""

    async def agent(ctx: InteractionContext) -> None:
        pass

    parent = MiniAgent(agent, max_concurrency=2)
    with pytest.raises(ConcurrencyLimitError, match=r"; got 0\."):
        parent.fork(max_concurrency=0)
    assert parent.fork().concurrency_limit is parent.concurrency_limit
    own = parent.fork(max_concurrency=3).concurrency_limit
    assert own is not None
    assert own.limit == 3


async def test_a_million_item_style_pipeline_runs_n_calls_at_once_and_few_tasks() -> None:
    """Per input, the pipeline agent asks a limited "LLM" agent; the rest wait, not a task each."""
    calls = Gauge()
    peak_tasks = 0

    @miniagent(max_concurrency=4)
    async def llm(ctx: InteractionContext, index: int) -> None:
        calls.running += 1
        calls.most = max(calls.most, calls.running)
        for _ in range(3):  # the call takes a few steps of the loop
            await asyncio.sleep(0)
        ctx.reply(f"answer {index}")
        calls.running -= 1

    @miniagent
    async def per_item(ctx: InteractionContext) -> None:
        nonlocal peak_tasks
        async for promise in ctx.message_promises:
            ctx.reply(llm.inquire(index=int(str(await promise))))
            peak_tasks = max(peak_tasks, len(running_tasks()))

    async def items() -> AsyncIterator[str]:
        for index in range(2000):
            yield str(index)

    async with MiniAgents(high_water_mark=8):
        replies = per_item.inquire(items())
        count = 0
        async for promise in replies:
            assert str(promise) == f"answer {count}"
            count += 1
        assert count == 2000
    assert calls.most == 4
    assert peak_tasks <= 8 + 4 + 8  # the mark's worth of waiting calls, not thousands
